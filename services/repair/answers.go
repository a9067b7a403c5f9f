package repair

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// Answer applies a person's answer from the API to a repair waiting for
// one: approved (queued to run) or rejected, with who and from where.
// The caller may operate; the repair's team is checked here. A refused
// answer is in the timeline too, and FailedPrecondition to the caller.
func (s *Service) Answer(ctx context.Context, id string, approve bool, actor, channel, reason string) (*repairv1.Repair, error) {
	r, err := s.answer(ctx, s.deps.Pool, id, lifecycle.Answer{Approve: approve, By: actor, Via: channel, Reason: reason})
	if lifecycle.Refused(err) {
		return nil, refusal{err}
	}
	if err != nil {
		return nil, err
	}
	s.poke()
	return r, nil
}

// answerEvent applies an answer the gateway published (a chat button)
// as Answer does, in the inbox's transaction. A refusal is recorded, not
// retried.
func (s *Service) answerEvent(ctx context.Context, tx pgx.Tx, id string, a lifecycle.Answer) error {
	_, err := s.answer(ctx, tx, id, a)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return bus.Permanent(err)
	case lifecycle.Refused(err):
		s.log.InfoContext(ctx, "answer refused", "repair_id", id, "actor", a.By, "channel", a.Via, "reason", err)
		return nil
	}
	return err
}

// refusal is an answer that does not count: FailedPrecondition to an API
// caller.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// GRPCStatus makes it a gRPC status.
func (r refusal) GRPCStatus() *status.Status { return status.New(codes.FailedPrecondition, r.Error()) }

// answer is the one path of an answer, from the API or the bus, in db
// (the pool, or the inbox's transaction): the caller's team is checked,
// then the repair answered (lifecycle.Repair.Answer). A refused answer
// is recorded in the timeline and returned (lifecycle.Refused).
func (s *Service) answer(ctx context.Context, db postgres.DB, id string, a lifecycle.Answer) (*repairv1.Repair, error) {
	repairs := s.store.Repairs(db)
	// Whether an approved repair may ever run is judged before its row
	// is locked — on what never changes (its proposal and subject) and
	// the guardrails now — so that the lock is not held over the reads;
	// execution checks again.
	var why string
	if a.Approve {
		cur, err := repairs.Get(ctx, id)
		if err != nil {
			return nil, err
		}
		if why, err = s.notApprovable(ctx, db, cur.Proto()); err != nil {
			return nil, err
		}
	}
	var (
		out     *repairv1.Repair
		refused error
	)
	err := repairs.Update(ctx, id, func(r *lifecycle.Repair) error {
		if err := auth.CheckTeam(ctx, r.Proto().GetTeam(), "repair "+id); err != nil {
			return err
		}
		a.At = s.now()
		err := r.Answer(a, func() (string, error) { return why, nil })
		if lifecycle.Refused(err) {
			// Recorded in the timeline: commit that.
			refused = err
			return nil
		}
		out = r.Proto()
		return err
	})
	if err != nil {
		return nil, err
	}
	if refused != nil {
		return nil, refused
	}
	outcome := "rejected"
	if a.Approve {
		outcome = "approved"
	}
	s.log.InfoContext(ctx, "repair answered", "outcome", outcome, "repair_id", id, "actor", a.By, "channel", a.Via)
	return out, nil
}

// notApprovable says why r may never run, approved or not ("" when it
// may): its target is not the incident's subject (the cluster is asked
// at execution), or the guardrails no one overrides refuse it.
func (s *Service) notApprovable(ctx context.Context, q postgres.Querier, r *repairv1.Repair) (string, error) {
	if why, err := s.offSubject(ctx, nil, r); err != nil || why != "" {
		return why, err
	}
	set, err := s.settings(ctx, q, r)
	if err != nil {
		return "", err
	}
	var why string
	if refused := guard.Approvable(set, guard.Facts{
		Proposal: r.GetProposal(), Supported: true, Now: s.now(), HealthyAfter: -1,
	}); refused != nil {
		why = refused.Error()
	}
	return why, nil
}

// Postpone snoozes the approval of repair id ("Later") for d (the
// default snooze when 0), as actor from channel: it keeps waiting, and
// is asked again when the snooze ends, unless it expires first. The
// caller may operate; the repair's team is checked here. A repair not
// waiting is FailedPrecondition.
func (s *Service) Postpone(ctx context.Context, id string, d time.Duration, actor, channel string) (*repairv1.Repair, error) {
	if d == 0 {
		d = s.opts.ApprovalSnooze
	}
	var out *repairv1.Repair
	err := s.repairs.Update(ctx, id, func(r *lifecycle.Repair) error {
		if err := auth.CheckTeam(ctx, r.Proto().GetTeam(), "repair "+id); err != nil {
			return err
		}
		now := s.now()
		if err := r.Postpone(now.Add(d), actor, channel, now); err != nil {
			return err
		}
		out = r.Proto()
		return nil
	})
	if lifecycle.Refused(err) {
		return nil, refusal{err}
	}
	if err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "approval snoozed", "repair_id", id, "actor", actor, "channel", channel, "until", out.GetSnoozedUntil().AsTime())
	return out, nil
}

// remind asks again for the snoozed approvals whose snooze ended.
func (s *Service) remind(ctx context.Context) {
	ids, err := s.store.Reminders(ctx, s.now(), 100)
	if err != nil {
		if ctx.Err() == nil {
			s.log.WarnContext(ctx, "find snoozed approvals", "error", err)
		}
		return
	}
	for _, id := range ids {
		err := s.repairs.Update(ctx, id, func(r *lifecycle.Repair) error { r.Remind(s.now()); return nil })
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "remind of a snoozed approval", "repair_id", id, "error", err)
		}
	}
}

// expire ends the approvals nobody answered in time, and asks again for
// the snoozed ones whose snooze ended, every few seconds.
func (s *Service) expire(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	finding := db.Failures{Log: s.log, Attrs: []any{"step", "find expired approvals"}}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		s.remind(ctx)
		ids, err := s.store.Expired(ctx, s.now(), 100)
		if err != nil {
			if ctx.Err() == nil {
				finding.Failed(ctx, err, 5*time.Second)
			}
			continue
		}
		finding.Succeeded(ctx)
		for _, id := range ids {
			err := s.repairs.Update(ctx, id, func(r *lifecycle.Repair) error { return r.Expire(s.now()) })
			switch {
			case errors.Is(err, lifecycle.ErrNotPending):
				// Answered meanwhile.
			case err != nil && ctx.Err() == nil:
				s.log.WarnContext(ctx, "expire an approval", "repair_id", id, "error", err)
			}
		}
	}
}
