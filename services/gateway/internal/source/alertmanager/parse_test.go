package alertmanager_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/alertmanager"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sourcetest"
)

// The fixtures in testdata are bodies captured from a real Alertmanager 0.25.0
// (Debian) posting to a webhook receiver, byte for byte.

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func parseFixture(t *testing.T, name string) *alertmanager.Message {
	t.Helper()
	msg, err := alertmanager.Parse(bytes.NewReader(readFixture(t, name)))
	require.NoError(t, err)
	return msg
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	ts, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return ts
}

func TestParseFiring(t *testing.T) {
	t.Parallel()
	msg := parseFixture(t, "firing.json")
	summary := "p99 latency above 500ms"
	want := &alertmanager.Message{
		Version:         "4",
		GroupKey:        `{}:{alertname="HighLatency"}`,
		TruncatedAlerts: 0,
		Status:          alertmanager.StatusFiring,
		Receiver:        "vigil",
		GroupLabels:     map[string]string{"alertname": "HighLatency"},
		CommonLabels: map[string]string{
			"alertname": "HighLatency", "service": "checkout", "severity": "critical",
		},
		CommonAnnotations: map[string]string{"summary": summary},
		ExternalURL:       "http://alertmanager.example:9093",
		Alerts: []alertmanager.Alert{
			{
				Status: alertmanager.StatusFiring,
				Labels: map[string]string{
					"alertname": "HighLatency", "instance": "checkout-1:8080",
					"service": "checkout", "severity": "critical",
				},
				Annotations: map[string]string{
					"runbook_url": "https://runbooks.example/high-latency", "summary": summary,
				},
				StartsAt:     mustTime(t, "2026-11-22T07:29:07.633778651Z"),
				GeneratorURL: "http://prometheus.example:9090/graph?g0.expr=histogram_quantile%280.99%29+%3E+0.5",
				Fingerprint:  "7773b07b38325c6c",
			},
			{
				Status: alertmanager.StatusFiring,
				Labels: map[string]string{
					"alertname": "HighLatency", "instance": "checkout-2:8080",
					"service": "checkout", "severity": "critical",
				},
				Annotations: map[string]string{"summary": summary},
				StartsAt:    mustTime(t, "2026-11-22T07:29:07.681215916Z"),
				Fingerprint: "e0a1e0c7280b928f",
			},
		},
	}
	require.Equal(t, want, msg)
	require.True(t, msg.Alerts[0].EndsAt.IsZero(), "0001-01-01T00:00:00Z is the zero time")
}

func TestParseFixtures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file      string
		status    alertmanager.Status
		statuses  []alertmanager.Status
		truncated uint64
	}{
		{"firing.json", "firing", []alertmanager.Status{"firing", "firing"}, 0},
		{"firing_with_resolved.json", "firing", []alertmanager.Status{"resolved", "firing"}, 0},
		{"resolved.json", "resolved", []alertmanager.Status{"resolved"}, 0},
		{"truncated.json", "firing", []alertmanager.Status{"firing"}, 2},
		{"empty_label_value_dropped.json", "firing", []alertmanager.Status{"firing"}, 0},
		{"html_escaped_unicode.json", "firing", []alertmanager.Status{"firing"}, 0},
		{"starts_at_from_ends_at.json", "firing", []alertmanager.Status{"firing"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			body := readFixture(t, tt.file)
			msg := parseFixture(t, tt.file)
			require.Equal(t, tt.status, msg.Status)
			require.Equal(t, tt.truncated, msg.TruncatedAlerts)
			require.Len(t, msg.Alerts, len(tt.statuses))
			for i, a := range msg.Alerts {
				require.Equal(t, tt.statuses[i], a.Status, "alerts[%d].status", i)
				require.Equal(t, a.Status == alertmanager.StatusResolved, !a.EndsAt.IsZero(),
					"Alertmanager sends endsAt for resolved alerts only")
				// Alertmanager's fingerprint is model.LabelSet.Fingerprint of
				// the labels; the one Parse computes must be the same.
				require.Equal(t, labelFingerprint(a.Labels), a.Fingerprint, "alerts[%d].fingerprint", i)
			}
			// The JSON tags spell the payload as Alertmanager does.
			out, err := json.Marshal(msg)
			require.NoError(t, err)
			require.JSONEq(t, string(body), string(out))
		})
	}
}

