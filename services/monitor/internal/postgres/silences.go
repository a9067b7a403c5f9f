package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

// Silences keeps silences in the table "silences". Its methods run on a
// pool or in the caller's transaction, except Expire, which locks the row
// and so needs a transaction.
type Silences struct{}

// SilenceFilter selects silences to list.
type SilenceFilter struct {
	// States: only silences in one of these at the time of the call; all
	// when empty.
	States []silence.State
}

// silencePruneChunk bounds how many silences one statement of Prune deletes.
const silencePruneChunk = 500

const silenceColumns = `id::text, matchers, starts_at, ends_at, created_by, comment, created_at,
	expired_at, expired_by, schedule, team`

// scheduleJSON is the stored form of a schedule, named like the API's.
type scheduleJSON struct {
	TimeZone string       `json:"time_zone,omitempty"`
	Windows  []windowJSON `json:"windows"`
}

type windowJSON struct {
	Days  []string `json:"days,omitempty"`
	Start string   `json:"start"`
	End   string   `json:"end"`
}

func marshalSchedule(s *silence.Schedule) ([]byte, error) {
	if s == nil {
		return nil, nil
	}
	j := scheduleJSON{TimeZone: s.TimeZone, Windows: make([]windowJSON, len(s.Windows))}
	for i, w := range s.Windows {
		j.Windows[i] = windowJSON(w)
	}
	return json.Marshal(j)
}

func unmarshalSchedule(b []byte) (*silence.Schedule, error) {
	if b == nil {
		return nil, nil
	}
	var j scheduleJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, err
	}
	s := &silence.Schedule{TimeZone: j.TimeZone, Windows: make([]silence.Window, len(j.Windows))}
	for i, w := range j.Windows {
		s.Windows[i] = silence.Window(w)
	}
	return s, nil
}

func scanSilence(row pgx.Row) (*silence.Silence, error) {
	var (
		r       silence.Record
		expired *time.Time
		sched   []byte
	)
	err := row.Scan(&r.ID, &r.Matchers, &r.StartsAt, &r.EndsAt, &r.CreatedBy, &r.Comment, &r.CreatedAt,
		&expired, &r.ExpiredBy, &sched, &r.Team)
	if err != nil {
		return nil, err
	}
	if expired != nil {
		r.ExpiredAt = *expired
	}
	if r.Schedule, err = unmarshalSchedule(sched); err != nil {
		return nil, fmt.Errorf("schedule of silence %s: %w", r.ID, err)
	}
	s, err := silence.FromRecord(r)
	if err != nil {
		// A stored silence that no longer validates is our fault, not the
		// caller's: not wrapped, so it does not read as a *server.BadRequestError.
		return nil, fmt.Errorf("stored silence %s: %s", r.ID, err.Error())
	}
	return s, nil
}

// silenceExec runs a statement through a Querier, which has no Exec.
func silenceExec(ctx context.Context, q Querier, sql string, args ...any) error {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	rows.Close()
	return rows.Err()
}

