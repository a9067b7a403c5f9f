package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// The data set of docs/benchmarks.md: 1,000,000 alerts in 2,000 incidents
// (20 alertnames × 100 namespaces, 500 alerts each, 10% resolved), last
// seen over the past hour, plus one incident of 50,000 alerts.
const (
	benchNames      = 20
	benchNamespaces = 100
	benchPerGroup   = 500
	benchBig        = 50_000
)

func loadSearchData(b *testing.B) *pgxpool.Pool {
	b.Helper()
	ctx := context.Background()
	pool, _ := monitortest.Pool(b)
	start := time.Now()
	_, err := pool.Exec(ctx, `INSERT INTO incidents (id, group_key, group_labels, title, severity, status, app, namespace,
		correlation_id, opened_at, updated_at, alert_count, firing_count, last_event_at)
		SELECT gen_random_uuid(), format('{alertname="Alert%s", namespace="ns%s"}', n, ns),
			jsonb_build_object('alertname', 'Alert' || n, 'namespace', 'ns' || ns),
			format('Alert%s in ns%s', n, ns), 2, 'open', '', 'ns' || ns, '', now() - interval '1 hour', now(),
			$1, $1 * 9 / 10, now()
		FROM generate_series(0, $2 - 1) n, generate_series(0, $3 - 1) ns`, benchPerGroup, benchNames, benchNamespaces)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `INSERT INTO alerts (incident_id, fingerprint, status, labels, annotations, source,
		starts_at, generator_url, count, first_seen_at, last_seen_at)
		SELECT i.id, md5(i.group_key || k), CASE WHEN k % 10 = 0 THEN 'resolved' ELSE 'firing' END,
			i.group_labels || jsonb_build_object('instance', 'i-' || k, 'severity', 'warning', 'job', 'job' || (k % 7)),
			'{"summary": "bench"}', 1, now() - interval '2 hours', 'http://prometheus/graph', 1,
			now() - interval '1 hour', now() - (random() * interval '1 hour')
		FROM incidents i, generate_series(0, $1 - 1) k`, benchPerGroup)
	require.NoError(b, err)
	_, err = pool.Exec(ctx, `WITH big AS (
			INSERT INTO incidents (id, group_key, group_labels, title, severity, status, namespace, correlation_id,
				opened_at, updated_at, alert_count, firing_count, last_event_at)
			VALUES (gen_random_uuid(), '{alertname="Big"}', '{"alertname": "Big"}', 'Big', 2, 'open', '', '',
				now(), now(), $1, $1, now()) RETURNING id)
		INSERT INTO alerts (incident_id, fingerprint, status, labels, annotations, source, starts_at, count,
			first_seen_at, last_seen_at)
		SELECT big.id, md5('big' || k), 'firing', jsonb_build_object('alertname', 'Big', 'instance', 'b-' || k),
			'{}', 1, now(), 1, now(), now() - (random() * interval '1 hour')
		FROM big, generate_series(0, $1 - 1) k`, benchBig)
	require.NoError(b, err)
	for _, table := range []string{"alerts", "incidents"} {
		_, err = pool.Exec(ctx, `VACUUM ANALYZE `+table)
		require.NoError(b, err)
	}
	b.Logf("loaded %d alerts in %s", benchNames*benchNamespaces*benchPerGroup+benchBig, time.Since(start).Round(time.Second))
	return pool
}

// BenchmarkSearch measures the API's reads on 1,000,000 stored alerts and
// logs each query's plan (EXPLAIN ANALYZE). Run:
//
//	go test -run '^$' -bench Search -benchtime 200x ./internal/postgres
func BenchmarkSearch(b *testing.B) {
	pool := loadSearchData(b)
	ctx := context.Background()
	var store postgres.Store
	var incidentID, bigID string
	require.NoError(b, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE group_key = '{alertname="Alert7", namespace="ns42"}'`).Scan(&incidentID))
	require.NoError(b, pool.QueryRow(ctx, `SELECT id::text FROM incidents WHERE group_key = '{alertname="Big"}'`).Scan(&bigID))

	cases := []struct {
		name string
		run  func() error
	}{
		{"ListAlerts/alertname", func() error {
			_, _, err := store.ListAlerts(ctx, pool, postgres.AlertFilter{Matchers: []postgres.LabelMatch{{Name: "alertname", Op: postgres.MatchEqual, Value: "Alert7"}}}, 50, "")
			return err
		}},
		{"ListAlerts/instance", func() error {
			_, _, err := store.ListAlerts(ctx, pool, postgres.AlertFilter{Matchers: []postgres.LabelMatch{{Name: "instance", Op: postgres.MatchEqual, Value: "i-321"}}}, 50, "")
			return err
		}},
		{"ListAlerts/regexp", func() error {
			_, _, err := store.ListAlerts(ctx, pool, postgres.AlertFilter{Matchers: []postgres.LabelMatch{{Name: "namespace", Op: postgres.MatchRegexp, Value: "ns4[0-9]"}}}, 50, "")
			return err
		}},
		{"ListAlerts/firing", func() error {
			_, _, err := store.ListAlerts(ctx, pool, postgres.AlertFilter{States: []postgres.AlertState{postgres.StateFiring}}, 50, "")
			return err
		}},
		{"GetIncident", func() error {
			_, _, err := store.Get(ctx, pool, incidentID, 50)
			return err
		}},
		{"GetIncident/50k", func() error {
			_, _, err := store.Get(ctx, pool, bigID, 50)
			return err
		}},
		{"ListIncidents", func() error {
			_, _, err := store.List(ctx, pool, postgres.Filter{}, 50, "")
			return err
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			durations := make([]time.Duration, 0, b.N)
			for b.Loop() {
				t := time.Now()
				if err := c.run(); err != nil {
					b.Fatal(err)
				}
				durations = append(durations, time.Since(t))
			}
			slices.Sort(durations)
			p := func(q float64) float64 {
				return float64(durations[int(q*float64(len(durations)-1))].Microseconds()) / 1000
			}
			b.ReportMetric(p(0.5), "p50-ms")
			b.ReportMetric(p(0.99), "p99-ms")
		})
	}
	explain(b, pool, `SELECT * FROM alerts WHERE labels @> '{"alertname": "Alert7"}'::jsonb
		ORDER BY last_seen_at DESC, fingerprint DESC, coalesce(incident_id, '00000000-0000-0000-0000-000000000000') DESC LIMIT 51`)
	explain(b, pool, `SELECT * FROM alerts WHERE labels @> '{"instance": "i-321"}'::jsonb
		ORDER BY last_seen_at DESC, fingerprint DESC, coalesce(incident_id, '00000000-0000-0000-0000-000000000000') DESC LIMIT 51`)
	explain(b, pool, fmt.Sprintf(`SELECT * FROM alerts WHERE incident_id = '%s'
		ORDER BY last_seen_at DESC, fingerprint DESC, coalesce(incident_id, '00000000-0000-0000-0000-000000000000') DESC LIMIT 51`, bigID))
}

func explain(b *testing.B, pool *pgxpool.Pool, sql string) {
	b.Helper()
	rows, err := pool.Query(context.Background(), "EXPLAIN (ANALYZE, BUFFERS) "+sql)
	require.NoError(b, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var line string
		require.NoError(b, rows.Scan(&line))
		plan = append(plan, line)
	}
	require.NoError(b, rows.Err())
	b.Logf("%s\n%s", strings.Join(strings.Fields(sql), " "), strings.Join(plan, "\n"))
}