func labelFingerprint(labels map[string]string) string {
	ls := model.LabelSet{}
	for k, v := range labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

func TestParseHTMLEscapedUnicode(t *testing.T) {
	t.Parallel()
	// Alertmanager encodes with encoding/json's HTML escaping: & < > arrive
	// as \u0026 \u003c \u003e.
	a := parseFixture(t, "html_escaped_unicode.json").Alerts[0]
	require.Equal(t, "/api/v1/pay?x=1&y=<2>", a.Labels["route"])
	require.Equal(t, "paiement-café", a.Labels["service"])
	require.Equal(t, "🚀", a.Labels["emoji"])
	require.Equal(t, "Error rate is 12%.\nSee \"dashboard\" <https://grafana.example/d/abc?a=1&b=2>", a.Annotations["description"])
	require.Equal(t, "8a867a08b6452d01", a.Fingerprint)
}

func TestParseComputesMissingFingerprint(t *testing.T) {
	t.Parallel()
	for _, file := range []string{"firing.json", "firing_with_resolved.json", "html_escaped_unicode.json", "truncated.json"} {
		t.Run(file, func(t *testing.T) {
			t.Parallel()
			captured := parseFixture(t, file)
			body := sourcetest.Edit(t, readFixture(t, file), func(m map[string]any) {
				for i := range m["alerts"].([]any) {
					delete(sourcetest.AlertAt(m, i), "fingerprint")
				}
			})
			msg, err := alertmanager.Parse(bytes.NewReader(body))
			require.NoError(t, err)
			for i, a := range msg.Alerts {
				require.Equal(t, captured.Alerts[i].Fingerprint, a.Fingerprint, "alerts[%d].fingerprint", i)
			}
		})
	}
}

func labelsOf(m map[string]any, i int) map[string]any {
	return sourcetest.AlertAt(m, i)["labels"].(map[string]any)
}

func manyEntries(n int) map[string]any {
	out := map[string]any{}
	for i := range n {
		out[fmt.Sprintf("l%d", i)] = "v"
	}
	return out
}

func TestParseAccepts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		change func(m map[string]any)
		check  func(t *testing.T, msg *alertmanager.Message)
	}{
		{
			name: "unknown fields at every level",
			change: func(m map[string]any) {
				m["groupID"] = map[string]any{"nested": []any{1, "x"}}
				sourcetest.AlertAt(m, 0)["silencedBy"] = []any{"abc"}
				sourcetest.AlertAt(m, 1)["receivers"] = nil
			},
		},
		{
			name:   "upper-case fingerprint is lower-cased",
			change: func(m map[string]any) { sourcetest.AlertAt(m, 0)["fingerprint"] = "7773B07B38325C6C" },
			check: func(t *testing.T, msg *alertmanager.Message) {
				require.Equal(t, "7773b07b38325c6c", msg.Alerts[0].Fingerprint)
			},
		},
		{
			name: "absent endsAt on a firing alert",
			change: func(m map[string]any) {
				delete(sourcetest.AlertAt(m, 0), "endsAt")
			},
			check: func(t *testing.T, msg *alertmanager.Message) { require.True(t, msg.Alerts[0].EndsAt.IsZero()) },
		},
		{
			name: "firing alert with an end time",
			change: func(m map[string]any) {
				sourcetest.AlertAt(m, 0)["endsAt"] = "2026-11-22T08:00:00Z"
			},
		},
		{
			name: "absent and null optional sets and strings",
			change: func(m map[string]any) {
				delete(m, "groupLabels")
				m["commonLabels"] = nil
				delete(m, "commonAnnotations")
				delete(m, "receiver")
				delete(m, "truncatedAlerts")
				delete(sourcetest.AlertAt(m, 0), "annotations")
				delete(sourcetest.AlertAt(m, 0), "generatorURL")
			},
			check: func(t *testing.T, msg *alertmanager.Message) {
				require.NotNil(t, msg.GroupLabels)
				require.NotNil(t, msg.CommonLabels)
				require.NotNil(t, msg.CommonAnnotations)
				require.NotNil(t, msg.Alerts[0].Annotations)
			},
		},
		{
			name: "UTF-8 label names, as newer Alertmanagers allow",
			change: func(m map[string]any) {
				labelsOf(m, 0)["k8s.pod"] = "checkout-7f9"
				delete(sourcetest.AlertAt(m, 0), "fingerprint")
			},
			check: func(t *testing.T, msg *alertmanager.Message) {
				require.Equal(t, "checkout-7f9", msg.Alerts[0].Labels["k8s.pod"])
				require.Equal(t, labelFingerprint(msg.Alerts[0].Labels), msg.Alerts[0].Fingerprint)
			},
		},
		{
			name: "endsAt equal to startsAt",
			change: func(m map[string]any) {
				sourcetest.AlertAt(m, 0)["status"] = "resolved"
				sourcetest.AlertAt(m, 0)["endsAt"] = sourcetest.AlertAt(m, 0)["startsAt"]
			},
		},
		{
			name: "limits are inclusive",
			change: func(m map[string]any) {
				sourcetest.AlertAt(m, 0)["labels"] = manyEntries(256)
				sourcetest.AlertAt(m, 0)["fingerprint"] = "0123456789abcdef"
				labelsOf(m, 1)["long"] = strings.Repeat("v", 16<<10)
				sourcetest.AlertAt(m, 1)["annotations"] = map[string]any{"description": strings.Repeat("d", 64<<10)}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := sourcetest.Edit(t, readFixture(t, "firing.json"), tt.change)
			msg, err := alertmanager.Parse(bytes.NewReader(body))
			require.NoError(t, err)
			if tt.check != nil {
				tt.check(t, msg)
			}
		})
	}
}