// Create stores a new silence.
func (Silences) Create(ctx context.Context, q Querier, s *silence.Silence) error {
	r := s.Record()
	sched, err := marshalSchedule(r.Schedule)
	if err != nil {
		return fmt.Errorf("insert silence %s: %w", r.ID, err)
	}
	err = silenceExec(ctx, q, `INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment, created_at,
		expired_at, expired_by, schedule, team) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.ID, r.Matchers, r.StartsAt, r.EndsAt, r.CreatedBy, r.Comment, r.CreatedAt,
		expiredAt(r.ExpiredAt), r.ExpiredBy, sched, r.Team)
	if err != nil {
		return fmt.Errorf("insert silence %s: %w", r.ID, err)
	}
	return nil
}

// expiredAt is a silence's expiry as a column: NULL when it has none.
func expiredAt(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// Get returns a silence; silence.ErrNotFound when there is none with id.
func (Silences) Get(ctx context.Context, q Querier, id string) (*silence.Silence, error) {
	return getSilence(ctx, q, id, "")
}

func getSilence(ctx context.Context, q Querier, id, lock string) (*silence.Silence, error) {
	if _, err := uuid.Parse(id); err != nil {
		return nil, fmt.Errorf("silence %q: %w", id, silence.ErrNotFound)
	}
	s, err := scanSilence(q.QueryRow(ctx, `SELECT `+silenceColumns+` FROM silences WHERE id = $1 `+lock, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("silence %s: %w", id, silence.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load silence %s: %w", id, err)
	}
	return s, nil
}

// List returns up to limit silences, newest first, after the page token,
// in the states of f as of now; and the token of the next page ("" on the
// last). A token List did not return is a *server.BadRequestError.
func (Silences) List(ctx context.Context, q Querier, f SilenceFilter, now time.Time, limit int, pageToken string) ([]*silence.Silence, string, error) {
	var (
		where []string
		args  []any
	)
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if len(f.States) > 0 {
		var ors []string
		for _, st := range f.States {
			// The same rules as silence.(*Silence).State.
			switch st {
			case silence.StatePending:
				ors = append(ors, "(expired_at IS NULL AND starts_at > "+arg(now)+")")
			case silence.StateActive:
				ors = append(ors, fmt.Sprintf("(expired_at IS NULL AND starts_at <= %[1]s AND ends_at > %[1]s)", arg(now)))
			case silence.StateExpired:
				ors = append(ors, "(expired_at IS NOT NULL OR ends_at <= "+arg(now)+")")
			default:
				return nil, "", fmt.Errorf("list silences: unknown state %v", st)
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	var bad server.BadRequestError
	if after := server.ParsePageToken[server.TimeID](&bad, "silences", pageToken); after != nil {
		where = append(where, fmt.Sprintf("(created_at, id) < (%s, %s::uuid)", arg(after.Time), arg(after.ID.String())))
	}
	if err := bad.Err("invalid page token"); err != nil {
		return nil, "", err
	}
	sql := `SELECT ` + silenceColumns + ` FROM silences`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += ` ORDER BY created_at DESC, id DESC LIMIT ` + arg(limit+1)
	out, err := querySilences(ctx, q, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list silences: %w", err)
	}
	out, next := server.NextPage("silences", out, limit, func(s *silence.Silence) server.TimeID {
		r := s.Record()
		return server.TimeIDOf(r.CreatedAt, r.ID)
	})
	return out, next, nil
}

func querySilences(ctx context.Context, q Querier, sql string, args ...any) ([]*silence.Silence, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*silence.Silence
	for rows.Next() {
		s, err := scanSilence(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

// Expire ends a silence at now on behalf of by, and returns it. An unknown
// id is silence.ErrNotFound; a silence that has ended or was expired
// already is silence.ErrExpired. It locks the silence until tx ends.
func (Silences) Expire(ctx context.Context, tx pgx.Tx, id, by string, now time.Time) (*silence.Silence, error) {
	s, err := getSilence(ctx, tx, id, "FOR UPDATE")
	if err != nil {
		return nil, err
	}
	if err := s.Expire(by, now); err != nil {
		return nil, err
	}
	r := s.Record()
	if _, err := tx.Exec(ctx, `UPDATE silences SET expired_at = $2, expired_by = $3 WHERE id = $1`,
		id, r.ExpiredAt, r.ExpiredBy); err != nil {
		return nil, fmt.Errorf("expire silence %s: %w", id, err)
	}
	return s, nil
}

// Active loads the silences that may mute an alert at now or later: those
// not expired by hand whose end is after now (active or pending), oldest
// first, so Set.Muting names the oldest of several that mute an alert.
func (Silences) Active(ctx context.Context, q Querier, now time.Time) (*silence.Set, error) {
	ss, err := querySilences(ctx, q, `SELECT `+silenceColumns+` FROM silences
		WHERE expired_at IS NULL AND ends_at > $1 ORDER BY created_at, id`, now)
	if err != nil {
		return nil, fmt.Errorf("load active silences: %w", err)
	}
	return silence.NewSet(ss), nil
}

// Prune deletes the silences that ended, or were expired, before before,
// at most silencePruneChunk per statement, and returns how many it deleted. On a
// pool each chunk commits on its own, so no lock is held for long; in a
// transaction they all commit together.
func (Silences) Prune(ctx context.Context, q Querier, before time.Time) (int64, error) {
	var total int64
	for {
		var n int64
		err := q.QueryRow(ctx, `WITH doomed AS (
				SELECT id FROM silences WHERE ends_at < $1 OR expired_at < $1
				LIMIT $2 FOR UPDATE SKIP LOCKED
			), gone AS (
				DELETE FROM silences s USING doomed d WHERE s.id = d.id RETURNING 1
			)
			SELECT count(*) FROM gone`, before, silencePruneChunk).Scan(&n)
		if err != nil {
			return total, fmt.Errorf("prune silences: %w", err)
		}
		total += n
		if n < silencePruneChunk {
			return total, nil
		}
	}
}
