package postgres_test

import (
	"context"
	"encoding/base64"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// TestMain is the package's only one: testkit stops the shared Postgres.
func TestMain(m *testing.M) { testkit.Main(m) }

// silenceDB is a migrated monitor schema on a fresh database.
func silenceDB(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := monitortest.Pool(t)
	return pool
}

// now is the tests' present, as Postgres stores it.
var now = time.Now().UTC().Truncate(time.Microsecond)

// newSilence creates a silence as if at createdAt, from start to end
// (offsets from now), and stores it.
func newSilence(t *testing.T, q postgres.Querier, createdAt, start, end time.Duration, matchers ...string) *silence.Silence {
	t.Helper()
	if len(matchers) == 0 {
		matchers = []string{`alertname="X"`}
	}
	s, err := silence.New(silence.Params{
		Matchers: matchers, StartsAt: now.Add(start), EndsAt: now.Add(end), CreatedBy: "alice", Comment: "test",
	}, now.Add(createdAt))
	require.NoError(t, err)
	require.NoError(t, postgres.Silences{}.Create(context.Background(), q, s))
	return s
}

func expire(t *testing.T, pool *pgxpool.Pool, id string, at time.Time) (*silence.Silence, error) {
	t.Helper()
	var s *silence.Silence
	err := db.InTx(context.Background(), pool, func(tx pgx.Tx) (err error) {
		s, err = postgres.Silences{}.Expire(context.Background(), tx, id, "bob", at)
		return err
	})
	return s, err
}

func ids(ss []*silence.Silence) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID()
	}
	return out
}

func TestSilenceCreateGet(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	ctx := context.Background()
	s, err := silence.New(silence.Params{
		Matchers: []string{`alertname="Backup"`, `{namespace=~"db|cache", "service.name"!="x"}`},
		EndsAt:   now.Add(30 * 24 * time.Hour), CreatedBy: "alice", Comment: "nightly backups",
		Schedule: &silence.Schedule{TimeZone: "Europe/Berlin", Windows: []silence.Window{
			{Days: []string{"mon", "fri"}, Start: "22:00", End: "02:00"},
			{Start: "12:00", End: "12:30"},
		}},
	}, now)
	require.NoError(t, err)
	require.NoError(t, postgres.Silences{}.Create(ctx, pool, s))

	got, err := postgres.Silences{}.Get(ctx, pool, s.ID())
	require.NoError(t, err)
	require.Equal(t, s.Record(), got.Record())
	require.Equal(t, []string{`alertname="Backup"`, `namespace=~"db|cache"`, `service.name!="x"`}, got.Record().Matchers)

	plain := newSilence(t, pool, 0, 0, time.Hour)
	got, err = postgres.Silences{}.Get(ctx, pool, plain.ID())
	require.NoError(t, err)
	require.Nil(t, got.Record().Schedule)
	require.Equal(t, plain.Record(), got.Record())
}

func TestSilenceGetUnknown(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	for _, id := range []string{"0198a0a0-0000-7000-8000-000000000000", "not-a-uuid", ""} {
		_, err := postgres.Silences{}.Get(context.Background(), pool, id)
		require.ErrorIs(t, err, silence.ErrNotFound, "id %q", id)
	}
}

func TestSilenceList(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	ctx := context.Background()
	// Created one minute apart, oldest first.
	ended := newSilence(t, pool, -5*time.Hour, -5*time.Hour, -time.Hour)
	active1 := newSilence(t, pool, -4*time.Hour, -4*time.Hour, time.Hour)
	expiredByHand := newSilence(t, pool, -3*time.Hour, -3*time.Hour, time.Hour)
	pending := newSilence(t, pool, -2*time.Hour, time.Hour, 2*time.Hour)
	active2 := newSilence(t, pool, -time.Hour, -time.Hour, time.Hour)
	_, err := expire(t, pool, expiredByHand.ID(), now.Add(-time.Minute))
	require.NoError(t, err)

	list := func(states ...silence.State) []string {
		t.Helper()
		ss, next, err := postgres.Silences{}.List(ctx, pool, postgres.SilenceFilter{States: states}, now, 100, "")
		require.NoError(t, err)
		require.Empty(t, next)
		for _, s := range ss {
			if len(states) > 0 {
				require.Contains(t, states, s.State(now), "SQL and Silence.State agree")
			}
		}
		return ids(ss)
	}
	require.Equal(t, ids([]*silence.Silence{active2, pending, expiredByHand, active1, ended}), list(), "newest first")
	require.Equal(t, []string{active2.ID(), active1.ID()}, list(silence.StateActive))
	require.Equal(t, []string{pending.ID()}, list(silence.StatePending))
	require.Equal(t, []string{expiredByHand.ID(), ended.ID()}, list(silence.StateExpired))
	require.Equal(t, []string{active2.ID(), pending.ID(), active1.ID()}, list(silence.StateActive, silence.StatePending))

	// Pages of two, newest first, end to end.
	var got []string
	token := ""
	for pages := 0; ; pages++ {
		require.Less(t, pages, 3)
		ss, next, err := postgres.Silences{}.List(ctx, pool, postgres.SilenceFilter{}, now, 2, token)
		require.NoError(t, err)
		got = append(got, ids(ss)...)
		if next == "" {
			break
		}
		token = next
	}
	require.Equal(t, list(), got)

	notUUID := base64.RawURLEncoding.EncodeToString([]byte(now.Format(time.RFC3339Nano) + "|not-a-uuid"))
	for _, bad := range []string{"garbage!", notUUID} {
		_, _, err = postgres.Silences{}.List(ctx, pool, postgres.SilenceFilter{}, now, 2, bad)
		var br *server.BadRequestError
		require.ErrorAs(t, err, &br, "token %q", bad)
		require.Equal(t, []server.FieldViolation{{Field: "page_token", Description: "is not a token this API returned"}}, br.Violations)
	}
}