func TestParseDropsEmptyLabelValues(t *testing.T) {
	t.Parallel()
	// Alertmanager dropped the label "gone":"" it was sent before computing
	// the captured fingerprint; a sender that keeps it must get the same.
	body := sourcetest.Edit(t, readFixture(t, "empty_label_value_dropped.json"), func(m map[string]any) {
		labelsOf(m, 0)["gone"] = ""
		delete(sourcetest.AlertAt(m, 0), "fingerprint")
	})
	msg, err := alertmanager.Parse(bytes.NewReader(body))
	require.NoError(t, err)
	require.Equal(t, map[string]string{"alertname": "EmptyValue"}, msg.Alerts[0].Labels)
	require.Equal(t, "562a4742b25554c6", msg.Alerts[0].Fingerprint)
}

func TestParseRejects(t *testing.T) {
	t.Parallel()
	firing := readFixture(t, "firing.json")
	change := func(f func(m map[string]any)) []byte { return sourcetest.Edit(t, firing, f) }
	replace := func(old, repl string) []byte {
		require.Contains(t, string(firing), old)
		return bytes.Replace(firing, []byte(old), []byte(repl), 1)
	}
	tooManyAlerts := make([]any, 10_001)

	tests := []struct {
		name  string
		body  []byte
		field string
		want  string // part of the description
	}{
		// The body as a whole.
		{"empty body", nil, "", "got an empty body"},
		{"blank body", []byte(" \n"), "", "got an empty body"},
		{"truncated JSON", firing[:100], "", "unexpected end of input"},
		{"syntax error", []byte(`{"version" "4"}`), "", "invalid JSON at byte offset 11"},
		{"array", []byte(`[{}]`), "", "must be a JSON object, got an array"},
		{"null", []byte(`null`), "", "must be a JSON object, got null"},
		{"second object", append(bytes.Clone(firing), "{}"...), "", "unexpected data after the JSON value at byte offset 1114"},
		{"trailing garbage", append(bytes.Clone(firing), " ]"...), "", "byte offset 1115"},
		{"duplicate field", replace(`"version":"4"`, `"version":"4","version":"3"`), "version", "must appear only once"},

		// Message fields.
		{"version missing", change(func(m map[string]any) { delete(m, "version") }), "version", `is required and must be "4"`},
		{"version 3", change(func(m map[string]any) { m["version"] = "3" }), "version", `must be "4", got "3"`},
		{"version number", change(func(m map[string]any) { m["version"] = 4 }), "version", "must be a string, got a number"},
		{"status missing", change(func(m map[string]any) { delete(m, "status") }), "status", "is required"},
		{"status unknown", change(func(m map[string]any) { m["status"] = "pending" }), "status", `must be "firing" or "resolved", got "pending"`},
		{"receiver boolean", change(func(m map[string]any) { m["receiver"] = true }), "receiver", "must be a string, got a boolean"},
		{"receiver invalid UTF-8", replace(`"receiver":"vigil"`, "\"receiver\":\"vig\xffil\""), "receiver", "must be valid UTF-8"},
		{"groupKey too long", change(func(m map[string]any) { m["groupKey"] = strings.Repeat("k", 64<<10+1) }), "groupKey", "must be at most 65536 bytes long, got 65537"},
		{"truncatedAlerts negative", change(func(m map[string]any) { m["truncatedAlerts"] = -1 }), "truncatedAlerts", `must be a non-negative integer, got "-1"`},
		{"truncatedAlerts fraction", change(func(m map[string]any) { m["truncatedAlerts"] = 1.5 }), "truncatedAlerts", `got "1.5"`},
		{"truncatedAlerts string", change(func(m map[string]any) { m["truncatedAlerts"] = "2" }), "truncatedAlerts", "must be a non-negative integer, got a string"},
		{"groupLabels string", change(func(m map[string]any) { m["groupLabels"] = "alertname" }), "groupLabels", "must be an object, got a string"},
		{"commonLabels empty name", change(func(m map[string]any) { m["commonLabels"] = map[string]any{"": "x"} }), `commonLabels[""]`, "name must be a valid label name"},
		{"commonAnnotations number", change(func(m map[string]any) { m["commonAnnotations"] = map[string]any{"summary": 1} }), "commonAnnotations.summary", "must be a string, got a number"},
		{"externalURL array", change(func(m map[string]any) { m["externalURL"] = []any{} }), "externalURL", "must be a string, got an array"},

		// The alerts array.
		{"alerts missing", change(func(m map[string]any) { delete(m, "alerts") }), "alerts", "is required"},
		{"alerts null", change(func(m map[string]any) { m["alerts"] = nil }), "alerts", "is required"},
		{"alerts empty", change(func(m map[string]any) { m["alerts"] = []any{} }), "alerts", "must not be empty"},
		{"alerts object", change(func(m map[string]any) { m["alerts"] = map[string]any{} }), "alerts", "must be an array, got an object"},
		{"too many alerts", change(func(m map[string]any) { m["alerts"] = tooManyAlerts }), "alerts", "must hold at most 10000 alerts, got 10001"},
		{"alert null", change(func(m map[string]any) { m["alerts"].([]any)[1] = nil }), "alerts[1]", "must be an object, got null"},
		{"alert string", change(func(m map[string]any) { m["alerts"].([]any)[1] = "x" }), "alerts[1]", "must be an object, got a string"},

		// One alert's fields.
		{"alert status missing", change(func(m map[string]any) { delete(sourcetest.AlertAt(m, 1), "status") }), "alerts[1].status", "is required"},
		{"alert status unknown", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["status"] = "active" }), "alerts[1].status", `got "active"`},
		{"labels missing", change(func(m map[string]any) { delete(sourcetest.AlertAt(m, 1), "labels") }), "alerts[1].labels", "must not be empty"},
		{"labels empty", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"] = map[string]any{} }), "alerts[1].labels", "must not be empty"},
		{"labels all values empty", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"] = map[string]any{"a": ""} }), "alerts[1].labels", "at least one label with a non-empty value"},
		{"labels array", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"] = []any{"a"} }), "alerts[1].labels", "must be an object, got an array"},
		{"too many labels", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["labels"] = manyEntries(257) }), "alerts[1].labels", "must hold at most 256 entries, got 257"},
		{"label name empty", change(func(m map[string]any) { labelsOf(m, 1)[""] = "x" }), `alerts[1].labels[""]`, "name must be a valid label name"},
		{"label name too long", change(func(m map[string]any) { labelsOf(m, 1)[strings.Repeat("n", 1025)] = "x" }), "alerts[1].labels", "is 1025 bytes long, must be at most 1024"},
		{"label name invalid UTF-8", replace(`"service":"checkout"`, "\"serv\xffice\":\"checkout\""), "alerts[0].labels[\"serv\uFFFDice\"]", "name must be valid UTF-8"},
		{"label name duplicate", replace(`"service":"checkout"`, `"service":"checkout","service":"cart"`), "alerts[0].labels.service", "must appear only once"},
		{"label value number", change(func(m map[string]any) { labelsOf(m, 1)["severity"] = 2 }), "alerts[1].labels.severity", "must be a string, got a number"},
		{"label value null", change(func(m map[string]any) { labelsOf(m, 1)["severity"] = nil }), "alerts[1].labels.severity", "must be a string, got null"},
		{"label value object", change(func(m map[string]any) { labelsOf(m, 1)["k8s.pod"] = map[string]any{} }), `alerts[1].labels["k8s.pod"]`, "must be a string, got an object"},
		{"label value invalid UTF-8", replace(`"service":"checkout"`, "\"service\":\"check\xc3out\""), "alerts[0].labels.service", "must be valid UTF-8"},
		{"label value too long", change(func(m map[string]any) { labelsOf(m, 1)["severity"] = strings.Repeat("v", 16<<10+1) }), "alerts[1].labels.severity", "must be at most 16384 bytes long"},
		{"annotations string", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["annotations"] = "x" }), "alerts[1].annotations", "must be an object, got a string"},
		{"annotation value too long", change(func(m map[string]any) {
			sourcetest.AlertAt(m, 1)["annotations"] = map[string]any{"description": strings.Repeat("d", 64<<10+1)}
		}), "alerts[1].annotations.description", "must be at most 65536 bytes long"},
		{"startsAt missing", change(func(m map[string]any) { delete(sourcetest.AlertAt(m, 1), "startsAt") }), "alerts[1].startsAt", "is required"},
		{"startsAt zero", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["startsAt"] = "0001-01-01T00:00:00Z" }), "alerts[1].startsAt", "is required"},
		{"startsAt not RFC 3339", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["startsAt"] = "2026-11-22 07:29:07" }), "alerts[1].startsAt", `must be an RFC 3339 time, got "2026-11-22 07:29:07"`},
		{"startsAt number", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["startsAt"] = 1700000000 }), "alerts[1].startsAt", "must be a string, got a number"},
		{"endsAt not a time", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["endsAt"] = "soon" }), "alerts[1].endsAt", "must be an RFC 3339 time"},
		{"resolved without endsAt", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["status"] = "resolved" }), "alerts[1].endsAt", "is required for a resolved alert"},
		{"endsAt before startsAt", change(func(m map[string]any) {
			sourcetest.AlertAt(m, 1)["status"] = "resolved"
			sourcetest.AlertAt(m, 1)["endsAt"] = "2026-11-22T07:00:00Z"
		}), "alerts[1].endsAt", "must not be before startsAt"},
		{"generatorURL number", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["generatorURL"] = 1 }), "alerts[1].generatorURL", "must be a string, got a number"},
		{"fingerprint short", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["fingerprint"] = "e0a1e0c7" }), "alerts[1].fingerprint", `must be 16 hexadecimal digits, got "e0a1e0c7"`},
		{"fingerprint not hex", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["fingerprint"] = "e0a1e0c7280b928g" }), "alerts[1].fingerprint", "must be 16 hexadecimal digits"},
		{"fingerprint number", change(func(m map[string]any) { sourcetest.AlertAt(m, 1)["fingerprint"] = 123 }), "alerts[1].fingerprint", "must be a string, got a number"},
		{"alert field duplicate", replace(`"fingerprint":"7773b07b38325c6c"`, `"fingerprint":"7773b07b38325c6c","fingerprint":"x"`), "alerts[0].fingerprint", "must appear only once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg, err := alertmanager.Parse(bytes.NewReader(tt.body))
			require.Nil(t, msg)
			var verr *server.BadRequestError
			require.ErrorAs(t, err, &verr)
			require.Len(t, verr.Violations, 1, "exactly one violation: %v", verr)
			require.Equal(t, tt.field, verr.Violations[0].Field)
			require.Contains(t, verr.Violations[0].Description, tt.want)
		})
	}
}

