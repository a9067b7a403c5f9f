package monitor

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
)

// inhibitFileActor is who changed the rules when the file did.
const inhibitFileActor = "inhibition-file"

// releaseLock is the advisory lock of the release loop: one replica at a
// time takes the released alerts, the others skip the tick.
var releaseLock = incident.LockID("monitor inhibition release")

// applyInhibitFile makes the inhibition file's rules those in force; with
// no file, rules a file defined before become the API's to change.
func (s *Service) applyInhibitFile(ctx context.Context) error {
	if s.opts.InhibitFile == "" {
		_, err := s.deps.Pool.Exec(ctx, `UPDATE inhibit_rules SET from_file = false WHERE from_file`)
		if err != nil {
			return fmt.Errorf("inhibition rules: %w", err)
		}
		return nil
	}
	_, set, err := inhibit.LoadFile(s.opts.InhibitFile)
	if err != nil {
		return err
	}
	var r *postgres.InhibitionRules
	err = db.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) (err error) {
		r, err = postgres.SetInhibitionRules(ctx, tx, set, 0, true, inhibitFileActor, s.deps.Clock.Now())
		return err
	})
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "inhibition file applied", "file", s.opts.InhibitFile, "rules", set.Len(), "version", r.Version)
	return nil
}

// reloadInhibitFile applies the file again on each reload (SIGHUP). A file
// that does not parse leaves the rules in force as they were.
func (s *Service) reloadInhibitFile(ctx context.Context) error {
	if s.deps.Reload == nil || s.opts.InhibitFile == "" {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-s.deps.Reload:
			if err := s.applyInhibitFile(ctx); err != nil {
				s.log.ErrorContext(ctx, "inhibition file not applied, the rules in force stay", "file", s.opts.InhibitFile, "error", err)
			}
		}
	}
}

// release applies again, as firings, the inhibited alerts that still fire
// once nothing inhibits them: they open or join incidents as usual (or are
// held again, by another source or a silence).
func (s *Service) release(ctx context.Context) error {
	const limit = 500
	return db.Sweep{
		What: "inhibited alerts released", Every: 500 * time.Millisecond, Log: s.log,
		Pass: func(ctx context.Context) error {
			return db.Drain(ctx, s.deps.Pool, func(ctx context.Context, tx pgx.Tx) (bool, error) {
				n, err := s.releaseSome(ctx, tx, limit)
				return n >= limit, err
			})
		},
	}.Run(ctx)
}

// releaseSome releases up to limit alerts in tx. It takes the release lock
// first and only then the groups' locks (in the correlator's order), which
// the intake takes without the release lock: no cycle.
func (s *Service) releaseSome(ctx context.Context, tx pgx.Tx, limit int) (int, error) {
	var mine bool
	if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_xact_lock($1)`, releaseLock).Scan(&mine); err != nil || !mine {
		return 0, err
	}
	recs, err := postgres.ReleasedAlerts(ctx, tx, limit)
	if err != nil || len(recs) == 0 {
		return 0, err
	}
	cause := bus.NewMeta(incident.Producer, nil)
	signals := make([]*incident.Signal, len(recs))
	for i, r := range recs {
		signals[i] = &incident.Signal{Alert: r.GetAlert(), Cause: cause}
	}
	return len(recs), s.correlator.Reapply(ctx, tx, signals)
}
