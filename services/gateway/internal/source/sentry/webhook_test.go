package sentry_test

// The payloads in testdata are written from the examples in Sentry's
// integration-platform webhook documentation (issue, error, event_alert,
// metric_alert, installation, comment), with the values made one story:
// issue 1170820242 of project "payments". A real Sentry is not packaged
// here; its contract is tested from those shapes, and every request is
// signed as Sentry signs it: Sentry-Hook-Signature is the hex
// HMAC-SHA256 of the raw body under the integration's client secret,
// Sentry-Hook-Timestamp the Unix time it was sent.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesentry"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sentry"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

const secret = "3c1f4d7e9a2b8c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d"

// now is the gateway's clock in these tests: the fixtures' day.
var now = time.Date(2026, 12, 7, 0, 10, 0, 0, time.UTC)

type rig struct {
	h       http.Handler
	js      jetstream.JetStream
	metrics *source.Metrics
	reg     *prometheus.Registry
}

func newRig(t testing.TB, secret string) *rig {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	reg := prometheus.NewRegistry()
	m := source.NewMetrics(reg)
	src := sentry.Source([]byte(secret), "")
	src.Verifier = sentry.Verifier{Secret: []byte(secret), Now: func() time.Time { return now }}
	src.Format = sentry.Format{Now: func() time.Time { return now }}
	return &rig{
		h: &source.Handler{
			Source: src, Ingester: ingest.New(bus.NewPublisher(js, nil), nil, nil),
			MaxBytes: 1 << 20, Metrics: m, Log: testkit.Logger(t),
		},
		js: js, metrics: m, reg: reg,
	}
}

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

func sign(key string, body []byte) string { return fakesentry.Sign(key, body) }

// request is a webhook as Sentry sends it, sent 2 s ago; edit changes it
// before.
func request(resource string, body []byte, edit ...func(*http.Request)) *http.Request {
	r := fakesentry.Request(context.Background(), "/api/v1/webhooks/sentry", secret, resource, body, now.Add(-2*time.Second))
	for _, e := range edit {
		e(r)
	}
	return r
}

// serve posts r's body with r's headers to the source.
func (g *rig) serve(t *testing.T, r *http.Request) (*httptest.ResponseRecorder, server.Problem) {
	t.Helper()
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return sourcetest.Post(t, g.h, string(body), func(to *http.Request) { to.Header = r.Header.Clone() })
}

// stored are the alerts on the ALERTS stream, in order.
func (g *rig) stored(t *testing.T) []*typesv1.Alert {
	t.Helper()
	var out []*typesv1.Alert
	for _, e := range sourcetest.Stored(t, g.js) {
		switch e := e.(type) {
		case *eventsv1.AlertFired:
			out = append(out, e.GetAlert())
		case *eventsv1.AlertResolved:
			out = append(out, e.GetAlert())
		}
	}
	return out
}

