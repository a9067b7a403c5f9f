package console

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/server"
)

// routeAlerts routes the alerts part: the alert search, silences and
// maintenance windows, and the inhibition rules.
func (c *Console) routeAlerts() {
	c.mux.HandleFunc("GET /alerts", c.alertSearch)
	c.mux.HandleFunc("GET /silences", c.silenceList)
	c.mux.HandleFunc("GET /silences/new", c.silenceForm)
	c.mux.HandleFunc("POST /silences", c.createSilence)
	c.mux.HandleFunc("GET /silences/{id}", c.silencePage)
	c.mux.HandleFunc("POST /silences/{id}/expire", c.expireSilence)
	c.mux.HandleFunc("GET /settings/inhibitions", c.inhibitionsPage)
	c.mux.HandleFunc("POST /settings/inhibitions", c.applyInhibitions)
}

// alertStates are the states an alert search selects, as `vigil alerts
// list --state` names them.
var alertStates = []string{"firing", "resolved", "silenced", "inhibited", "held"}

// alertQuery is the search form as the user typed it: it is shown back
// as it was, also when the API refused it.
type alertQuery struct {
	// Filter holds Alertmanager matchers, one field of the form each.
	Filter   []string
	States   []string
	Incident string
	Since    string
	Until    string
}

// option is a choice of a form and whether it is chosen.
type option struct {
	Name    string
	Checked bool
}

// alertRow is one alert as the search shows it.
type alertRow struct {
	*typesv1.IncidentAlert
	State  string
	Labels []string
	// Silence opens the silence form with the alert's labels.
	Silence string
}

// alertData is the search page's data.
type alertData struct {
	Query alertQuery
	// FilterText is the matchers in the one field of the form.
	FilterText string
	States     []option
	Rows       []alertRow
	// Error is the API's refusal of the search, with its field errors.
	Error     string
	Forbidden bool
	Searched  bool
	pager
	// Incidents are the user's latest incidents, each with this search
	// within it, when they may not search every alert.
	Incidents []incidentLink
}

// incidentLink is an incident and the search of its alerts.
type incidentLink struct {
	Row    row
	Search string
}

// alertSearch searches the alerts monitor keeps (IncidentService.ListAlerts,
// what `vigil alerts list` calls) with the API's matchers, states, time
// range and paging. A search the API refuses is shown with its reason
// and the form as typed; searching every alert is for those who reach
// every team (silenced alerts belong to no incident, so to no team), the
// others search within an incident of theirs.
func (c *Console) alertSearch(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	aq := alertQuery{Incident: strings.TrimSpace(q.Get("incident")), Since: strings.TrimSpace(q.Get("since")), Until: strings.TrimSpace(q.Get("until"))}
	for _, f := range q["filter"] {
		if f = strings.TrimSpace(f); f != "" {
			aq.Filter = append(aq.Filter, f)
		}
	}
	for _, st := range q["state"] {
		if slices.Contains(alertStates, st) && !slices.Contains(aq.States, st) {
			aq.States = append(aq.States, st)
		}
	}
	d := alertData{Query: aq, FilterText: strings.Join(aq.Filter, ", ")}
	for _, st := range alertStates {
		d.States = append(d.States, option{Name: st, Checked: slices.Contains(aq.States, st)})
	}
	code := http.StatusOK
	res, err := c.searchAlerts(r, s, aq, q.Get("page"))
	switch st := status.Convert(err); {
	case err == nil:
		d.Searched = true
		for _, a := range res.GetAlerts() {
			labels := labelList(a.GetAlert().GetLabels())
			d.Rows = append(d.Rows, alertRow{
				IncidentAlert: a, State: alertState(a), Labels: labels, Silence: "/silences/new?" + url.Values{"matcher": labels}.Encode(),
			})
		}
	case st.Code() == codes.InvalidArgument:
		code, d.Error = http.StatusBadRequest, explain(st)
	case st.Code() == codes.PermissionDenied:
		code, d.Error, d.Forbidden = http.StatusForbidden, st.Message(), true
		// What the user may search instead: the alerts of their
		// incidents, newest first.
		if aq.Incident == "" {
			if res, err := c.incidents.ListIncidents(withToken(r.Context(), s.access), &monitorv1.ListIncidentsRequest{PageSize: 20}); err == nil {
				for _, in := range res.GetIncidents() {
					p := aq.params()
					p.Set("incident", in.GetId())
					d.Incidents = append(d.Incidents, incidentLink{Row: newRow(in), Search: "/alerts?" + p.Encode()})
				}
			}
		}
	default:
		c.failCall(w, r, s, err)
		return
	}
	d.pager = newPager("/alerts", aq.params(), q.Get("page"), res.GetNextPageToken())
	c.render(w, r, s, "alerts", code, d)
}

