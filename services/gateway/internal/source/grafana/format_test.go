// A real Grafana is not packaged here, so its contract is tested from its
// documented payloads: testdata/firing.json is the example of Grafana's
// webhook contact point documentation ("Webhook JSON payload"),
// resolved.json its first alert resolved, test_notification.json what the
// contact point's "Test" button sends with the default alert, and
// kubernetes_dashboard.json a Grafana-managed rule on a dashboard panel as
// Grafana 10 and later send it (private labels, grafana_folder, links,
// values, truncated alerts).
package grafana_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/grafana"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func parse(t *testing.T, body []byte) *source.Batch {
	t.Helper()
	batch, err := grafana.Format{}.Parse(body, nil)
	require.NoError(t, err)
	require.NoError(t, source.Validate(batch.Alerts))
	return batch
}

func TestParseDocumentedExample(t *testing.T) {
	t.Parallel()
	batch := parse(t, readFixture(t, "firing.json"))
	require.Len(t, batch.Alerts, 2)
	require.Zero(t, batch.Truncated)
	a := batch.Alerts[0]
	require.Equal(t, map[string]string{"alertname": "High memory usage", "team": "blue", "zone": "us-1"}, a.GetLabels())
	require.Equal(t, map[string]string{
		"description": "The system has high memory usage",
		"runbook_url": "https://myrunbook.com/runbook/1234",
		"summary":     "This alert was triggered for zone us-1",
		"values":      "B=44.23943737541908, C=1",
		"silence_url": "https://play.grafana.org/alerting/silence/new?alertmanager=grafana&matchers=alertname%3DT2%2Cteam%3Dblue%2Czone%3Dus-1",
	}, a.GetAnnotations())
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_FIRING, a.GetStatus())
	require.Equal(t, typesv1.AlertSource_ALERT_SOURCE_GRAFANA, a.GetSource())
	require.Equal(t, time.Date(2021, 10, 12, 7, 51, 3, 157076000, time.UTC), a.GetStartsAt().AsTime())
	require.Nil(t, a.GetEndsAt(), "a firing alert has no end")
	require.Equal(t, "https://play.grafana.org/alerting/1afz29v7z/edit", a.GetGeneratorUrl())
	require.Equal(t, "https://play.grafana.org/", a.GetExternalUrl())
	require.Empty(t, a.GetFingerprint(), "Grafana's fingerprint is not taken: ingest computes the labels'")
	require.Equal(t, "High CPU usage", batch.Alerts[1].GetLabels()["alertname"])
}

func TestParseResolved(t *testing.T) {
	t.Parallel()
	batch := parse(t, readFixture(t, "resolved.json"))
	require.Len(t, batch.Alerts, 1)
	a := batch.Alerts[0]
	require.Equal(t, typesv1.AlertStatus_ALERT_STATUS_RESOLVED, a.GetStatus())
	require.Equal(t, time.Date(2021, 10, 12, 8, 6, 3, 157076000, time.UTC), a.GetEndsAt().AsTime())
	require.Equal(t, "B=12.5, C=0", a.GetAnnotations()["values"])
	firing := parse(t, readFixture(t, "firing.json")).Alerts[0]
	require.Equal(t, firing.GetLabels(), a.GetLabels(), "the resolution names the alert that fired")
}