// The life of one Sentry issue: created, alerted by a rule with the
// event's context, seen again as an error event, resolved. Every alert
// is the same alert (one fingerprint, the issue's labels), so the
// monitor dedups the repeats and the resolution resolves it; what
// changes between events is in the annotations.
func TestIssueIsOneAlertFromCreationToResolution(t *testing.T) {
	t.Parallel()
	g := newRig(t, secret)
	for _, step := range []struct{ resource, file string }{
		{"issue", "issue_created.json"},
		{"event_alert", "event_alert_triggered.json"},
		{"error", "error_created.json"},
		{"issue", "issue_resolved.json"},
	} {
		rec, _ := g.serve(t, request(step.resource, fixture(t, step.file)))
		require.Equal(t, http.StatusAccepted, rec.Code, "%s: %s", step.file, rec.Body.String())
		assert.JSONEq(t, `{"accepted":1,"truncated_alerts":0}`, rec.Body.String())
	}
	alerts := g.stored(t)
	require.Len(t, alerts, 4)
	want := map[string]string{
		"alertname": "SentryIssue", "sentry_issue_id": "1170820242", "project": "payments", "app": "payments", "severity": "critical",
	}
	for i, a := range alerts {
		assert.Equal(t, want, a.GetLabels(), "alert %d", i)
		assert.Equal(t, alerts[0].GetFingerprint(), a.GetFingerprint(), "alert %d", i)
		assert.Equal(t, typesv1.AlertSource_ALERT_SOURCE_SENTRY, a.GetSource())
		assert.Equal(t, "https://sentry.io/organizations/acme/issues/1170820242/", a.GetGeneratorUrl(), "the issue's page, from the issue or an event's page")
		assert.Equal(t, "https://sentry.io", a.GetExternalUrl())
		assert.Equal(t, a.GetGeneratorUrl(), a.GetAnnotations()["sentry_issue_url"])
		assert.Equal(t, "KeyError: 'currency'", a.GetAnnotations()["summary"])
	}
	created, alerted, errored, resolved := alerts[0], alerts[1], alerts[2], alerts[3]
	assert.Equal(t, typesv1.AlertStatus_ALERT_STATUS_FIRING, created.GetStatus())
	assert.Equal(t, "2026-12-07T00:02:37.391Z", created.GetAnnotations()["sentry_first_seen"])
	assert.Equal(t, time.Date(2026, 12, 7, 0, 2, 37, 391000000, time.UTC), created.GetStartsAt().AsTime(), "starts when Sentry first saw it")

	assert.Equal(t, typesv1.AlertStatus_ALERT_STATUS_FIRING, alerted.GetStatus())
	assert.Equal(t, map[string]string{
		"summary": "KeyError: 'currency'", "description": "KeyError: 'currency'",
		"sentry_issue_url":       "https://sentry.io/organizations/acme/issues/1170820242/",
		"sentry_event_url":       "https://sentry.io/organizations/acme/issues/1170820242/events/e4874d664c3540c1a32eab185f12c5ab/",
		"sentry_event_id":        "e4874d664c3540c1a32eab185f12c5ab",
		"sentry_culprit":         "payments.charge in create_charge",
		"sentry_level":           "error",
		"sentry_platform":        "python",
		"sentry_environment":     "production",
		"sentry_release":         "payments@2.0.0",
		"sentry_triggered_rule":  "New issue in payments",
		"sentry_event_at":        "2026-12-07T00:05:11.986Z",
		"sentry_tag_namespace":   "payments",
		"sentry_tag_deployment":  "payments",
		"sentry_tag_pod":         "payments-7d9c5b6f4-x2k8q",
		"sentry_tag_server_name": "payments-7d9c5b6f4-x2k8q",
	}, alerted.GetAnnotations())
	assert.Equal(t, "payments-7d9c5b6f4-q9w2e", errored.GetAnnotations()["sentry_tag_pod"], "another pod's event: the same alert")

	assert.Equal(t, typesv1.AlertStatus_ALERT_STATUS_RESOLVED, resolved.GetStatus())
	assert.Equal(t, now, resolved.GetEndsAt().AsTime())
	for _, fired := range alerts[:3] {
		assert.False(t, resolved.GetStartsAt().AsTime().Before(fired.GetStartsAt().AsTime()),
			"the resolution starts no earlier than any firing (the issue's last seen), so the monitor takes it")
	}
	assert.Equal(t, "42", resolved.GetAnnotations()["sentry_count"])
	assert.InDelta(t, 4.0, testutil.ToFloat64(counter(t, g.reg, "vigil_gateway_source_alerts_accepted_total")), 0)
}

func counter(t testing.TB, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == name {
			var total float64
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			c := prometheus.NewCounter(prometheus.CounterOpts{Name: name})
			c.Add(total)
			return c
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name})
}

// What each action of each resource becomes.
func TestActions(t *testing.T) {
	t.Parallel()
	g := newRig(t, secret)
	for _, tc := range []struct {
		name, resource, file string
		edit                 func(map[string]any)
		want                 []typesv1.AlertStatus
		severities           []string
	}{
		{"issue unresolved (a regression) fires again", "issue", "issue_unresolved.json", nil, []typesv1.AlertStatus{firing}, []string{"critical"}},
		{"issue ignored resolves", "issue", "issue_resolved.json", action("ignored"), []typesv1.AlertStatus{resolvedS}, []string{"critical"}},
		{"issue archived resolves", "issue", "issue_resolved.json", action("archived"), []typesv1.AlertStatus{resolvedS}, []string{"critical"}},
		{"issue assigned changes nothing", "issue", "issue_assigned.json", nil, nil, nil},
		{"an unknown issue action changes nothing", "issue", "issue_created.json", action("merged"), nil, nil},
		{"metric alert critical", "metric_alert", "metric_alert_critical.json", nil, []typesv1.AlertStatus{firing}, []string{"critical"}},
		{"metric alert warning", "metric_alert", "metric_alert_critical.json", action("warning"), []typesv1.AlertStatus{firing}, []string{"warning"}},
		{"metric alert resolved resolves both levels", "metric_alert", "metric_alert_resolved.json", nil, []typesv1.AlertStatus{resolvedS, resolvedS}, []string{"critical", "warning"}},
		{"installation", "installation", "installation_created.json", nil, nil, nil},
		{"comment", "comment", "comment_created.json", nil, nil, nil},
		{"seer", "seer", "comment_created.json", action("root_cause_completed"), nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := fixture(t, tc.file)
			if tc.edit != nil {
				body = sourcetest.Edit(t, body, tc.edit)
			}
			batch, err := sentry.Format{Now: func() time.Time { return now }}.Parse(body, header(tc.resource))
			require.NoError(t, err)
			require.Len(t, batch.Alerts, len(tc.want))
			require.NoError(t, source.Validate(batch.Alerts))
			for i, a := range batch.Alerts {
				assert.Equal(t, tc.want[i], a.GetStatus(), "alert %d", i)
				assert.Equal(t, tc.severities[i], a.GetLabels()["severity"], "alert %d", i)
			}
			if len(tc.want) == 0 {
				assert.NotEmpty(t, batch.Note, "a request without alerts says why")
			}
			rec, _ := g.serve(t, request(tc.resource, body))
			require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
		})
	}
	metric := g.stored(t)
	require.NotEmpty(t, metric)
	last := metric[len(metric)-1]
	assert.Equal(t, map[string]string{
		"alertname": "SentryMetricAlert", "sentry_alert_rule_id": "19", "sentry_metric_alert_id": "72",
		"project": "payments", "app": "payments", "severity": "warning",
	}, last.GetLabels())
	assert.Equal(t, "https://sentry.io/organizations/acme/alerts/rules/details/19/?alert=72", last.GetGeneratorUrl())
	assert.Equal(t, time.Date(2026, 12, 7, 0, 31, 0, 0, time.UTC), last.GetEndsAt().AsTime(), "ended when Sentry closed it")
}