func TestSilenceExpire(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	s := newSilence(t, pool, 0, 0, time.Hour)

	got, err := expire(t, pool, s.ID(), now.Add(time.Minute))
	require.NoError(t, err)
	require.Equal(t, silence.StateExpired, got.State(now.Add(time.Minute)))
	stored, err := postgres.Silences{}.Get(context.Background(), pool, s.ID())
	require.NoError(t, err)
	require.Equal(t, got.Record(), stored.Record())
	require.Equal(t, "bob", stored.Record().ExpiredBy)
	require.Equal(t, now.Add(time.Minute), stored.Record().ExpiredAt)

	_, err = expire(t, pool, s.ID(), now.Add(2*time.Minute))
	require.ErrorIs(t, err, silence.ErrExpired)
	again, err := postgres.Silences{}.Get(context.Background(), pool, s.ID())
	require.NoError(t, err)
	require.Equal(t, stored.Record(), again.Record(), "a refused expiry changes nothing")

	ended := newSilence(t, pool, -2*time.Hour, -2*time.Hour, -time.Hour)
	_, err = expire(t, pool, ended.ID(), now)
	require.ErrorIs(t, err, silence.ErrExpired, "one that ended on its own")

	_, err = expire(t, pool, "0198a0a0-0000-7000-8000-000000000000", now)
	require.ErrorIs(t, err, silence.ErrNotFound)
}

func TestSilenceActive(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	ctx := context.Background()
	newSilence(t, pool, -2*time.Hour, -2*time.Hour, -time.Hour, `alertname="Ended"`)
	active := newSilence(t, pool, -time.Hour, -time.Hour, time.Hour, `alertname="Active"`)
	pending := newSilence(t, pool, 0, time.Hour, 2*time.Hour, `alertname="Pending"`)
	gone := newSilence(t, pool, 0, 0, time.Hour, `alertname="Expired"`)
	_, err := expire(t, pool, gone.ID(), now)
	require.NoError(t, err)

	set, err := postgres.Silences{}.Active(ctx, pool, now)
	require.NoError(t, err)
	require.Equal(t, 2, set.Len(), "the active and the pending silence")
	require.Equal(t, active.ID(), set.Muting(map[string]string{"alertname": "Active"}, now))
	require.Empty(t, set.Muting(map[string]string{"alertname": "Pending"}, now))
	require.Equal(t, pending.ID(), set.Muting(map[string]string{"alertname": "Pending"}, now.Add(time.Hour)))
	require.Empty(t, set.Muting(map[string]string{"alertname": "Ended"}, now))
	require.Empty(t, set.Muting(map[string]string{"alertname": "Expired"}, now))

	// Works in a transaction too, as the correlator calls it.
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		set, err := postgres.Silences{}.Active(ctx, tx, now)
		require.NoError(t, err)
		require.Equal(t, 2, set.Len())
		return nil
	}))
}

func TestSilencePrune(t *testing.T) {
	t.Parallel()
	pool := silenceDB(t)
	ctx := context.Background()
	// More than two chunks of silences that ended a day ago.
	const old = 1100
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
		for i := range old {
			newSilence(t, tx, -48*time.Hour, -48*time.Hour, -24*time.Hour, fmt.Sprintf(`alertname="Old%d"`, i))
		}
		return nil
	}))
	expiredLongAgo := newSilence(t, pool, -48*time.Hour, -48*time.Hour, time.Hour)
	_, err := expire(t, pool, expiredLongAgo.ID(), now.Add(-24*time.Hour))
	require.NoError(t, err)
	endedRecently := newSilence(t, pool, -2*time.Hour, -2*time.Hour, -time.Minute)
	expiredRecently := newSilence(t, pool, -2*time.Hour, -2*time.Hour, time.Hour)
	_, err = expire(t, pool, expiredRecently.ID(), now.Add(-time.Minute))
	require.NoError(t, err)
	active := newSilence(t, pool, -time.Hour, -time.Hour, time.Hour)
	pending := newSilence(t, pool, 0, time.Hour, 2*time.Hour)

	n, err := postgres.Silences{}.Prune(ctx, pool, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Equal(t, int64(old+1), n)

	left, _, err := postgres.Silences{}.List(ctx, pool, postgres.SilenceFilter{}, now, 100, "")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{endedRecently.ID(), expiredRecently.ID(), active.ID(), pending.ID()}, ids(left))

	n, err = postgres.Silences{}.Prune(ctx, pool, now.Add(-time.Hour))
	require.NoError(t, err)
	require.Zero(t, n, "nothing left to prune")
}
