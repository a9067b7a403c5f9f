package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/playbook"
)

// Playbook is the record of one action on one kind of incident.
type Playbook struct {
	Signature     string
	Action        typesv1.RepairAction
	Record        playbook.Record
	LastOutcomeAt time.Time
}

// SetSignature records the kind of incident an analysis was about, in tx.
func (s *Store) SetSignature(ctx context.Context, tx pgx.Tx, analysisID, signature string) error {
	if _, err := tx.Exec(ctx, `UPDATE analyses SET signature = $2 WHERE id = $1`, analysisID, signature); err != nil {
		return fmt.Errorf("set signature of analysis %s: %w", analysisID, err)
	}
	return nil
}

// AddOutcome counts a repair's outcome for the kind of incident the
// incident's latest analysis was about, in tx. found is false when no
// analysis of the incident is kept (past retention, or never analysed
// here): there is nothing to learn it by.
func (s *Store) AddOutcome(ctx context.Context, tx pgx.Tx, incidentID string, action typesv1.RepairAction, succeeded bool, at time.Time) (signature string, found bool, err error) {
	var analysisID string
	err = tx.QueryRow(ctx, `SELECT id, signature FROM analyses WHERE incident_id = $1 AND signature <> ''
		ORDER BY created_at DESC LIMIT 1`, incidentID).Scan(&analysisID, &signature)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("signature of incident %s: %w", incidentID, err)
	}
	success, failure, outcome := 1, 0, "succeeded"
	if !succeeded {
		success, failure, outcome = 0, 1, "failed"
	}
	// Outcomes may arrive out of order: the last one is the latest by
	// when it happened, not by when it came.
	if _, err := tx.Exec(ctx, `INSERT INTO playbooks (signature, action, successes, failures, last_outcome, last_outcome_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (signature, action) DO UPDATE SET
			successes = playbooks.successes + EXCLUDED.successes,
			failures = playbooks.failures + EXCLUDED.failures,
			last_outcome = CASE WHEN EXCLUDED.last_outcome_at >= playbooks.last_outcome_at THEN EXCLUDED.last_outcome ELSE playbooks.last_outcome END,
			last_outcome_at = greatest(playbooks.last_outcome_at, EXCLUDED.last_outcome_at)`,
		signature, action.String(), success, failure, outcome, at); err != nil {
		return "", false, fmt.Errorf("count outcome for %s %s: %w", signature, action, err)
	}
	// The incident's own outcome, for its history (Similar): the latest by
	// when it happened here too.
	if _, err := tx.Exec(ctx, `UPDATE analyses SET outcome_action = $2, outcome_succeeded = $3, outcome_at = $4
		WHERE id = $1 AND (outcome_at IS NULL OR outcome_at <= $4)`, analysisID, action.String(), succeeded, at); err != nil {
		return "", false, fmt.Errorf("record outcome of incident %s: %w", incidentID, err)
	}
	return signature, true, nil
}

// Similar returns the latest incidents, other than incidentID, whose
// analyses had signature, newest first, at most limit, each with its
// repair's latest outcome when one is known (Action unspecified when it is
// not; At is then when it was last analysed).
func (s *Store) Similar(ctx context.Context, signature, incidentID string, limit int) ([]evidence.Past, error) {
	rows, err := s.pool.Query(ctx, `SELECT incident_id::text, max(created_at),
			(array_agg(outcome_action ORDER BY outcome_at DESC NULLS LAST))[1],
			(array_agg(outcome_succeeded ORDER BY outcome_at DESC NULLS LAST))[1],
			max(outcome_at)
		FROM analyses WHERE signature = $1 AND incident_id::text <> $2
		GROUP BY incident_id ORDER BY max(created_at) DESC, incident_id LIMIT $3`, signature, incidentID, limit)
	if err != nil {
		return nil, fmt.Errorf("incidents like %s: %w", signature, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (evidence.Past, error) {
		var (
			p         = evidence.Past{Signature: signature}
			analysed  time.Time
			action    string
			succeeded *bool
			at        *time.Time
		)
		if err := r.Scan(&p.IncidentID, &analysed, &action, &succeeded, &at); err != nil {
			return evidence.Past{}, err
		}
		p.At = analysed
		if at != nil && succeeded != nil {
			p.Action = typesv1.RepairAction(typesv1.RepairAction_value[action])
			p.Succeeded, p.At = *succeeded, *at
		}
		return p, nil
	})
}

// Record returns the record of action on signature (empty when there is
// none).
func (s *Store) Record(ctx context.Context, signature string, action typesv1.RepairAction) (playbook.Record, error) {
	var r playbook.Record
	err := s.pool.QueryRow(ctx, `SELECT successes, failures FROM playbooks WHERE signature = $1 AND action = $2`,
		signature, action.String()).Scan(&r.Successes, &r.Failures)
	if errors.Is(err, pgx.ErrNoRows) {
		return playbook.Record{}, nil
	}
	if err != nil {
		return playbook.Record{}, fmt.Errorf("playbook %s %s: %w", signature, action, err)
	}
	return r, nil
}

// Playbooks returns every record, by signature and action.
func (s *Store) Playbooks(ctx context.Context) ([]Playbook, error) {
	rows, err := s.pool.Query(ctx, `SELECT signature, action, successes, failures, last_outcome_at
		FROM playbooks ORDER BY signature, action`)
	if err != nil {
		return nil, fmt.Errorf("list playbooks: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Playbook, error) {
		var (
			p      Playbook
			action string
		)
		if err := r.Scan(&p.Signature, &action, &p.Record.Successes, &p.Record.Failures, &p.LastOutcomeAt); err != nil {
			return Playbook{}, err
		}
		p.Action = typesv1.RepairAction(typesv1.RepairAction_value[action])
		return p, nil
	})
}
