package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func auditCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log: every change made through the API, and every login"}
	c.register(cmd)
	cmd.AddCommand(auditList(&c))
	return cmd
}

// auditFlags are the flags of `audit list`.
type auditFlags struct {
	actor, method, target string
	since, until, result  string
	limit                 int32
	pageToken             string
}

func auditList(c *clientFlags) *cobra.Command {
	var f auditFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first",
		Example: `  vigil audit list --since 2h
  vigil audit list --actor user:alice --method DeployApp
  vigil audit list --result failed --since 1d
  vigil audit list --target user/bob --since 2026-01-01T00:00:00Z --limit 500`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(time.Now())
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, gatewayv1.NewAuditServiceClient, func(ctx context.Context, cl gatewayv1.AuditServiceClient) (proto.Message, error) {
				return cl.ListAuditEvents(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*gatewayv1.ListAuditEventsResponse)
				printAuditEvents(w, resp.GetEvents())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.actor, "actor", "", `only this actor, exactly: "user:alice", "bootstrap:admin", "anonymous"`)
	fl.StringVar(&f.method, "method", "", `only this RPC, or RPCs ending so: "DeployApp", "vigil.gateway.v1.AuthService/Login"`)
	fl.StringVar(&f.target, "target", "", `only this target, exactly: "app/shop", "user/bob"`)
	fl.StringVar(&f.since, "since", "", "only events at or after this: RFC 3339, or a duration ago such as 90m or 2d")
	fl.StringVar(&f.until, "until", "", "only events before this: RFC 3339, or a duration ago")
	fl.StringVar(&f.result, "result", "", `only events of this result: "ok", "failed" (any other code), or a gRPC code name ("PermissionDenied")`)
	fl.Int32Var(&f.limit, "limit", 50, "how many (at most 500)")
	fl.StringVar(&f.pageToken, "page-token", "", "the next page, from a previous list with the same flags")
	return cmd
}

// request is the ListAuditEventsRequest the flags describe, with durations
// counted back from now.
func (f *auditFlags) request(now time.Time) (*gatewayv1.ListAuditEventsRequest, error) {
	req := &gatewayv1.ListAuditEventsRequest{
		Actor: f.actor, Method: f.method, Target: f.target, Result: f.result, PageSize: f.limit, PageToken: f.pageToken,
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

func printAuditEvents(w io.Writer, es []*gatewayv1.AuditEvent) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTOR\tMETHOD\tTARGET\tCODE\tMESSAGE")
	for _, e := range es {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", when(e.GetTime()), e.GetActor(), e.GetMethod(),
			orDash(e.GetTarget()), e.GetCode(), orDash(e.GetMessage()))
	}
	_ = tw.Flush()
}