// searchAlerts asks the API for one page of the search; a time the
// console cannot read is refused as the API refuses a bad field.
func (c *Console) searchAlerts(r *http.Request, s *session, aq alertQuery, page string) (*monitorv1.ListAlertsResponse, error) {
	req := &monitorv1.ListAlertsRequest{Filter: aq.Filter, IncidentId: aq.Incident, PageSize: pageSize, PageToken: page}
	for _, st := range aq.States {
		req.States = append(req.States, monitorv1.AlertState(monitorv1.AlertState_value["ALERT_STATE_"+strings.ToUpper(st)]))
	}
	var bad server.BadRequestError
	now, loc := time.Now(), zone(r)
	for _, f := range []struct {
		name, value string
		dst         **timestamppb.Timestamp
	}{{"since", aq.Since, &req.Since}, {"until", aq.Until, &req.Until}} {
		if f.value == "" {
			continue
		}
		at, err := parseInstant(f.value, now, loc)
		if err != nil {
			bad.Add(f.name, err.Error())
			continue
		}
		*f.dst = timestamppb.New(at)
	}
	if err := bad.Err("invalid search"); err != nil {
		return nil, err
	}
	return c.incidents.ListAlerts(withToken(r.Context(), s.access), req)
}

// params are the query parameters of the search, for its page links.
func (aq alertQuery) params() url.Values {
	v := url.Values{}
	for k, vs := range map[string][]string{"filter": aq.Filter, "state": aq.States, "incident": {aq.Incident}, "since": {aq.Since}, "until": {aq.Until}} {
		for _, x := range vs {
			if x != "" {
				v.Add(k, x)
			}
		}
	}
	return v
}

// alertState is what became of an alert, as `vigil alerts list` says it:
// held, inhibited or silenced in no incident, else firing or resolved
// in its incident.
func alertState(a *typesv1.IncidentAlert) string {
	switch {
	case a.GetIncidentId() == "" && a.GetHeldBy() != nil:
		return "held"
	case a.GetIncidentId() == "" && a.GetInhibitedBy() != "" && a.GetAlert().GetStatus() != typesv1.AlertStatus_ALERT_STATUS_RESOLVED:
		return "inhibited"
	case a.GetIncidentId() == "":
		return "silenced"
	case a.GetAlert().GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED:
		return "resolved"
	}
	return "firing"
}

// labelList is labels as name="value" matchers, in name order: what a
// silence or a search can take back as it is.
func labelList(labels map[string]string) []string {
	out := make([]string, 0, len(labels))
	for k, v := range labels {
		out = append(out, k+"="+strconv.Quote(v))
	}
	slices.Sort(out)
	return out
}

// parseInstant reads a time as the search takes it: a point in time
// (parseTime), or a duration before now (Go's 90m, or whole days: 2d).
func parseInstant(s string, now time.Time, loc *time.Location) (time.Time, error) {
	if t, err := parseTime(s, loc); err == nil {
		return t, nil
	}
	if d, err := human.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	return time.Time{}, errors.New("want a time (2026-01-02 15:04) or a duration ago (90m, 2d)")
}