// Grafana's private labels depend on how the notification was routed, not
// on what fired: dropped, so that repeats are one alert; the rule's UID is
// kept as an annotation, the folder as a label; links become annotations.
func TestParseGrafanaManagedRule(t *testing.T) {
	t.Parallel()
	batch := parse(t, readFixture(t, "kubernetes_dashboard.json"))
	require.Equal(t, 2, batch.Truncated, "Grafana's truncatedAlerts is passed through")
	require.Len(t, batch.Alerts, 1)
	a := batch.Alerts[0]
	require.Equal(t, map[string]string{
		"alertname": "CheckoutErrorRate", "grafana_folder": "Shop", "namespace": "shop",
		"pod": "checkout-7d9c6b5f4-x2k8p", "severity": "critical",
	}, a.GetLabels(), "no private labels, no empty ones")
	require.Equal(t, map[string]string{
		"description":      "5xx ratio of checkout is 7.3% over the last 5 minutes",
		"summary":          "Checkout error rate above 5%",
		"values":           "A=0.0731, B=0.0731, C=1",
		"dashboard_url":    "http://grafana.example:3000/d/shop-checkout?orgId=1",
		"panel_url":        "http://grafana.example:3000/d/shop-checkout?orgId=1&viewPanel=4",
		"image_url":        "http://grafana.example:3000/public/img/attachments/p8sVsRTmaA2hZTz0xWad.png",
		"silence_url":      "http://grafana.example:3000/alerting/silence/new?alertmanager=grafana&matcher=__alert_rule_uid__%3Dfe3k2mhv1e0hsd&matcher=alertname%3DCheckoutErrorRate&matcher=grafana_folder%3DShop&matcher=namespace%3Dshop&matcher=pod%3Dcheckout-7d9c6b5f4-x2k8p&matcher=severity%3Dcritical&orgId=1",
		"grafana_rule_uid": "fe3k2mhv1e0hsd",
	}, a.GetAnnotations())
}