var (
	firing    = typesv1.AlertStatus_ALERT_STATUS_FIRING
	resolvedS = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
)

func action(a string) func(map[string]any) { return func(m map[string]any) { m["action"] = a } }

func header(resource string) http.Header {
	h := http.Header{}
	h.Set(sentry.HeaderResource, resource)
	return h
}

// A request Sentry did not sign with this secret, or signed long ago,
// or that is not a webhook Sentry sends, is refused with a problem that
// says why, counted, and nothing of it is stored.
func TestRefusals(t *testing.T) {
	t.Parallel()
	g := newRig(t, secret)
	body := fixture(t, "issue_created.json")
	for _, tc := range []struct {
		name   string
		req    *http.Request
		code   int
		detail string
		field  string
	}{
		{"no signature", request("issue", body, del(sentry.HeaderSignature)), 401, "no Sentry-Hook-Signature", ""},
		{"signed with another secret", request("issue", body, set(sentry.HeaderSignature, sign("another-secret", body))), 401, "does not match", ""},
		{"signature not hex", request("issue", body, set(sentry.HeaderSignature, "not-hex")), 401, "not hexadecimal", ""},
		{"body changed after signing", request("issue", []byte(strings.Replace(string(body), `"level": "error"`, `"level": "info"`, 1)),
			set(sentry.HeaderSignature, sign(secret, body))), 401, "does not match", ""},
		{"stale", request("issue", body, set(sentry.HeaderTimestamp, strconv.FormatInt(now.Add(-sentry.MaxSkew-time.Second).Unix(), 10))), 401, "replayed", ""},
		{"from the future", request("issue", body, set(sentry.HeaderTimestamp, strconv.FormatInt(now.Add(sentry.MaxSkew+time.Minute).Unix(), 10))), 401, "replayed", ""},
		{"timestamp not a time", request("issue", body, set(sentry.HeaderTimestamp, "yesterday")), 401, "not a Unix time", ""},
		{"unknown resource", request("deploy", body), 400, "", sentry.HeaderResource},
		{"no resource", request("", body), 400, "", sentry.HeaderResource},
		{"not JSON", request("issue", []byte(`{"action":`)), 400, "", "body"},
		{"issue without its id", request("issue", []byte(`{"action":"created","data":{"issue":{"project":{"slug":"x"},"firstSeen":"2026-12-07T00:00:00Z"}}}`)), 400, "", "data.issue.id"},
		{"event without its issue", request("event_alert", []byte(`{"action":"triggered","data":{"event":{"project":1,"datetime":"2026-12-07T00:00:00Z"}}}`)), 400, "", "data.event.issue_id"},
		{"metric alert without a start", request("metric_alert", []byte(`{"action":"critical","data":{"metric_alert":{"id":"1","alert_rule":{"id":"2"}}}}`)), 400, "", "data.metric_alert.date_started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec, p := g.serve(t, tc.req)
			require.Equal(t, tc.code, rec.Code, rec.Body.String())
			assert.Contains(t, p.Detail, tc.detail)
			if tc.code == http.StatusUnauthorized {
				assert.Contains(t, p.Detail, "VIGIL_SENTRY_CLIENT_SECRET", "says how to fix it")
			}
			if tc.field != "" {
				require.NotEmpty(t, p.Errors)
				assert.Equal(t, tc.field, p.Errors[0].Field)
			}
		})
	}
	assert.Empty(t, sourcetest.Stored(t, g.js), "nothing refused was stored")
	assert.InDelta(t, 13.0, testutil.ToFloat64(counter(t, g.reg, "vigil_gateway_source_requests_refused_total")), 0)
	assert.Zero(t, testutil.ToFloat64(counter(t, g.reg, "vigil_gateway_source_alerts_accepted_total")))

	// Without a timestamp (a proxy that drops it), the signature alone
	// decides.
	rec, _ := g.serve(t, request("issue", body, del(sentry.HeaderTimestamp)))
	require.Equal(t, http.StatusAccepted, rec.Code, rec.Body.String())
}

