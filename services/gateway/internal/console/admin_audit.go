package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// auditFilters are the audit page's query parameters: the API's filters
// (ListAuditEvents), the times in the user's zone.
type auditFilters struct {
	Actor, Method, Target, Since, Until string
}

// auditData is the audit page's data: one page of events, newest first.
type auditData struct {
	Filters auditFilters
	Events  []*gatewayv1.AuditEvent
	Next    string
	First   string
	Paged   bool
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
		Since: q.Get("since"), Until: q.Get("until"),
	}
	req := &gatewayv1.ListAuditEventsRequest{Actor: f.Actor, Method: f.Method, Target: f.Target, PageSize: pageSize, PageToken: q.Get("page")}
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
	d := auditData{Filters: f, Events: res.GetEvents(), Paged: req.GetPageToken() != ""}
	params := url.Values{}
	for k, v := range map[string]string{"actor": f.Actor, "method": f.Method, "target": f.Target, "since": f.Since, "until": f.Until} {
		if v != "" {
			params.Set(k, v)
		}
	}
	d.First = "/admin/audit?" + params.Encode()
	if t := res.GetNextPageToken(); t != "" {
		params.Set("page", t)
		d.Next = "/admin/audit?" + params.Encode()
	}
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