func TestParseTestNotificationStoresNothing(t *testing.T) {
	t.Parallel()
	batch := parse(t, readFixture(t, "test_notification.json"))
	require.Empty(t, batch.Alerts)
	require.NotEmpty(t, batch.Note)
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	firing := readFixture(t, "firing.json")
	manyValues := map[string]any{}
	for i := range 256 {
		manyValues[strings.Repeat("q", 20)+string(rune('a'+i%26))+strings.Repeat("z", i/26)] = float64(i)
	}
	tests := []struct {
		name   string
		change func(m map[string]any)
		check  func(t *testing.T, a *typesv1.Alert)
	}{
		{"unknown fields", func(m map[string]any) {
			m["newField"] = map[string]any{"x": []any{1}}
			sourcetest.AlertAt(m, 0)["extra"] = true
		}, nil},
		{"a rule's own annotation wins", func(m map[string]any) {
			sourcetest.AlertAt(m, 0)["annotations"].(map[string]any)["silence_url"] = "https://own.example/silence"
		}, func(t *testing.T, a *typesv1.Alert) {
			require.Equal(t, "https://own.example/silence", a.GetAnnotations()["silence_url"])
		}},
		{"Grafana 8's valueString without values", func(m map[string]any) {
			delete(sourcetest.AlertAt(m, 0), "values")
			sourcetest.AlertAt(m, 0)["valueString"] = "[ var='B' labels={} value=3 ]"
		}, func(t *testing.T, a *typesv1.Alert) {
			require.Equal(t, "[ var='B' labels={} value=3 ]", a.GetAnnotations()["values"])
		}},
		{"values are bounded", func(m map[string]any) { sourcetest.AlertAt(m, 0)["values"] = manyValues }, func(t *testing.T, a *typesv1.Alert) {
			v := a.GetAnnotations()["values"]
			require.LessOrEqual(t, len(v), grafana.MaxValuesLen)
			require.True(t, strings.HasPrefix(v, "qqqqqqqqqqqqqqqqqqqqa=0, qqqqqqqqqqqqqqqqqqqqaz=26, "), v)
			require.Regexp(t, `, … \(\d+ more\)$`, v)
		}},
		{"no values", func(m map[string]any) { sourcetest.AlertAt(m, 0)["values"] = nil }, func(t *testing.T, a *typesv1.Alert) {
			require.NotContains(t, a.GetAnnotations(), "values")
		}},
		{"status of the group is resolved while an alert fires", func(m map[string]any) { m["status"] = "resolved" }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			batch := parse(t, sourcetest.Edit(t, firing, tt.change))
			require.Len(t, batch.Alerts, 2)
			if tt.check != nil {
				tt.check(t, batch.Alerts[0])
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	firing := readFixture(t, "firing.json")
	change := func(f func(m map[string]any)) []byte { return sourcetest.Edit(t, firing, f) }
	replace := func(old, repl string) []byte {
		require.Contains(t, string(firing), old)
		return bytes.Replace(firing, []byte(old), []byte(repl), 1)
	}
	tests := []struct {
		name  string
		body  []byte
		field string
		want  string // part of the description
	}{
		{"empty body", nil, "", "unexpected end of input"},
		{"truncated JSON", firing[:100], "alerts[0]", "unexpected end of input"},
		{"syntax error", []byte(`{"version" "1"}`), "version", "invalid JSON at byte offset"},
		{"array", []byte(`[{}]`), "", "must be an object, got an array"},
		{"trailing data", append(bytes.Clone(firing), "{}"...), "", "invalid JSON"},
		{"duplicate field", replace(`"version": "1"`, `"version": "1", "version": "2"`), "version", "must appear only once"},
		{"invalid UTF-8", replace(`"zone": "us-1"`, "\"zone\": \"us\xff1\""), "alerts[0].labels.zone", "invalid JSON"},

		{"version missing", change(func(m map[string]any) { delete(m, "version") }), "version", `is required and must be "1"`},
		{"version 4", change(func(m map[string]any) { m["version"] = "4" }), "version", `must be "1", got "4"`},
		{"version number", change(func(m map[string]any) { m["version"] = 1 }), "version", "must be a string, got a number"},
		{"status missing", change(func(m map[string]any) { delete(m, "status") }), "status", "is required"},
		{"status unknown", change(func(m map[string]any) { m["status"] = "alerting" }), "status", `got "alerting"`},
		{"truncatedAlerts negative", change(func(m map[string]any) { m["truncatedAlerts"] = -1 }), "truncatedAlerts", `must be a non-negative integer, got a number "-1"`},
		{"externalURL too long", change(func(m map[string]any) { m["externalURL"] = strings.Repeat("u", 16<<10+1) }), "externalURL", "must be at most 16384 bytes long"},

		{"alerts missing", change(func(m map[string]any) { delete(m, "alerts") }), "alerts", "is required"},
		{"alerts empty", change(func(m map[string]any) { m["alerts"] = []any{} }), "alerts", "at least one alert"},
		{"alerts object", change(func(m map[string]any) { m["alerts"] = map[string]any{} }), "alerts", "must be an array, got an object"},
		{"alert string", change(func(m map[string]any) { m["alerts"].([]any)[1] = "x" }), "alerts[1]", "must be an object, got a string"},
		{"alert status missing", change(func(m map[string]any) { delete(sourcetest.AlertAt(m, 1), "status") }), "alerts[1].status", "is required"},
		{"alert status pending", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["status"] = "pending" }), "alerts[1].status", `got "pending"`},
		{"label value number", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"].(map[string]any)["zone"] = 1 }), "alerts[1].labels.zone", "must be a string, got a number"},
		{"label name dotted", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"].(map[string]any)["k8s.pod"] = 1 }), `alerts[1].labels["k8s.pod"]`, "must be a string"},
		{"annotations array", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["annotations"] = []any{} }), "alerts[1].annotations", "must be an object, got an array"},
		{"startsAt missing", change(func(m map[string]any) { delete(sourcetest.AlertAt(m, 1), "startsAt") }), "alerts[1].startsAt", "is required"},
		{"startsAt not RFC 3339", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["startsAt"] = "yesterday" }), "alerts[1].startsAt", `must be an RFC 3339 time, got a string "yesterday"`},
		{"resolved without endsAt", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["status"] = "resolved" }), "alerts[1].endsAt", "is required for a resolved alert"},
		{"endsAt before startsAt", change(func(m map[string]any) {
			sourcetest.AlertAt(m, 1)["status"] = "resolved"
			sourcetest.AlertAt(m, 1)["endsAt"] = "2021-10-12T07:00:00Z"
		}), "alerts[1].endsAt", "must not be before startsAt"},
		{"value not a number", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["values"] = map[string]any{"B": "high"} }), "alerts[1].values.B", "must be a number, got a string"},
		{"too many values", change(func(m map[string]any) {
			vs := map[string]any{}
			for i := range 257 {
				vs[strings.Repeat("v", i+1)] = 1
			}
			sourcetest.AlertAt(m, 1)["values"] = vs
		}), "alerts[1].values", "at most 256 entries"},
		{"panelURL too long", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["panelURL"] = strings.Repeat("p", 16<<10+1) }), "alerts[1].panelURL", "must be at most 16384 bytes long"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			batch, err := grafana.Format{}.Parse(tt.body, nil)
			require.Nil(t, batch)
			bad, ok := errors.AsType[*server.BadRequestError](err)
			require.True(t, ok, "a *server.BadRequestError: %v", err)
			require.Len(t, bad.Violations, 1, "exactly one violation: %v", bad)
			require.Equal(t, tt.field, bad.Violations[0].Field)
			require.Contains(t, bad.Violations[0].Description, tt.want)
		})
	}
}

