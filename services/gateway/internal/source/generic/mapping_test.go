package generic_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"sigs.k8s.io/yaml"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/generic"
)

// examples are the mappings and payloads docs/sources/generic.md ships:
// tested here, so they cannot rot.
const examples = "../../../../../docs/sources/examples"

func example(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(examples, name))
	require.NoError(t, err)
	return b
}

func exampleMapping(t testing.TB, dir string) generic.Mapping {
	t.Helper()
	var m generic.Mapping
	require.NoError(t, yaml.UnmarshalStrict(example(t, dir+"/mapping.yaml"), &m))
	return m
}

var now = time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC)

// want is what one alert should be: its labels, annotations checked only
// for the keys given.
type want struct {
	labels      map[string]string
	annotations map[string]string
	resolved    bool
	startsAt    time.Time
	endsAt      time.Time
	link        string
}

func check(t *testing.T, got *typesv1.Alert, w want) {
	t.Helper()
	assert.Equal(t, w.labels, got.GetLabels())
	for k, v := range w.annotations {
		assert.Equal(t, v, got.GetAnnotations()[k], "annotation %s", k)
	}
	status := typesv1.AlertStatus_ALERT_STATUS_FIRING
	if w.resolved {
		status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	}
	assert.Equal(t, status, got.GetStatus())
	assert.Equal(t, typesv1.AlertSource_ALERT_SOURCE_GENERIC, got.GetSource())
	if !w.startsAt.IsZero() {
		assert.Equal(t, w.startsAt.UTC(), got.GetStartsAt().AsTime())
	}
	if !w.endsAt.IsZero() {
		assert.Equal(t, w.endsAt.UTC(), got.GetEndsAt().AsTime())
	} else {
		assert.Nil(t, got.GetEndsAt())
	}
	assert.Equal(t, w.link, got.GetGeneratorUrl())
}

func TestExamples(t *testing.T) {
	t.Parallel()
	shop := map[string]string{
		"alertname": "shop: 5xx rate above 5%", "monitor_id": "123456789", "scope": "kube_namespace:shop",
		"severity": "critical", "namespace": "shop", "service": "shop-api",
	}
	datadogLink := "https://app.datadoghq.com/monitors/123456789?group=kube_namespace%3Ashop"
	kuma := map[string]string{
		"alertname": "MonitorDown", "monitor": "shop API", "monitor_type": "http",
		"instance": "https://shop.example.com/healthz", "severity": "critical",
	}
	for _, tc := range []struct {
		dir, payload string
		want         []want
	}{
		{"datadog", "payload.json", []want{{
			labels: shop, startsAt: time.Unix(1780000000, 0),
			annotations: map[string]string{"summary": "[Triggered on {kube_namespace:shop}] shop: 5xx rate above 5%", "priority": "P2"},
			link:        datadogLink,
		}}},
		// The same labels: the recovery resolves the alert it fired.
		{"datadog", "recovered.json", []want{{
			labels: shop, resolved: true, startsAt: time.Unix(1780000900, 0), endsAt: now, link: datadogLink,
		}}},
		{"uptime-kuma", "down.json", []want{{
			labels: kuma, startsAt: time.Date(2026, 5, 28, 9, 12, 40, 214e6, time.UTC),
			annotations: map[string]string{"summary": "[shop API] [🔴 Down] timeout of 48000ms exceeded", "description": "timeout of 48000ms exceeded"},
		}}},
		{"uptime-kuma", "up.json", []want{{
			labels: kuma, resolved: true, startsAt: time.Date(2026, 5, 28, 9, 20, 41, 2e6, time.UTC), endsAt: now,
			annotations: map[string]string{"description": "200 - OK"},
		}}},
		{"uptime-kuma", "test.json", nil},
		{"curl", "payload.json", []want{
			{
				labels: map[string]string{"alertname": "BackupFailed", "instance": "db-1", "severity": "critical", "namespace": "shop"}, startsAt: now,
				annotations: map[string]string{"summary": "nightly pg_dump exited 1"},
			},
			{labels: map[string]string{"alertname": "DiskAlmostFull", "instance": "db-1", "severity": "warning"}, startsAt: now},
			{labels: map[string]string{"alertname": "CertExpiring", "instance": "edge-2", "severity": "warning"}, resolved: true, startsAt: now, endsAt: now},
		}},
	} {
		t.Run(tc.dir+"/"+tc.payload, func(t *testing.T) {
			t.Parallel()
			prg, err := generic.Compile(exampleMapping(t, tc.dir))
			require.NoError(t, err)
			got, err := prg.Map(example(t, tc.dir+"/"+tc.payload), http.Header{}, now)
			require.NoError(t, err)
			require.Len(t, got, len(tc.want))
			require.NoError(t, source.Validate(got), "what the mapping makes passes the sources' shared checks")
			for i, w := range tc.want {
				check(t, got[i], w)
			}
		})
	}
	// Datadog's template is valid JSON once its variables are filled in:
	// they all sit inside strings.
	tpl := example(t, "datadog/template.json")
	var m generic.Mapping
	require.NoError(t, yaml.Unmarshal(tpl, &m), "template.json is JSON")
}

