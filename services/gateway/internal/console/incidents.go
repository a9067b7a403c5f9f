package console

import (
	"net/http"
	"net/url"
	"slices"
	"strings"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// pageSize is the incidents on one page: enough to see what burns, few
// enough that the first paint does not wait on a large store.
const pageSize = 50

// filters are the list's query parameters.
type filters struct {
	Team, App, Status, Priority, Text string
}

var (
	statusParam = map[string]typesv1.IncidentStatus{
		"open": typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, "acknowledged": typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED,
		"resolved": typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED,
	}
	priorityParam = map[string]typesv1.Priority{
		"P0": typesv1.Priority_PRIORITY_P0, "P1": typesv1.Priority_PRIORITY_P1,
		"P2": typesv1.Priority_PRIORITY_P2, "P3": typesv1.Priority_PRIORITY_P3,
	}
)

// row is one incident as the list shows it.
type row struct {
	*typesv1.Incident
	StatusKey, StatusClass, Priority string
}

func newRow(in *typesv1.Incident) row {
	r := row{Incident: in, StatusKey: "status.unknown", StatusClass: "unknown", Priority: "—"}
	switch in.GetStatus() {
	case typesv1.IncidentStatus_INCIDENT_STATUS_OPEN:
		r.StatusKey, r.StatusClass = "status.open", "open"
	case typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED:
		r.StatusKey, r.StatusClass = "status.ack", "ack"
	case typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED:
		r.StatusKey, r.StatusClass = "status.resolved", "resolved"
	}
	for name, p := range priorityParam {
		if p == in.GetPriority() {
			r.Priority = name
		}
	}
	return r
}

// listData is the list page's data.
type listData struct {
	Filters    filters
	Statuses   []string
	Priorities []string
	Rows       []row
	pager
}

// incidentList is one page of the incidents the user may read: the API
// scopes them to the user's teams and pages them (its page tokens).
// Every filter is the API's, so a page is full and paging is exact.
func (c *Console) incidentList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := parseFilters(q)
	req := &monitorv1.ListIncidentsRequest{App: f.App, Team: f.Team, Text: f.Text, PageSize: pageSize, PageToken: q.Get("page")}
	if st, ok := statusParam[f.Status]; ok {
		req.Statuses = []typesv1.IncidentStatus{st}
	}
	if p, ok := priorityParam[f.Priority]; ok {
		req.Priorities = []typesv1.Priority{p}
	}
	res, err := c.incidents.ListIncidents(withToken(r.Context(), s.access), req)
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := listData{
		Filters: f, Statuses: []string{"open", "acknowledged", "resolved"}, Priorities: []string{"P0", "P1", "P2", "P3"},
	}
	for _, in := range res.GetIncidents() {
		d.Rows = append(d.Rows, newRow(in))
	}
	d.pager = newPager("/", filterQuery(map[string]string{"team": f.Team, "app": f.App, "status": f.Status, "priority": f.Priority, "q": f.Text}), req.PageToken, res.GetNextPageToken())
	c.render(w, r, s, "incidents", http.StatusOK, d)
}

// parseFilters reads the list's query parameters; an unknown status or
// priority is no filter.
func parseFilters(q url.Values) filters {
	f := filters{
		Team: strings.TrimSpace(q.Get("team")), App: strings.TrimSpace(q.Get("app")), Status: q.Get("status"),
		Priority: q.Get("priority"), Text: strings.TrimSpace(q.Get("q")),
	}
	if _, ok := statusParam[f.Status]; !ok {
		f.Status = ""
	}
	if _, ok := priorityParam[f.Priority]; !ok {
		f.Priority = ""
	}
	return f
}

// admits reports whether a live event's incident passes every filter, as
// ListIncidents applies them to a listed page (the same fields, case aside).
func (f filters) admits(in *typesv1.Incident) bool {
	switch {
	case f.Team != "" && in.GetTeam() != f.Team,
		f.App != "" && in.GetApp() != f.App,
		f.Status != "" && in.GetStatus() != statusParam[f.Status],
		f.Priority != "" && in.GetPriority() != priorityParam[f.Priority],
		f.Text != "" && !matches(in, f.Text):
		return false
	}
	return true
}

// matches reports whether text is in the incident's title, app, team or
// labels, case aside.
func matches(in *typesv1.Incident, text string) bool {
	text = strings.ToLower(text)
	fields := []string{in.GetTitle(), in.GetApp(), in.GetTeam(), in.GetNamespace()}
	for k, v := range in.GetGroupLabels() {
		fields = append(fields, k+"="+v)
	}
	return slices.ContainsFunc(fields, func(s string) bool { return strings.Contains(strings.ToLower(s), text) })
}