// What the shared limits refuse is refused with the body's field names.
func TestParseThenValidateRefuses(t *testing.T) {
	t.Parallel()
	body := sourcetest.Edit(t, readFixture(t, "firing.json"), func(m map[string]any) {
		sourcetest.AlertAt(m, 1)["labels"] = map[string]any{"": "x"}
	})
	batch, err := grafana.Format{}.Parse(body, nil)
	require.NoError(t, err)
	err = source.Validate(batch.Alerts)
	bad, ok := errors.AsType[*server.BadRequestError](err)
	require.True(t, ok, "a *server.BadRequestError: %v", err)
	require.Equal(t, "alerts[1].labels", bad.Violations[0].Field)
}

func TestParseReportsAllViolations(t *testing.T) {
	t.Parallel()
	body := sourcetest.Edit(t, readFixture(t, "firing.json"), func(m map[string]any) {
		m["version"] = "0"
		delete(sourcetest.AlertAt(m, 0), "startsAt")
		sourcetest.AlertAt(m, 1)["status"] = "resolved"
	})
	_, err := grafana.Format{}.Parse(body, nil)
	bad, ok := errors.AsType[*server.BadRequestError](err)
	require.True(t, ok)
	var fields []string
	for _, v := range bad.Violations {
		fields = append(fields, v.Field)
	}
	require.ElementsMatch(t, []string{"version", "alerts[0].startsAt", "alerts[1].endsAt"}, fields)
}

// FuzzParse: whatever the body, Parse answers either alerts that pass the
// shared limits' structural rules (a status, a start, Grafana's source, no
// private label) or a *server.BadRequestError with described violations.
func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Add([]byte(`{"version":"1","status":"firing","alerts":[{"status":"firing","labels":{"a":"b","__x__":"y"},"startsAt":"2026-01-01T00:00:00Z","values":{"A":1e308}}]}`))
	f.Add([]byte(`{"version":"1","status":"resolved","alerts":[{"status":"resolved","labels":{"a":""},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:00:01Z"}]}`))
	f.Add([]byte(`{"alerts":[null,{},[],"x"],"truncatedAlerts":1e3}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		batch, err := grafana.Format{}.Parse(body, nil)
		if err != nil {
			require.Nil(t, batch)
			bad, ok := errors.AsType[*server.BadRequestError](err)
			require.True(t, ok, "%v", err)
			require.NotEmpty(t, bad.Violations)
			for _, v := range bad.Violations {
				require.NotEmpty(t, v.Description)
			}
			return
		}
		require.GreaterOrEqual(t, batch.Truncated, 0)
		require.LessOrEqual(t, batch.Truncated, source.MaxAlerts)
		if len(batch.Alerts) == 0 {
			require.NotEmpty(t, batch.Note)
		}
		for _, a := range batch.Alerts {
			require.Equal(t, typesv1.AlertSource_ALERT_SOURCE_GRAFANA, a.GetSource())
			require.Contains(t, []typesv1.AlertStatus{typesv1.AlertStatus_ALERT_STATUS_FIRING, typesv1.AlertStatus_ALERT_STATUS_RESOLVED}, a.GetStatus())
			require.NotNil(t, a.GetStartsAt())
			require.Empty(t, a.GetFingerprint())
			require.LessOrEqual(t, len(a.GetAnnotations()["values"]), grafana.MaxValuesLen+len("…"))
			for k, v := range a.GetLabels() {
				require.NotEmpty(t, v, k)
				require.False(t, strings.HasPrefix(k, "__") && strings.HasSuffix(k, "__") && len(k) > 4, k)
			}
		}
	})
}

// BenchmarkParse parses Grafana's documented example (two alerts).
func BenchmarkParse(b *testing.B) {
	body := readFixture(b, "firing.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := (grafana.Format{}).Parse(body, nil); err != nil {
			b.Fatal(err)
		}
	}
}
