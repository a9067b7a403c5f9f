// Package monitortest gives a test a database of its own with monitor's
// schema migrated: its tables and its outbox.
package monitortest

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// Pool returns a pool on a fresh database whose search_path is the migrated
// schema "monitor", and the database's URL (for more pools, as replicas
// have). Both go when the test ends.
func Pool(t testing.TB) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := testkit.Postgres(t)
	return PoolAt(t, dsn), dsn
}

// PoolAt returns a pool on dsn whose search_path is the migrated schema
// "monitor"; it closes when the test ends.
func PoolAt(t testing.TB, dsn string) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, dsn, "monitor")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, outbox.Migrate(ctx, pool, "monitor"))
	require.NoError(t, appteam.Migrate(ctx, pool, "monitor"))
	require.NoError(t, db.Migrate(ctx, pool, "monitor", db.Sub(postgres.Migrations, "migrations")))
	return pool
}

// RequireCountersMatch checks every incident's alert_count and firing_count
// against a recount of its alerts.
func RequireCountersMatch(t testing.TB, pool *pgxpool.Pool) {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT i.id, i.alert_count, i.firing_count,
		(SELECT count(*) FROM alerts a WHERE a.incident_id = i.id),
		(SELECT count(*) FROM alerts a WHERE a.incident_id = i.id AND a.status = 'firing')
		FROM incidents i`)
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id string
		var total, firing int32
		var realTotal, realFiring int64
		require.NoError(t, rows.Scan(&id, &total, &firing, &realTotal, &realFiring))
		assert.Equal(t, realTotal, int64(total), "alert_count of %s", id)
		assert.Equal(t, realFiring, int64(firing), "firing_count of %s", id)
	}
	require.NoError(t, rows.Err())
}

// Escalated returns every incident.escalated on the INCIDENTS stream of js
// so far, in order.
func Escalated(t testing.TB, js jetstream.JetStream) []*eventsv1.IncidentEscalated {
	t.Helper()
	return Published[*eventsv1.IncidentEscalated](t, js, bus.SubjectIncidentEscalated)
}

// Published returns every event of subject on the INCIDENTS stream of js
// so far, in order.
func Published[E bus.Event](t testing.TB, js jetstream.JetStream, subject string) []E {
	t.Helper()
	var out []E
	for _, e := range Incidents(t, js, subject) {
		out = append(out, e.(E))
	}
	return out
}

// Incidents returns every event on the INCIDENTS stream of js so far
// whose subject matches filter ("incident.>" for all), in order.
func Incidents(t testing.TB, js jetstream.JetStream, filter string) []bus.Event {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, "INCIDENTS")
	require.NoError(t, err)
	info, err := s.Info(ctx, jetstream.WithSubjectFilter(filter))
	require.NoError(t, err)
	var want int
	for _, n := range info.State.Subjects {
		want += int(n)
	}
	if want == 0 {
		return nil
	}
	c, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{FilterSubjects: []string{filter}})
	require.NoError(t, err)
	var out []bus.Event
	for len(out) < want {
		msgs, err := c.Fetch(want-len(out), jetstream.FetchMaxWait(5*time.Second))
		require.NoError(t, err)
		for m := range msgs.Messages() {
			evs, err := bus.Decode(m.Subject(), m.Data())
			require.NoError(t, err)
			out = append(out, evs...)
		}
		require.NoError(t, msgs.Error())
	}
	return out
}
