package console

import (
	"cmp"
	"net/http"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// auditFilters are the audit page's query parameters: the API's filters
// (ListAuditEvents), the times in the user's zone.
type auditFilters struct {
	Actor, Method, Target, Since, Until, Result string
}

// auditResults are the results the filter offers: the API's "ok" and
// "failed", and the codes of the refusals people look for.
var auditResults = []string{"ok", "failed", "PermissionDenied", "Unauthenticated", "InvalidArgument", "NotFound", "FailedPrecondition", "ResourceExhausted"}

// auditData is the audit page's data: one page of events, newest first.
type auditData struct {
	Filters auditFilters
	Results []string
	Events  []auditRow
	pager
}

// auditRow is an audit event with its method's short name.
type auditRow struct {
	*gatewayv1.AuditEvent
	Method string
}

// adminAudit is one page of the audit log (admins only: the API refuses
// anyone else), filtered and paged by the API.
func (c *Console) adminAudit(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	f := auditFilters{
		Actor: strings.TrimSpace(q.Get("actor")), Method: strings.TrimSpace(q.Get("method")), Target: strings.TrimSpace(q.Get("target")),
		Since: q.Get("since"), Until: q.Get("until"), Result: q.Get("result"),
	}
	req := &gatewayv1.ListAuditEventsRequest{
		Actor: f.Actor, Method: f.Method, Target: f.Target, Result: f.Result, PageSize: pageSize, PageToken: q.Get("page"),
	}
	var bad server.BadRequestError
	req.Since = localTimestamp(&bad, "since", f.Since, zone(r))
	req.Until = localTimestamp(&bad, "until", f.Until, zone(r))
	if err := bad.Err("invalid request"); err != nil {
		c.failCall(w, r, s, err)
		return
	}
	res, err := gatewayv1.NewAuditServiceClient(c.opts.Conn).ListAuditEvents(withToken(r.Context(), s.access), req)
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := auditData{Filters: f, Results: auditResults}
	for _, e := range res.GetEvents() {
		// "vigil.gateway.v1.UserService/CreateUser" reads as
		// "UserService/CreateUser"; the whole name is its title.
		_, short, _ := strings.Cut(e.GetMethod(), ".v1.")
		d.Events = append(d.Events, auditRow{AuditEvent: e, Method: cmp.Or(short, e.GetMethod())})
	}
	d.pager = newPager("/admin/audit", filterQuery(map[string]string{
		"actor": f.Actor, "method": f.Method, "target": f.Target, "since": f.Since, "until": f.Until, "result": f.Result,
	}), req.GetPageToken(), res.GetNextPageToken())
	c.render(w, r, s, "admin-audit", http.StatusOK, d)
}

// localTimestamp reads a datetime-local value in loc; nil when empty.
func localTimestamp(bad *server.BadRequestError, field, v string, loc *time.Location) *timestamppb.Timestamp {
	if v == "" {
		return nil
	}
	at, err := time.ParseInLocation(localTime, v, loc)
	if err != nil {
		bad.Add(field, "is not a date and time (YYYY-MM-DDTHH:MM)")
		return nil
	}
	return timestamppb.New(at)
}