func TestCompileRefuses(t *testing.T) {
	t.Parallel()
	ok := map[string]string{"alertname": `"X"`}
	for _, tc := range []struct {
		name    string
		m       generic.Mapping
		field   string
		message string
	}{
		{"no labels", generic.Mapping{}, "mapping.labels", "at least one label"},
		{"syntax", generic.Mapping{Labels: map[string]string{"alertname": "body.name +"}}, "mapping.labels.alertname", "Syntax error"},
		{"unknown variable", generic.Mapping{Labels: map[string]string{"alertname": "request.name"}}, "mapping.labels.alertname", "undeclared reference to 'request'"},
		{"unknown function", generic.Mapping{Labels: ok, Status: `http.get("x")`}, "mapping.status", "undeclared reference"},
		{"type error", generic.Mapping{Labels: ok, Annotations: map[string]string{"summary": `1 + "a"`}}, "mapping.annotations.summary", "no matching overload"},
		{"bad label name", generic.Mapping{Labels: map[string]string{"": `"x"`}}, "mapping.labels", "not a valid label name"},
		{"empty expression", generic.Mapping{Labels: map[string]string{"alertname": ""}}, "mapping.labels.alertname", "must not be empty"},
		{"too long", generic.Mapping{Labels: map[string]string{"alertname": `"` + strings.Repeat("x", generic.MaxExpression) + `"`}}, "mapping.labels.alertname", "at most"},
		{"alerts", generic.Mapping{Labels: ok, Alerts: "body.alerts["}, "mapping.alerts", "Syntax error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			prg, err := generic.Compile(tc.m)
			require.Nil(t, prg)
			bad, ok := errors.AsType[*server.BadRequestError](err)
			require.True(t, ok, "%T: %v", err, err)
			require.NotEmpty(t, bad.Violations)
			assert.Equal(t, tc.field, bad.Violations[0].Field)
			assert.Contains(t, bad.Violations[0].Description, tc.message)
		})
	}
}

