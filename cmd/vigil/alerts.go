package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
)

func alertsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "alerts", Aliases: []string{"alert"}, Short: "Search the alerts monitor keeps, in incidents or silenced"}
	c.register(cmd)
	cmd.AddCommand(alertsList(&c))
	return cmd
}

// alertsFlags are the flags of `alerts list`.
type alertsFlags struct {
	filters, states []string
	incident        string
	since, until    string
	limit           int32
	pageToken       string
}

func alertsList(c *clientFlags) *cobra.Command {
	var f alertsFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List alerts, most recently seen first",
		Example: `  vigil alerts list --filter 'alertname="HighLatency"' --filter 'severity!="info"' --since 2h
  vigil alerts list --filter '{namespace="shop", pod=~"checkout-.*"}' --state silenced
  vigil alerts list --incident 0198c1d2-... --limit 200`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(time.Now())
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, monitorv1.NewIncidentServiceClient, func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.ListAlerts(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*monitorv1.ListAlertsResponse)
				printAlerts(w, resp.GetAlerts())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.filters, "filter", nil, `Alertmanager matchers, e.g. alertname="X" or '{a="b", c=~"d.*"}' (repeatable; an alert must match all)`)
	fl.StringSliceVar(&f.states, "state", nil, "only these states: firing, resolved, silenced, inhibited, held")
	fl.StringVar(&f.incident, "incident", "", "only the alerts of this incident (ID)")
	fl.StringVar(&f.since, "since", "", "only alerts last seen at or after this: RFC 3339, or a duration ago such as 90m or 2d")
	fl.StringVar(&f.until, "until", "", "only alerts last seen before this: RFC 3339, or a duration ago")
	fl.Int32Var(&f.limit, "limit", 50, "how many (at most 500)")
	fl.StringVar(&f.pageToken, "page-token", "", "the next page, from a previous list with the same flags")
	return cmd
}

// request is the ListAlertsRequest the flags describe, with durations
// counted back from now. Filters are checked by the server, which names
// the bad one (filter[i]).
func (f *alertsFlags) request(now time.Time) (*monitorv1.ListAlertsRequest, error) {
	req := &monitorv1.ListAlertsRequest{
		Filter: f.filters, IncidentId: f.incident, PageSize: f.limit, PageToken: f.pageToken,
	}
	for _, s := range f.states {
		v, ok := monitorv1.AlertState_value["ALERT_STATE_"+strings.ToUpper(s)]
		if !ok || v == 0 {
			return nil, fmt.Errorf("--state %q: want firing, resolved, silenced, inhibited or held", s)
		}
		req.States = append(req.States, monitorv1.AlertState(v))
	}
	for _, t := range []struct {
		flag, value string
		dst         **timestamppb.Timestamp
	}{{"since", f.since, &req.Since}, {"until", f.until, &req.Until}} {
		if t.value == "" {
			continue
		}
		at, err := parseInstant(t.value, now)
		if err != nil {
			return nil, fmt.Errorf("--%s %q: %w", t.flag, t.value, err)
		}
		*t.dst = timestamppb.New(at)
	}
	return req, nil
}

// parseInstant reads an RFC 3339 time, or a positive duration before now:
// Go's (90m, 1h30m) or whole days (2d).
func parseInstant(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := human.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or a positive duration ago (90m, 2d)")
	}
	return now.Add(-d), nil
}

// alertState is what became of an alert: silenced or inhibited (in no
// incident), or firing or resolved in its incident.
func alertState(a *typesv1.IncidentAlert) string {
	if a.GetIncidentId() == "" && a.GetHeldBy() != nil {
		// Waiting out its app's rollout (deploy quiet), firing or not.
		return "held"
	}
	if a.GetIncidentId() == "" && a.GetInhibitedBy() != "" && a.GetAlert().GetStatus() != typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
		return "inhibited"
	}
	if a.GetIncidentId() == "" {
		return "silenced"
	}
	return short(a.GetAlert().GetStatus().String(), "ALERT_STATUS_")
}

func printAlerts(w io.Writer, as []*typesv1.IncidentAlert) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "LAST SEEN\tSTATE\tCOUNT\tINCIDENT\tSILENCED BY\tINHIBITED BY\tFINGERPRINT\tLABELS")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\t%s\n", when(a.GetLastSeenAt()), alertState(a), a.GetCount(),
			orDash(a.GetIncidentId()), mutedBy(a), orDash(inhibitedBy(a)), a.GetAlert().GetFingerprint(), labels(a.GetAlert().GetLabels()))
	}
	_ = tw.Flush()
}

// mutedBy is the silence that muted an alert, or the deployment that
// holds (or held) it.
func mutedBy(a *typesv1.IncidentAlert) string {
	if h := a.GetHeldBy(); h != nil && a.GetSilencedBy() == "" {
		return "deploy " + h.GetDeploymentId()
	}
	return orDash(a.GetSilencedBy())
}

// inhibitedBy names the alert that inhibits a, and the rule.
func inhibitedBy(a *typesv1.IncidentAlert) string {
	if a.GetInhibitedBy() == "" {
		return ""
	}
	return a.GetInhibitedBy() + " (rule " + a.GetInhibitRule() + ")"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
