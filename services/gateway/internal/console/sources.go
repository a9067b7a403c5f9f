package console

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"sigs.k8s.io/yaml"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// sourceForm is the page of one declared source, new or stored: what
// the form holds (kept when the API refuses it, so nothing typed is
// lost), and what the last try of a sample body made.
type sourceForm struct {
	New                    bool
	Name, Team, Auth       string
	Mapping, Body, Headers string
	// Source is the source as stored (its path, whether it has a secret);
	// nil for a new one.
	Source   *gatewayv1.Source
	Problem  *problem
	Tried    bool
	Alerts   []triedAlert
	Problems []string
}

// triedAlert is one alert a sample body made.
type triedAlert struct {
	Firing      bool
	Fingerprint string
	Labels      []string
	Annotations []string
}

// secretPage shows a source's new secret, the only time it is shown.
type secretPage struct {
	Source  *gatewayv1.Source
	Secret  string
	Rotated bool
}

// The new source's form starts from the example of docs/sources: a
// script's own JSON with several alerts.
const (
	exampleMapping = `alerts: body.alerts
labels:
  alertname: item.name
  instance: item.host
  severity: item.?severity.orValue("warning")
annotations:
  summary: item.message
status: 'item.?resolved.orValue(false) ? "resolved" : "firing"'
`
	exampleBody = `{"alerts": [
  {"name": "BackupFailed", "host": "db-1", "severity": "critical", "message": "nightly pg_dump exited 1"},
  {"name": "CertExpiring", "host": "edge-2", "message": "renewed", "resolved": true}
]}`
)

func (c *Console) sources() gatewayv1.SourceServiceClient {
	return gatewayv1.NewSourceServiceClient(c.opts.Conn)
}

func (c *Console) sourceList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := c.sources().ListSources(withToken(r.Context(), s.access), &gatewayv1.ListSourcesRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "sources", http.StatusOK, res.GetSources())
}

func (c *Console) newSourcePage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.render(w, r, s, "source", http.StatusOK, sourceForm{New: true, Auth: "hmac", Mapping: exampleMapping, Body: exampleBody})
}

func (c *Console) sourcePage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := c.sources().GetSource(withToken(r.Context(), s.access), &gatewayv1.GetSourceRequest{Name: r.PathValue("name")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	src := res.GetSource()
	f := sourceForm{Source: src, Name: src.GetName(), Team: src.GetTeam(), Auth: src.GetAuth()}
	if m := src.GetGeneric().GetMapping(); m != nil {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err == nil {
			js, err = yaml.JSONToYAML(js)
		}
		if err != nil {
			c.failCall(w, r, s, err)
			return
		}
		f.Mapping = string(js)
	}
	c.render(w, r, s, "source", http.StatusOK, f)
}

// readSourceForm is the posted form, and the source it declares.
func readSourceForm(r *http.Request) (sourceForm, *gatewayv1.Source, error) {
	f := sourceForm{
		Name: strings.TrimSpace(r.PostFormValue("name")), Team: strings.TrimSpace(r.PostFormValue("team")),
		Auth: r.PostFormValue("auth"), Mapping: r.PostFormValue("mapping"), Body: r.PostFormValue("body"),
		Headers: r.PostFormValue("headers"), New: r.PostFormValue("new") == "true",
	}
	src := &gatewayv1.Source{Name: f.Name, Type: "generic", Team: f.Team, Auth: f.Auth}
	js, err := yaml.YAMLToJSON([]byte(f.Mapping))
	m := &gatewayv1.Mapping{}
	if err == nil {
		err = protojson.Unmarshal(js, m)
	}
	if err != nil {
		return f, nil, server.InvalidArgument("invalid source", server.FieldViolation{
			Field: "source.generic.mapping", Description: "not a mapping in YAML (alerts, labels, annotations, status, starts_at, ends_at, generator_url): " + err.Error(),
		})
	}
	src.Config = &gatewayv1.Source_Generic{Generic: &gatewayv1.GenericSource{Mapping: m}}
	return f, src, nil
}

// newSecret is an hmac source's secret: the console makes it, so that it
// is long and random, and shows it once.
func newSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// refused answers the source's form again with what the API (or the
// form's reading) refused, so that nothing typed is lost.
func (c *Console) refused(w http.ResponseWriter, r *http.Request, s *session, f sourceForm, err error) {
	code, p, ok := refusal(err)
	if !ok {
		c.failCall(w, r, s, err)
		return
	}
	f.Problem = p
	c.render(w, r, s, "source", code, f)
}

// showSecret answers the page that shows a source's new secret: the
// only time it is shown, in the answer to the POST itself (never in a
// URL, never stored by the console, never on a later page).
func (c *Console) showSecret(w http.ResponseWriter, r *http.Request, s *session, src *gatewayv1.Source, secret string, rotated bool) {
	c.render(w, r, s, "source-secret", http.StatusOK, secretPage{Source: src, Secret: secret, Rotated: rotated})
}

func (c *Console) createSource(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	f, src, err := readSourceForm(r)
	f.New = true
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	req := &gatewayv1.CreateSourceRequest{Source: src}
	if src.GetAuth() == "hmac" {
		req.Secret = newSecret()
	}
	res, err := c.sources().CreateSource(withToken(r.Context(), s.access), req)
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	if req.Secret != "" {
		c.showSecret(w, r, s, res.GetSource(), req.GetSecret(), false)
		return
	}
	http.Redirect(w, r, withDone("/settings/sources/"+res.GetSource().GetName(), "done.source.created"), http.StatusSeeOther)
}

// updateSource changes a source's team, auth and mapping. A source that
// turns to hmac gets a new secret, shown once.
func (c *Console) updateSource(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	f, src, err := readSourceForm(r)
	f.Name, f.New = r.PathValue("name"), false
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	src.Name = f.Name
	cur, err := c.sources().GetSource(ctx, &gatewayv1.GetSourceRequest{Name: f.Name})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	f.Source = cur.GetSource()
	req := &gatewayv1.UpdateSourceRequest{Source: src, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"team", "auth", "generic"}}}
	if src.GetAuth() == "hmac" && cur.GetSource().GetAuth() != "hmac" {
		req.Secret = newSecret()
	}
	res, err := c.sources().UpdateSource(ctx, req)
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	if req.Secret != "" {
		c.showSecret(w, r, s, res.GetSource(), req.GetSecret(), true)
		return
	}
	http.Redirect(w, r, withDone("/settings/sources/"+f.Name, "done.source.saved"), http.StatusSeeOther)
}

