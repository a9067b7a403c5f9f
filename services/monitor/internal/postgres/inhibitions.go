package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/inhibit"
)

// Inhibitions implements incident.Inhibitor over the rules in force and
// the inhibit_sources table. The compiled rules are kept between chunks
// and read again when their version changes (every replica sees a change
// at its next chunk).
type Inhibitions struct {
	mu      sync.Mutex
	version int64
	set     *inhibit.Set
}

var _ incident.Inhibitor = (*Inhibitions)(nil)

// rules returns the set in force: one statement, which carries the rules
// only when their version is not the one compiled.
func (in *Inhibitions) rules(ctx context.Context, tx pgx.Tx) (*inhibit.Set, error) {
	in.mu.Lock()
	have, set := in.version, in.set
	in.mu.Unlock()
	var version int64
	var raw []byte
	err := tx.QueryRow(ctx, `SELECT version, CASE WHEN version = $1 THEN NULL ELSE rules END
		FROM inhibit_rules WHERE id = 1`, have).Scan(&version, &raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load inhibition rules: %w", err)
	}
	if version == have {
		return set, nil
	}
	if set, err = decodeRules(raw); err != nil {
		return nil, err
	}
	in.mu.Lock()
	in.version, in.set = version, set
	in.mu.Unlock()
	return set, nil
}

func decodeRules(raw []byte) (*inhibit.Set, error) {
	var rules []inhibit.Rule
	if err := json.Unmarshal(raw, &rules); err != nil {
		return nil, fmt.Errorf("decode inhibition rules: %w", err)
	}
	set, err := inhibit.Compile(rules)
	if err != nil {
		return nil, fmt.Errorf("stored inhibition rules: %w", err)
	}
	return set, nil
}

// sourceRows are inhibit_sources rows as column arrays.
type sourceRows struct {
	keys, fps []string
	starts    []time.Time
	both      []bool
}

func (r *sourceRows) add(set *inhibit.Set, a *typesv1.Alert) {
	for _, m := range set.Sources(a.GetLabels()) {
		r.keys = append(r.keys, m.Key)
		r.fps = append(r.fps, a.GetFingerprint())
		r.starts = append(r.starts, a.GetStartsAt().AsTime())
		r.both = append(r.both, m.Both)
	}
}

// dedup keeps the last row of each (key, fingerprint): a statement may
// change a row only once.
func (r *sourceRows) dedup() {
	type kf struct{ k, f string }
	last := make(map[kf]int, len(r.keys))
	for i := range r.keys {
		last[kf{r.keys[i], r.fps[i]}] = i
	}
	if len(last) == len(r.keys) {
		return
	}
	var out sourceRows
	for i := range r.keys {
		if last[kf{r.keys[i], r.fps[i]}] == i {
			out.keys, out.fps = append(out.keys, r.keys[i]), append(out.fps, r.fps[i])
			out.starts, out.both = append(out.starts, r.starts[i]), append(out.both, r.both[i])
		}
	}
	*r = out
}

const upsertSources = `INSERT INTO inhibit_sources (key, fingerprint, starts_at, both_sides)
	SELECT * FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::boolean[])
	ON CONFLICT (key, fingerprint) DO UPDATE SET starts_at = greatest(inhibit_sources.starts_at, excluded.starts_at),
		both_sides = excluded.both_sides`

