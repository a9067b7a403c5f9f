package repair

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// ErrNotPending refuses an answer to a repair that is not waiting for
// one: decided already, expired, never asked.
var ErrNotPending = errors.New("not waiting for an answer")

// ErrNotApprovable refuses approving what the guardrails never let run
// (a deny-listed action, a namespace not allowed...).
var ErrNotApprovable = errors.New("cannot be approved")

// Answer applies a person's answer to a repair waiting for one: approved
// (queued to run) or rejected, with who and from where. The caller has
// been authorised (the API: operate, and the team of the repair's app;
// the gateway for chat answers). A refused answer is in the timeline too.
func (s *Service) Answer(ctx context.Context, id string, approve bool, actor, channel, reason string) (*repairv1.Repair, error) {
	var out *repairv1.Repair
	err := pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		row, err := s.store.Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		if err := auth.CheckTeam(ctx, row.Repair.GetTeam(), "repair "+id); err != nil {
			return err
		}
		out, err = s.answer(ctx, tx, row, approve, actor, channel, reason)
		return err
	})
	if refused(err) {
		s.recordRefusal(ctx, id, actor, channel, err)
	}
	if err != nil {
		return nil, err
	}
	s.poke()
	return out, nil
}

// answerEvent applies an answer the gateway published (a chat button),
// in the inbox's transaction. A refusal is recorded, not retried.
func (s *Service) answerEvent(ctx context.Context, tx pgx.Tx, id string, approve bool, actor, channel, reason string) error {
	row, err := s.store.Lock(ctx, tx, id)
	if errors.Is(err, postgres.ErrNotFound) {
		return bus.Permanent(err)
	}
	if err != nil {
		return err
	}
	_, err = s.answer(ctx, tx, row, approve, actor, channel, reason)
	if refused(err) {
		// Nothing was written before the refusal: record it, done.
		s.log.InfoContext(ctx, "answer refused", "repair_id", id, "actor", actor, "channel", channel, "reason", err)
		return s.step(ctx, tx, id, repairv1.StepKind_STEP_KIND_REFUSED, actor, channel, err.Error())
	}
	return err
}

func refused(err error) bool {
	return errors.Is(err, ErrNotPending) || errors.Is(err, ErrNotApprovable)
}

// refusal is an answer that does not count: FailedPrecondition to an API
// caller.
type refusal struct{ error }

func (r refusal) Unwrap() error { return r.error }

// GRPCStatus makes it a gRPC status.
func (r refusal) GRPCStatus() *status.Status { return status.New(codes.FailedPrecondition, r.Error()) }

// answer moves a locked repair on a person's answer, in tx; an answer
// that does not count is refused (ErrNotPending, ErrNotApprovable)
// before anything is written.
func (s *Service) answer(ctx context.Context, tx pgx.Tx, row postgres.Row, approve bool, actor, channel, reason string) (*repairv1.Repair, error) {
	r := row.Repair
	now := s.now()
	if r.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL {
		msg := "is " + strings.ToLower(strings.TrimPrefix(r.GetStatus().String(), "REPAIR_STATUS_"))
		if r.GetDecidedBy() != "" {
			msg += " (decided by " + r.GetDecidedBy() + ")"
		}
		return nil, refusal{fmt.Errorf("repair %s %s: %w", r.GetId(), msg, ErrNotPending)}
	}
	if r.GetExpireTime() != nil && now.After(r.GetExpireTime().AsTime()) {
		return nil, refusal{fmt.Errorf("repair %s expired at %s: %w", r.GetId(), r.GetExpireTime().AsTime().UTC().Format(time.RFC3339), ErrNotPending)}
	}
	if approve {
		// Checked again at each step: an approval never reaches past the
		// incident's subject (the cluster is asked at execution).
		if why, err := s.offSubject(ctx, nil, r); err != nil {
			return nil, err
		} else if why != "" {
			return nil, refusal{fmt.Errorf("repair %s: %w: %s", r.GetId(), ErrNotApprovable, why)}
		}
		set, err := s.settings(ctx, tx, r)
		if err != nil {
			return nil, err
		}
		if err := guard.Approvable(set, guard.Facts{
			Proposal: r.GetProposal(), Supported: true, Now: now, HealthyAfter: -1,
		}); err != nil {
			return nil, refusal{fmt.Errorf("repair %s: %w: %w", r.GetId(), ErrNotApprovable, err)}
		}
	}
	outcome, kind, status := "rejected", repairv1.StepKind_STEP_KIND_REJECTED, repairv1.RepairStatus_REPAIR_STATUS_REJECTED
	if approve {
		outcome, kind, status = "approved", repairv1.StepKind_STEP_KIND_APPROVED, repairv1.RepairStatus_REPAIR_STATUS_QUEUED
	}
	r.Status, r.DecidedBy, r.DecidedVia, r.UpdateTime = status, actor, channel, timestamppb.New(now)
	if err := s.store.Save(ctx, tx, r, postgres.Update{Release: true}, now); err != nil {
		return nil, err
	}
	msg := outcome
	if reason != "" {
		msg += ": " + reason
	}
	if err := s.step(ctx, tx, r.GetId(), kind, actor, channel, msg); err != nil {
		return nil, err
	}
	s.log.InfoContext(ctx, "repair answered", "outcome", outcome, "repair_id", r.GetId(), "actor", actor, "channel", channel)
	return r, outbox.Add(ctx, tx, &eventsv1.RepairDecided{
		Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(), Outcome: outcome,
		DecidedBy: actor, Channel: channel, Reason: reason, DecidedAt: timestamppb.New(now),
	})
}

func (s *Service) recordRefusal(ctx context.Context, id, actor, channel string, refusal error) {
	err := pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		return s.step(ctx, tx, id, repairv1.StepKind_STEP_KIND_REFUSED, actor, channel, refusal.Error())
	})
	if err != nil {
		s.log.WarnContext(ctx, "record a refused answer", "repair_id", id, "error", err)
	}
}

// expire ends the approvals nobody answered in time, every few seconds.
func (s *Service) expire(ctx context.Context) error {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		ids, err := s.store.Expired(ctx, s.now(), 100)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "find expired approvals", "error", err)
			}
			continue
		}
		for _, id := range ids {
			if err := s.expireOne(ctx, id); err != nil && ctx.Err() == nil {
				s.log.WarnContext(ctx, "expire an approval", "repair_id", id, "error", err)
			}
		}
	}
}

func (s *Service) expireOne(ctx context.Context, id string) error {
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		row, err := s.store.Lock(ctx, tx, id)
		if err != nil {
			return err
		}
		r := row.Repair
		now := s.now()
		if r.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL || r.GetExpireTime() == nil || now.Before(r.GetExpireTime().AsTime()) {
			return nil // answered meanwhile
		}
		r.Status, r.UpdateTime = repairv1.RepairStatus_REPAIR_STATUS_EXPIRED, timestamppb.New(now)
		if err := s.store.Save(ctx, tx, r, postgres.Update{}, now); err != nil {
			return err
		}
		if err := s.step(ctx, tx, id, repairv1.StepKind_STEP_KIND_EXPIRED, "repair", "", "nobody answered in time"); err != nil {
			return err
		}
		return outbox.Add(ctx, tx, &eventsv1.RepairDecided{
			Meta: bus.NewMeta(Producer, nil), RepairId: id, IncidentId: r.GetIncidentId(), Outcome: "expired", DecidedAt: timestamppb.New(now),
		})
	})
}
