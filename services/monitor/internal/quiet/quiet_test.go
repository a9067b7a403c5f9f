package quiet_test

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor/internal/monitortest"
	"github.com/vigil-ops/vigil/services/monitor/internal/quiet"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// Rollout events arrive in any order and more than once; the window is
// what the newest rollout says, whatever came late.
func TestRecordKeepsTheNewestRollout(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	opts := quiet.Options{Settle: 5 * time.Minute, MaxRollout: 30 * time.Minute}
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	r := func(dep string, rev int64, outcome string, m int) quiet.Rollout {
		return quiet.Rollout{App: "shop", DeploymentID: dep, Revision: rev, Outcome: outcome, At: at(m)}
	}
	type window struct {
		dep     string
		outcome string
		release time.Time
	}
	for _, tc := range []struct {
		name   string
		events []quiet.Rollout
		want   window
	}{
		{"rolling holds up to the longest rollout", []quiet.Rollout{r("d1", 1, quiet.Rolling, 0)}, window{"d1", quiet.Rolling, at(30)}},
		{"success holds for the settle time", []quiet.Rollout{r("d1", 1, quiet.Rolling, 0), r("d1", 1, quiet.Succeeded, 2)}, window{"d1", quiet.Succeeded, at(7)}},
		{"failure releases at once", []quiet.Rollout{r("d1", 1, quiet.Rolling, 0), r("d1", 1, quiet.Failed, 2)}, window{"d1", quiet.Failed, at(2)}},
		{"rollback releases at once", []quiet.Rollout{r("d2", 2, quiet.Rolling, 0), r("d2", 2, quiet.RolledBack, 1)}, window{"d2", quiet.RolledBack, at(1)}},
		{"a start redelivered after the end changes nothing", []quiet.Rollout{r("d1", 1, quiet.Succeeded, 2), r("d1", 1, quiet.Rolling, 0)}, window{"d1", quiet.Succeeded, at(7)}},
		{"a second end changes nothing", []quiet.Rollout{r("d1", 1, quiet.Failed, 2), r("d1", 1, quiet.Succeeded, 3)}, window{"d1", quiet.Failed, at(2)}},
		{"a newer rollout replaces an ended one", []quiet.Rollout{r("d1", 1, quiet.Succeeded, 2), r("d2", 2, quiet.Rolling, 4)}, window{"d2", quiet.Rolling, at(34)}},
		{"an older rollout's end is late", []quiet.Rollout{r("d2", 2, quiet.Rolling, 4), r("d1", 1, quiet.Failed, 5)}, window{"d2", quiet.Rolling, at(34)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `DELETE FROM deploy_windows`); err != nil {
					return err
				}
				for _, ev := range tc.events {
					if err := quiet.Record(ctx, tx, ev, opts); err != nil {
						return err
					}
				}
				var got window
				if err := tx.QueryRow(ctx, `SELECT deployment_id, outcome, release_at FROM deploy_windows WHERE app = 'shop'`).
					Scan(&got.dep, &got.outcome, &got.release); err != nil {
					return err
				}
				got.release = got.release.UTC()
				require.Equal(t, tc.want, got)
				return nil
			}))
		})
	}
}

// An event naming no app or deployment can never be applied: refused for
// good, and no window changes.
func TestRecordRefusesAnEventWithoutApp(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	err := db.InTx(ctx, pool, func(tx pgx.Tx) error {
		return quiet.Record(ctx, tx, quiet.Rollout{DeploymentID: "d1", Revision: 1, Outcome: quiet.Rolling, At: time.Now()}, quiet.Options{Settle: time.Minute})
	})
	require.True(t, bus.IsPermanent(err), "%v", err)
	var n int
	require.NoError(t, pool.QueryRow(ctx, `SELECT count(*) FROM deploy_windows`).Scan(&n))
	require.Zero(t, n)
}

// What is held: an alert Vigil placed in an app whose window is open, up
// to warning; never a critical one, one of no app, or after the window.
func TestHolding(t *testing.T) {
	t.Parallel()
	pool, _ := monitortest.Pool(t)
	ctx := context.Background()
	now := time.Now().UTC()
	var set *quiet.Set
	require.NoError(t, db.InTx(ctx, pool, func(tx pgx.Tx) (err error) {
		if err := quiet.Record(ctx, tx, quiet.Rollout{App: "shop", DeploymentID: "d1", Revision: 3, Outcome: quiet.Succeeded, At: now}, quiet.Options{Settle: time.Minute}); err != nil {
			return err
		}
		set, err = quiet.Load(ctx, tx, now)
		return err
	}))
	shop, blog := &typesv1.Subject{App: "shop"}, &typesv1.Subject{App: "blog"}
	for _, tc := range []struct {
		name string
		subj *typesv1.Subject
		sev  typesv1.Severity
		at   time.Time
		held bool
	}{
		{"warning of the app", shop, typesv1.Severity_SEVERITY_WARNING, now, true},
		{"info of the app", shop, typesv1.Severity_SEVERITY_INFO, now, true},
		{"no severity", shop, typesv1.Severity_SEVERITY_UNSPECIFIED, now, true},
		{"critical", shop, typesv1.Severity_SEVERITY_CRITICAL, now, false},
		{"another app", blog, typesv1.Severity_SEVERITY_WARNING, now, false},
		{"no app", &typesv1.Subject{Namespace: "shop"}, typesv1.Severity_SEVERITY_WARNING, now, false},
		{"settle time over", shop, typesv1.Severity_SEVERITY_WARNING, now.Add(time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := set.Holding(tc.subj, tc.sev, tc.at)
			require.Equal(t, tc.held, h != nil)
			if tc.held {
				require.Equal(t, "d1", h.GetDeploymentId())
				require.Equal(t, int64(3), h.GetRevision())
			}
		})
	}
}