// Inhibit implements incident.Inhibitor: with rules, at most four
// statements whatever the chunk holds (the rules' version, the resolved
// sources, the firing ones, the targets' keys).
func (in *Inhibitions) Inhibit(ctx context.Context, tx pgx.Tx, sources []*typesv1.Alert, resolved []incident.Resolution,
	targets []*typesv1.Alert,
) ([]*incident.Inhibition, error) {
	set, err := in.rules(ctx, tx)
	if err != nil || set.Len() == 0 {
		// No rules, no sources: applying a set empties the table.
		return nil, err
	}
	if len(resolved) > 0 {
		fps, starts, _ := resolutionArrays(resolved)
		_, err := tx.Exec(ctx, `DELETE FROM inhibit_sources s USING unnest($1::text[], $2::timestamptz[]) AS u(f, st)
			WHERE s.fingerprint = u.f AND s.starts_at <= u.st`, fps, starts)
		if err != nil {
			return nil, fmt.Errorf("forget resolved inhibition sources: %w", err)
		}
	}
	var rows sourceRows
	for _, a := range sources {
		rows.add(set, a)
	}
	if len(rows.keys) > 0 {
		rows.dedup()
		if _, err := tx.Exec(ctx, upsertSources, rows.keys, rows.fps, rows.starts, rows.both); err != nil {
			return nil, fmt.Errorf("record inhibition sources: %w", err)
		}
	}
	matches := make([][]inhibit.Match, len(targets))
	var keys []string
	for i, a := range targets {
		matches[i] = set.Targets(a.GetLabels())
		for _, m := range matches[i] {
			keys = append(keys, m.Key)
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	// Per key, a source that matches one side only (it inhibits any
	// target) and one that matches both (it inhibits one-sided targets):
	// at most two rows a key.
	found, err := tx.Query(ctx, `SELECT DISTINCT ON (key, both_sides) key, fingerprint, both_sides
		FROM inhibit_sources WHERE key = ANY($1) ORDER BY key, both_sides, fingerprint`, keys)
	if err != nil {
		return nil, fmt.Errorf("look up inhibition sources: %w", err)
	}
	type source struct {
		fp   string
		both bool
	}
	byKey := map[string][]source{}
	for found.Next() {
		var k string
		var s source
		if err := found.Scan(&k, &s.fp, &s.both); err != nil {
			found.Close()
			return nil, fmt.Errorf("look up inhibition sources: %w", err)
		}
		byKey[k] = append(byKey[k], s)
	}
	found.Close()
	if err := found.Err(); err != nil {
		return nil, fmt.Errorf("look up inhibition sources: %w", err)
	}
	out := make([]*incident.Inhibition, len(targets))
	for i, ms := range matches {
	match:
		for _, m := range ms {
			for _, s := range byKey[m.Key] {
				if inhibit.Inhibits(inhibit.Match{Key: m.Key, Both: s.both}, m) {
					out[i] = &incident.Inhibition{By: s.fp, Rule: m.Rule, Key: m.Key}
					break match
				}
			}
		}
	}
	return out, nil
}

// InhibitionRules are the stored rules and their version.
type InhibitionRules struct {
	Rules     []inhibit.Rule
	Set       *inhibit.Set
	Version   int64
	FromFile  bool
	UpdatedAt time.Time
	UpdatedBy string
}

// GetInhibitionRules returns the rules in force (version 0 and none
// before any were set).
func GetInhibitionRules(ctx context.Context, q Querier) (*InhibitionRules, error) {
	out := &InhibitionRules{}
	var raw []byte
	err := q.QueryRow(ctx, `SELECT rules, version, from_file, updated_at, updated_by FROM inhibit_rules WHERE id = 1`).
		Scan(&raw, &out.Version, &out.FromFile, &out.UpdatedAt, &out.UpdatedBy)
	if errors.Is(err, pgx.ErrNoRows) {
		return out, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load inhibition rules: %w", err)
	}
	if out.Set, err = decodeRules(raw); err != nil {
		return nil, err
	}
	out.Rules = out.Set.Canonical()
	return out, nil
}

// SetInhibitionRules makes set the rules in force. From the API
// (fromFile false) it is refused while the file defines them
// (inhibit.ErrFromFile) and when version is not the one in force
// (inhibit.ErrVersion); the file replaces whatever is stored. The firing
// sources are recomputed from the firing alerts under the new rules, so a
// new rule inhibits at once and the alerts a removed rule held back are
// released.
func SetInhibitionRules(ctx context.Context, tx pgx.Tx, set *inhibit.Set, version int64, fromFile bool, by string, now time.Time) (*InhibitionRules, error) {
	var have int64
	var haveFile bool
	err := tx.QueryRow(ctx, `SELECT version, from_file FROM inhibit_rules WHERE id = 1 FOR UPDATE`).Scan(&have, &haveFile)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("lock inhibition rules: %w", err)
	}
	if !fromFile {
		if haveFile {
			return nil, inhibit.ErrFromFile
		}
		if version != have {
			return nil, fmt.Errorf("version %d, in force %d: %w", version, have, inhibit.ErrVersion)
		}
	}
	rules := set.Canonical()
	if rules == nil {
		rules = []inhibit.Rule{}
	}
	raw, err := json.Marshal(rules)
	if err != nil {
		return nil, fmt.Errorf("encode inhibition rules: %w", err)
	}
	_, err = tx.Exec(ctx, `INSERT INTO inhibit_rules (id, rules, version, from_file, updated_at, updated_by)
		VALUES (1, $1, $2, $3, $4, $5) ON CONFLICT (id) DO UPDATE SET rules = excluded.rules,
			version = excluded.version, from_file = excluded.from_file, updated_at = excluded.updated_at,
			updated_by = excluded.updated_by`, raw, have+1, fromFile, now, by)
	if err != nil {
		return nil, fmt.Errorf("save inhibition rules: %w", err)
	}
	if err := rebuildSources(ctx, tx, set); err != nil {
		return nil, err
	}
	return &InhibitionRules{Rules: rules, Set: set, Version: have + 1, FromFile: fromFile, UpdatedAt: now, UpdatedBy: by}, nil
}

// rebuildSources makes inhibit_sources what set says of the firing alerts.
func rebuildSources(ctx context.Context, tx pgx.Tx, set *inhibit.Set) error {
	if _, err := tx.Exec(ctx, `DELETE FROM inhibit_sources`); err != nil {
		return fmt.Errorf("clear inhibition sources: %w", err)
	}
	if set.Len() == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT DISTINCT ON (fingerprint) fingerprint, labels, starts_at FROM alerts
		WHERE status = 'firing' ORDER BY fingerprint, starts_at DESC`)
	if err != nil {
		return fmt.Errorf("find firing alerts: %w", err)
	}
	var src sourceRows
	for rows.Next() {
		a := &typesv1.Alert{}
		var starts time.Time
		if err := rows.Scan(&a.Fingerprint, &a.Labels, &starts); err != nil {
			rows.Close()
			return fmt.Errorf("find firing alerts: %w", err)
		}
		a.StartsAt = ts(&starts)
		src.add(set, a)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find firing alerts: %w", err)
	}
	if len(src.keys) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, upsertSources, src.keys, src.fps, src.starts, src.both); err != nil {
		return fmt.Errorf("record inhibition sources: %w", err)
	}
	return nil
}

// ReleasedAlerts returns up to limit inhibited alerts that still fire and
// whose source no longer holds their key (it resolved, or the rule went).
func ReleasedAlerts(ctx context.Context, tx pgx.Tx, limit int) ([]*incident.AlertRecord, error) {
	rows, err := tx.Query(ctx, `SELECT `+alertColumns+` FROM alerts a
		WHERE a.inhibited_by IS NOT NULL AND a.status = 'firing' AND a.incident_id IS NULL
		AND NOT EXISTS (SELECT 1 FROM inhibit_sources s WHERE s.key = a.inhibit_key AND s.fingerprint = a.inhibited_by)
		LIMIT $1`, limit)
	if err != nil {
		return nil, fmt.Errorf("find released alerts: %w", err)
	}
	defer rows.Close()
	var out []*incident.AlertRecord
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("scan released alert: %w", err)
		}
		out = append(out, a)
	}
	return out, rows.Err()
}