// rotateSecret gives an hmac source a new secret, shown once; the old
// one is refused from then on.
func (c *Console) rotateSecret(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	secret := newSecret()
	res, err := c.sources().UpdateSource(withToken(r.Context(), s.access), &gatewayv1.UpdateSourceRequest{
		Source: &gatewayv1.Source{Name: r.PathValue("name")}, Secret: secret,
	})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.showSecret(w, r, s, res.GetSource(), secret, true)
}

func (c *Console) deleteSource(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := c.sources().DeleteSource(ctx, &gatewayv1.DeleteSourceRequest{Name: r.PathValue("name")})
		return "/settings/sources", "done.source.deleted", err
	})
}

// testSource tries the form's mapping on its sample body (TestSource: a
// dry run, nothing stored or sent) and answers the form again with the
// alerts it would make, or what went wrong.
func (c *Console) testSource(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	f, src, err := readSourceForm(r)
	if !f.New {
		if cur, err := c.sources().GetSource(withToken(r.Context(), s.access), &gatewayv1.GetSourceRequest{Name: f.Name}); err == nil {
			f.Source = cur.GetSource()
		}
	}
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	req := &gatewayv1.TestSourceRequest{Generic: src.GetGeneric(), Body: f.Body, Headers: map[string]string{}}
	for line := range strings.Lines(f.Headers) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) != "" {
			req.Headers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
		}
	}
	res, err := c.sources().TestSource(withToken(r.Context(), s.access), req)
	if err != nil {
		c.refused(w, r, s, f, err)
		return
	}
	f.Tried, f.Problems = true, res.GetProblems()
	for _, a := range res.GetAlerts() {
		f.Alerts = append(f.Alerts, triedAlert{
			Firing: a.GetStatus() != typesv1.AlertStatus_ALERT_STATUS_RESOLVED, Fingerprint: a.GetFingerprint(),
			Labels: pairs(a.GetLabels()), Annotations: pairs(a.GetAnnotations()),
		})
	}
	c.render(w, r, s, "source", http.StatusOK, f)
}

// pairs is a map as sorted name=value pairs.
func pairs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	slices.Sort(out)
	return out
}