func TestParseReportsAllViolations(t *testing.T) {
	t.Parallel()
	body := sourcetest.Edit(t, readFixture(t, "firing.json"), func(m map[string]any) {
		m["version"] = "3"
		sourcetest.AlertAt(m, 0)["labels"] = map[string]any{}
		sourcetest.AlertAt(m, 1)["status"] = "resolved"
	})
	_, err := alertmanager.Parse(bytes.NewReader(body))
	var verr *server.BadRequestError
	require.ErrorAs(t, err, &verr)
	require.Equal(t, []server.FieldViolation{
		{Field: "version", Description: `must be "4", got "3"`},
		{Field: "alerts[0].labels", Description: "must not be empty"},
		{Field: "alerts[1].endsAt", Description: "is required for a resolved alert"},
	}, verr.Violations)
	require.EqualError(t, err, `invalid alertmanager webhook: version: must be "4", got "3"; `+
		`alerts[0].labels: must not be empty; alerts[1].endsAt: is required for a resolved alert`)
}

func TestParseCapsViolations(t *testing.T) {
	t.Parallel()
	body := sourcetest.Edit(t, readFixture(t, "firing.json"), func(m map[string]any) { m["alerts"] = make([]any, 150) })
	_, err := alertmanager.Parse(bytes.NewReader(body))
	var verr *server.BadRequestError
	require.ErrorAs(t, err, &verr)
	require.Len(t, verr.Violations, 101)
	require.Equal(t, "alerts[99]", verr.Violations[99].Field)
	require.Equal(t, server.FieldViolation{Description: "50 more violations not shown"}, verr.Violations[100])
}