func TestMapRefuses(t *testing.T) {
	t.Parallel()
	m := generic.Mapping{
		Alerts: "body.alerts",
		Labels: map[string]string{"alertname": "item.name"},
		Status: "item.state",
	}
	prg, err := generic.Compile(m)
	require.NoError(t, err)
	for _, tc := range []struct {
		name, body, field, message string
	}{
		{"not JSON", `{"alerts":`, "body", "not JSON"},
		{"two values", `{} {}`, "body", "more than one value"},
		{"too deep", strings.Repeat("[", generic.MaxDepth+2) + strings.Repeat("]", generic.MaxDepth+2), "body", "nested deeper"},
		{"no such key", `{"items":[]}`, "alerts", "no such key"},
		{"not a list", `{"alerts":{"a":1}}`, "alerts", "must yield a list"},
		{"label of an object", `{"alerts":[{"name":{"x":1},"state":"firing"}]}`, "alerts[0].labels.alertname", "must yield a string"},
		{"second alert fails", `{"alerts":[{"name":"a","state":"firing"},{"state":"firing"}]}`, "alerts[1].labels.alertname", "no such key"},
		{"bad status", `{"alerts":[{"name":"a","state":"burning"}]}`, "alerts[0].status", `"burning"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			alerts, err := prg.Map([]byte(tc.body), nil, now)
			require.Nil(t, alerts)
			bad, ok := errors.AsType[*server.BadRequestError](err)
			require.True(t, ok, "%T: %v", err, err)
			require.NotEmpty(t, bad.Violations)
			assert.Equal(t, tc.field, bad.Violations[0].Field)
			assert.Contains(t, bad.Violations[0].Description, tc.message)
		})
	}
}

// A mapping's evaluation is bounded: an expression that would run long
// on a large body stops at the cost limit, and is refused.
func TestMapCostLimit(t *testing.T) {
	t.Parallel()
	prg, err := generic.Compile(generic.Mapping{Labels: map[string]string{
		"alertname": `body.xs.map(a, body.xs.map(b, body.xs.map(c, a + b + c))).size() > 0 ? "x" : "y"`,
	}})
	require.NoError(t, err)
	xs := "[" + strings.Repeat(`"xxxxxxxxxx",`, 999) + `"x"]`
	// Time is bounded too (TestMapTimeBound); here only cost may stop it.
	_, err = prg.WithEvalTime(10*time.Minute).Map([]byte(`{"xs":`+xs+`}`), nil, now)
	bad, ok := errors.AsType[*server.BadRequestError](err)
	require.True(t, ok, "%T: %v", err, err)
	assert.Equal(t, "labels.alertname", bad.Violations[0].Field)
	assert.Contains(t, bad.Violations[0].Description, "cost limit")
}

// A request whose evaluations stay under every cost limit one by one but
// would run for a long time altogether (many items, each costly) is
// stopped by the request's deadline, or by its total cost, and refused.
func TestMapTimeBound(t *testing.T) {
	t.Parallel()
	prg, err := generic.Compile(generic.Mapping{
		Alerts: "body.xs",
		Labels: map[string]string{"alertname": `body.xs.map(a, a + a).size() > 0 ? "x" : "y"`},
	})
	require.NoError(t, err)
	xs := "[" + strings.Repeat(`"xxxxxxxxxxxxxxxxxxxx",`, 4999) + `"x"]`
	_, err = prg.Map([]byte(`{"xs":`+xs+`}`), nil, now)
	bad, ok := errors.AsType[*server.BadRequestError](err)
	require.True(t, ok, "%T: %v", err, err)
	require.NotEmpty(t, bad.Violations)
	d := bad.Violations[len(bad.Violations)-1].Description
	assert.True(t, strings.Contains(d, "took too long") || strings.Contains(d, "cost limit"), d)
}

// Headers reach a mapping, credentials do not.
func TestMapHeaders(t *testing.T) {
	t.Parallel()
	prg, err := generic.Compile(generic.Mapping{Labels: map[string]string{
		"alertname": `headers["x-event"]`,
		"auth":      `headers.?authorization.orValue("hidden")`,
		"signature": `headers[?"x-vigil-signature"].orValue("hidden")`,
	}})
	require.NoError(t, err)
	h := http.Header{}
	h.Set("X-Event", "push")
	h.Set("Authorization", "Bearer secret")
	h.Set("X-Vigil-Signature", "t=1,v1=00")
	got, err := prg.Map([]byte(`{}`), h, now)
	require.NoError(t, err)
	require.Len(t, got, 1)
	assert.Equal(t, map[string]string{"alertname": "push", "auth": "hidden", "signature": "hidden"}, got[0].GetLabels())
}

func TestMapValues(t *testing.T) {
	t.Parallel()
	prg, err := generic.Compile(generic.Mapping{
		Labels: map[string]string{
			"alertname": `"X"`, "count": "body.n", "ratio": "body.r", "up": "body.up",
			"gone": "body.nothing", "absent": `body.?missing.orValue("")`,
		},
		StartsAt: "body.start", EndsAt: `timestamp("2026-06-01T13:00:00Z")`,
		Status: `"RESOLVED"`, GeneratorURL: `"https://example.com/" + string(body.n)`,
	})
	require.NoError(t, err)
	got, err := prg.Map([]byte(`{"n": 42, "r": 0.5, "up": false, "nothing": null, "start": "2026-06-01T11:00:00+01:00"}`), nil, now)
	require.NoError(t, err)
	require.Len(t, got, 1)
	check(t, got[0], want{
		labels:   map[string]string{"alertname": "X", "count": "42", "ratio": "0.5", "up": "false"},
		resolved: true, startsAt: time.Date(2026, 6, 1, 10, 0, 0, 0, time.UTC), endsAt: time.Date(2026, 6, 1, 13, 0, 0, 0, time.UTC),
		link: "https://example.com/42",
	})
}