func del(h string) func(*http.Request) { return func(r *http.Request) { r.Header.Del(h) } }

func set(h, v string) func(*http.Request) { return func(r *http.Request) { r.Header.Set(h, v) } }

// The Sentry source belongs to its team: its principal may send alerts
// only, of that team's subjects (the ingest's ownership rules).
func TestPrincipal(t *testing.T) {
	t.Parallel()
	body := fixture(t, "issue_created.json")
	p, err := sentry.Verifier{Secret: []byte(secret), Team: "payments-team", Now: func() time.Time { return now }}.Verify(t.Context(), request("issue", body), body)
	require.NoError(t, err)
	assert.Equal(t, []string{"payments-team"}, p.Teams)
	assert.False(t, p.AllTeams)
	assert.Equal(t, "sentry", p.Name)
}

func FuzzFormat(f *testing.F) {
	for _, c := range []struct{ resource, file string }{
		{"issue", "issue_created.json"},
		{"issue", "issue_resolved.json"},
		{"issue", "issue_assigned.json"},
		{"event_alert", "event_alert_triggered.json"},
		{"error", "error_created.json"},
		{"metric_alert", "metric_alert_critical.json"},
		{"metric_alert", "metric_alert_resolved.json"},
		{"installation", "installation_created.json"},
		{"comment", "comment_created.json"},
	} {
		f.Add(c.resource, fixture(f, c.file))
	}
	f.Add("event_alert", []byte(`{"action":"triggered","data":{"event":{"issue_id":1,"project":"2","timestamp":1.5,"tags":[["a"],{"key":"pod","value":3},null]}}}`))
	f.Add("issue", []byte(`{"action":"resolved","data":{"issue":{"id":"1","project":{"id":7},"lastSeen":"2026-01-01T00:00:00Z","title":"\xff\xfe"}}}`))
	f.Fuzz(func(t *testing.T, resource string, body []byte) {
		format := sentry.Format{Now: func() time.Time { return now }}
		batch, err := format.Parse(body, header(resource))
		if err != nil {
			require.Nil(t, batch)
			var bad *server.BadRequestError
			require.ErrorAs(t, err, &bad)
			require.NotEmpty(t, bad.Violations)
			return
		}
		require.NoError(t, source.Validate(batch.Alerts), "what the format returns is within every source's limits")
		if len(batch.Alerts) == 0 {
			require.NotEmpty(t, batch.Note)
		}
		for _, a := range batch.Alerts {
			require.Contains(t, []string{"SentryIssue", "SentryMetricAlert"}, a.GetLabels()["alertname"])
			require.Contains(t, []string{"critical", "warning", "info"}, a.GetLabels()["severity"])
			if a.GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
				require.False(t, a.GetEndsAt().AsTime().Before(a.GetStartsAt().AsTime()))
			}
			again, err := format.Parse(body, header(resource))
			require.NoError(t, err)
			require.Equal(t, batch.Alerts[0].GetLabels(), again.Alerts[0].GetLabels(), "the labels depend on the body alone")
		}
	})
}

// BenchmarkWebhook is the Sentry source's accepted alerts per second at
// one alert per request (an issue alert rule's event, as Sentry sends
// them), verified, parsed, validated and stored on a real JetStream.
func BenchmarkWebhook(b *testing.B) {
	g := newRig(b, secret)
	body := fixture(b, "event_alert_triggered.json")
	sig := sign(secret, body)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r := request("event_alert", body, set(sentry.HeaderSignature, sig))
			rec := httptest.NewRecorder()
			g.h.ServeHTTP(rec, r)
			if rec.Code != http.StatusAccepted {
				b.Fatalf("status %d: %s", rec.Code, rec.Body.String())
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
}