// Parsers are pooled: what one body leaves behind (violations, members, a
// large buffer) does not leak into the results of the next, and results
// hold no bytes of a body whose buffer is reused.
func TestParseBodiesInTurn(t *testing.T) {
	t.Parallel()
	valid := readFixture(t, "firing.json")
	invalid := sourcetest.Edit(t, valid, func(m map[string]any) { m["version"] = "3" })
	large := sourcetest.Edit(t, valid, func(m map[string]any) {
		alerts := make([]any, 5000)
		for i := range alerts {
			alerts[i] = map[string]any{"status": "firing", "labels": map[string]any{"alertname": fmt.Sprint("A", i)}, "startsAt": "2026-11-22T07:00:00Z"}
		}
		m["alerts"] = alerts
	})
	want, err := alertmanager.Parse(bytes.NewReader(valid))
	require.NoError(t, err)
	for range 3 {
		_, err := alertmanager.Parse(bytes.NewReader(invalid))
		var verr *server.BadRequestError
		require.ErrorAs(t, err, &verr)
		require.Len(t, verr.Violations, 1)

		got, err := alertmanager.Parse(bytes.NewReader(large))
		require.NoError(t, err)
		require.Len(t, got.Alerts, 5000)
		require.Equal(t, "A4999", got.Alerts[4999].Labels["alertname"])

		got, err = alertmanager.Parse(bytes.NewReader(valid))
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	// Scribbling over the buffers of later parses leaves earlier results
	// as they were.
	first, err := alertmanager.Parse(bytes.NewReader(valid))
	require.NoError(t, err)
	_, err = alertmanager.Parse(bytes.NewReader(bytes.ReplaceAll(valid, []byte("HighLatency"), []byte("XXXXXXXXXXX"))))
	require.NoError(t, err)
	require.Equal(t, want, first)
}

func TestParseReadError(t *testing.T) {
	t.Parallel()
	boom := errors.New("connection reset")
	_, err := alertmanager.Parse(iotest.ErrReader(boom))
	require.ErrorIs(t, err, boom)
	var verr *server.BadRequestError
	require.NotErrorAs(t, err, &verr)

	// The caller's body limit stays recognisable, for a 413.
	_, err = alertmanager.Parse(http.MaxBytesReader(nil, io.NopCloser(bytes.NewReader(readFixture(t, "firing.json"))), 64))
	var tooLarge *http.MaxBytesError
	require.ErrorAs(t, err, &tooLarge)
}

func FuzzParse(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	require.NoError(f, err)
	for _, file := range files {
		f.Add(readFixture(f, filepath.Base(file)))
	}
	f.Add([]byte(`{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]}`))
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[{"status":"resolved","labels":{"a":"","b":"\ud800"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"2026-01-01T00:00:01Z","fingerprint":"ABCDEF0123456789"}]}`))
	f.Add([]byte(`{"alerts":[null,{},[],"x"]}`))

	f.Fuzz(func(t *testing.T, body []byte) {
		msg, err := alertmanager.Parse(bytes.NewReader(body))
		if err != nil {
			require.Nil(t, msg)
			var verr *server.BadRequestError
			require.ErrorAs(t, err, &verr)
			require.NotEmpty(t, verr.Violations)
			for _, v := range verr.Violations {
				require.NotEmpty(t, v.Description)
			}
			return
		}
		require.Equal(t, "4", msg.Version)
		require.NotEmpty(t, msg.Alerts)
		for i, a := range msg.Alerts {
			require.Len(t, a.Fingerprint, 16, "alerts[%d].fingerprint", i)
			_, err := model.ParseFingerprint(a.Fingerprint)
			require.NoError(t, err, "alerts[%d].fingerprint", i)
			require.Equal(t, strings.ToLower(a.Fingerprint), a.Fingerprint)
			require.Contains(t, []alertmanager.Status{alertmanager.StatusFiring, alertmanager.StatusResolved}, a.Status)
			require.NotEmpty(t, a.Labels)
			require.False(t, a.StartsAt.IsZero())
		}
	})
}

// BenchmarkParse parses a body captured from Alertmanager (two alerts).
func BenchmarkParse(b *testing.B) {
	body := readFixture(b, "firing.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := alertmanager.Parse(bytes.NewReader(body)); err != nil {
			b.Fatal(err)
		}
	}
}
