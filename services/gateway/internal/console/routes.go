package console

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

func (c *Console) routeRoutes() {
	c.mux.HandleFunc("GET /settings/routes", c.docPage(c.showRoutes))
	c.mux.HandleFunc("POST /settings/routes", c.applyRoutes)
}

func (c *Console) routeClient() notifyv1.RouteServiceClient {
	return notifyv1.NewRouteServiceClient(c.opts.Conn)
}

// routeNode is a route of the tree as the page shows it, with its path
// (route.routes[0]...) as TestRoutes names it.
type routeNode struct {
	*notifyv1.Route
	Path     string
	Children []routeNode
}

func newRouteNode(r *notifyv1.Route, path string) routeNode {
	n := routeNode{Route: r, Path: path}
	for i, child := range r.GetRoutes() {
		n.Children = append(n.Children, newRouteNode(child, fmt.Sprintf("%s.routes[%d]", path, i)))
	}
	return n
}

// routeTest is the "where would this alert go?" form and its answer.
type routeTest struct {
	Labels, Team, App, Namespace, Priority, Severity, Kind string
	Asked                                                  bool
	Result                                                 *notifyv1.TestRoutesResponse
	Error                                                  string
}

// routesData is the routes page's data.
type routesData struct {
	Current    *notifyv1.RoutingVersion
	Tree       *routeNode
	History    []*notifyv1.RoutingVersion
	File       string
	Document   string
	Version    int64
	Edit       *docEdit
	Test       routeTest
	Priorities []string
}

// showRoutes shows the routing tree in force, its recent versions, the
// editor to apply a new one (admins), and the routes' test: the labels
// of an alert typed in, the routes and channels it would reach. The test
// is a GET: it changes nothing. edit is a refused document, shown again
// with code.
func (c *Console) showRoutes(w http.ResponseWriter, r *http.Request, s *session, edit *docEdit, code int) {
	ctx := withToken(r.Context(), s.access)
	res, err := c.routeClient().GetRoutes(ctx, &notifyv1.GetRoutesRequest{History: 5})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := routesData{
		Current: res.GetCurrent(), File: res.GetFile(), Edit: edit, Priorities: []string{"P0", "P1", "P2", "P3"},
		Version: res.GetCurrent().GetVersion(), History: res.GetHistory(),
	}
	if root := res.GetCurrent().GetConfig().GetRoute(); root != nil {
		n := newRouteNode(root, "route")
		d.Tree = &n
		d.Document = writeDoc(res.GetCurrent().GetConfig(), false)
	}
	if edit != nil {
		// The refused text replaces the version it was written against,
		// not one applied since: applying it again is refused too, so
		// that nobody's change is overwritten unseen.
		d.Document, d.Version = edit.Text, postedVersion(r)
	}
	q := r.URL.Query()
	d.Test = routeTest{
		Labels: q.Get("labels"), Team: q.Get("team"), App: q.Get("app"), Namespace: q.Get("namespace"),
		Priority: q.Get("priority"), Severity: q.Get("severity"), Kind: q.Get("kind"), Asked: q.Has("labels"),
	}
	if d.Test.Asked {
		d.Test.Result, d.Test.Error = c.testRoutes(r, s, d.Test)
	}
	c.render(w, r, s, "routes", code, d)
}

// testRoutes asks the API where an event of t would go; a refusal (a
// line that is not a label, an unknown priority) is shown by the form.
func (c *Console) testRoutes(r *http.Request, s *session, t routeTest) (*notifyv1.TestRoutesResponse, string) {
	req := &notifyv1.TestRoutesRequest{
		Labels: map[string]string{}, Team: strings.TrimSpace(t.Team), App: strings.TrimSpace(t.App),
		Namespace: strings.TrimSpace(t.Namespace), Priority: t.Priority, Severity: strings.TrimSpace(t.Severity),
		Kind: strings.TrimSpace(t.Kind),
	}
	for line := range strings.Lines(t.Labels) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Sprintf("%q: want name=value", line)
		}
		req.Labels[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	res, err := c.routeClient().TestRoutes(withToken(r.Context(), s.access), req)
	if err != nil {
		if _, p, ok := refusal(err); ok {
			return nil, p.Detail
		}
		c.opts.Log.WarnContext(r.Context(), "console routes test failed", "error", err)
		return nil, translate(language(r), "error.unavailable")
	}
	return res, ""
}

// applyRoutes applies the document of the editor as the next version
// after the one the page showed. A refusal (the API's validation, with
// every field to fix, or a version applied since) shows the page again
// with the text as it was typed.
func (c *Console) applyRoutes(w http.ResponseWriter, r *http.Request) {
	cfg := &notifyv1.RoutingConfig{}
	c.applyDoc(w, r, cfg, false, func(ctx context.Context) (string, string, error) {
		_, err := c.routeClient().ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Config: cfg, Version: postedVersion(r)})
		return "/settings/routes", "done.routes_applied", err
	}, func(s *session, e *docEdit, code int) { c.showRoutes(w, r, s, e, code) })
}

// postedVersion is the routes version the editor's text was written
// against (0, the API's "none applied yet", when none).
func postedVersion(r *http.Request) int64 {
	var v int64
	_, _ = fmt.Sscan(r.PostFormValue("version"), &v)
	return v
}
