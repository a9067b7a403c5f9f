package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/db"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// MatchOp is a label matcher's operator, as Alertmanager writes it.
type MatchOp string

// The operators of Alertmanager's matchers.
const (
	MatchEqual     MatchOp = "="
	MatchNotEqual  MatchOp = "!="
	MatchRegexp    MatchOp = "=~"
	MatchNotRegexp MatchOp = "!~"
)

// LabelMatch selects alerts by one label; a missing label has the empty
// value, as in Alertmanager.
type LabelMatch struct {
	Name  string
	Op    MatchOp
	Value string
}

// AlertState selects alerts by what became of them.
type AlertState int

// Alert states of a search.
const (
	StateFiring AlertState = iota + 1
	StateResolved
	StateSilenced
	// StateHeld: held by its app's rollout (package quiet).
	StateHeld
	// StateInhibited: held back by an inhibition rule (package inhibit).
	StateInhibited
)

// AlertFilter selects alerts to list; zero fields select everything.
type AlertFilter struct {
	Matchers   []LabelMatch
	States     []AlertState
	IncidentID string
	// Since and Until bound last_seen_at: [Since, Until).
	Since, Until time.Time
}

const zeroUUID = "00000000-0000-0000-0000-000000000000"

// ListAlerts returns up to limit alerts, most recently seen first, after the
// page token, and the token of the next page ("" on the last). Equality
// matchers use the GIN index on labels; regular expressions are anchored,
// as in Alertmanager, and evaluated by Postgres (POSIX ARE, which accepts
// the RE2 syntax people write in matchers).
func (Store) ListAlerts(ctx context.Context, q Querier, f AlertFilter, limit int, pageToken string) ([]*typesv1.IncidentAlert, string, error) {
	var where []string
	var args []any
	labelIndexed := false
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	for _, m := range f.Matchers {
		label := "coalesce(labels->>" + arg(m.Name) + ", '')"
		switch m.Op {
		case MatchEqual:
			if m.Value == "" {
				where = append(where, label+" = ''")
				continue
			}
			js, err := json.Marshal(map[string]string{m.Name: m.Value})
			if err != nil {
				return nil, "", fmt.Errorf("matcher %s: %w", m.Name, err)
			}
			args = args[:len(args)-1] // the name is in the JSON
			where = append(where, "labels @> "+arg(string(js))+"::jsonb")
			labelIndexed = true
		case MatchNotEqual:
			where = append(where, label+" <> "+arg(m.Value))
		case MatchRegexp:
			where = append(where, label+" ~ "+arg("^(?:"+m.Value+")$"))
		case MatchNotRegexp:
			where = append(where, label+" !~ "+arg("^(?:"+m.Value+")$"))
		default:
			return nil, "", fmt.Errorf("matcher %s: unknown operator %q", m.Name, m.Op)
		}
	}
	if len(f.States) > 0 {
		var ors []string
		for _, s := range f.States {
			switch s {
			case StateFiring:
				ors = append(ors, "(incident_id IS NOT NULL AND status = 'firing')")
			case StateResolved:
				ors = append(ors, "(incident_id IS NOT NULL AND status = 'resolved')")
			case StateSilenced:
				ors = append(ors, "(incident_id IS NULL AND held_by IS NULL AND inhibited_by IS NULL)")
			case StateHeld:
				ors = append(ors, "(incident_id IS NULL AND held_by IS NOT NULL)")
			case StateInhibited:
				ors = append(ors, "(incident_id IS NULL AND inhibited_by IS NOT NULL AND held_by IS NULL)")
			}
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	if f.IncidentID != "" {
		where = append(where, "incident_id = "+arg(f.IncidentID)+"::uuid")
	}
	if !f.Since.IsZero() {
		where = append(where, "last_seen_at >= "+arg(f.Since))
	}
	if !f.Until.IsZero() {
		where = append(where, "last_seen_at < "+arg(f.Until))
	}
	var bad server.BadRequestError
	if after := server.ParsePageToken[alertKey](&bad, "alerts", pageToken); after != nil {
		where = append(where, fmt.Sprintf("(last_seen_at, fingerprint, coalesce(incident_id, '%s')) < (%s, %s, %s::uuid)",
			zeroUUID, arg(after.LastSeen), arg(after.Fingerprint), arg(after.Incident.String())))
	}
	if err := bad.Err("invalid page token"); err != nil {
		return nil, "", err
	}
	cond := ""
	if len(where) > 0 {
		cond = ` WHERE ` + strings.Join(where, " AND ")
	}
	order := fmt.Sprintf(` ORDER BY last_seen_at DESC, fingerprint DESC, coalesce(incident_id, '%s') DESC LIMIT %s`, zeroUUID, arg(limit+1))
	var out []*typesv1.IncidentAlert
	var err error
	if labelIndexed && f.IncidentID == "" {
		out, err = listSparse(ctx, q, cond, order, args)
		if err != nil {
			return nil, "", err
		}
		if out != nil {
			return page(out, limit)
		}
	}
	out, err = collectAlerts(ctx, q, `SELECT `+alertColumns+` FROM alerts`+cond+order, args)
	if err != nil {
		return nil, "", err
	}
	return page(out, limit)
}

// sparseCap is the most matches of the label index sorted by recency in
// memory; more, and walking the recency index finds a page sooner.
const sparseCap = 5000

// listSparse answers from the label index (GIN) when the matchers select
// at most sparseCap alerts, and returns nil otherwise. Postgres cannot
// estimate how many alerts a label matches (every label set is distinct, so
// it assumes 1%) and would walk the recency index for a rare label until it
// found a page: the whole table for a label no alert has. Bitmap scans are
// forced for this one bounded query, so the label index is used whatever the
// estimate.
func listSparse(ctx context.Context, q Querier, cond, order string, args []any) ([]*typesv1.IncidentAlert, error) {
	b, ok := q.(db.Beginner)
	if !ok {
		return nil, nil
	}
	var out []*typesv1.IncidentAlert
	err := db.InTx(ctx, b, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off`); err != nil {
			return fmt.Errorf("list alerts: %w", err)
		}
		var n int
		if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM (SELECT 1 FROM alerts%s LIMIT %d) m`, cond, sparseCap+1),
			args[:len(args)-1]...).Scan(&n); err != nil {
			return fmt.Errorf("count matching alerts: %w", err)
		}
		if n > sparseCap {
			return nil
		}
		var err error
		if out, err = collectAlerts(ctx, tx, `SELECT `+alertColumns+` FROM alerts`+cond+order, args); err == nil && out == nil {
			out = []*typesv1.IncidentAlert{}
		}
		return err
	})
	return out, err
}

func collectAlerts(ctx context.Context, q Querier, sql string, args []any) ([]*typesv1.IncidentAlert, error) {
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []*typesv1.IncidentAlert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("scan alert: %w", err)
		}
		out = append(out, a.IncidentAlert)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// alertKey is where a page of alerts ends: the order of ListAlerts.
type alertKey struct {
	LastSeen    time.Time `json:"t"`
	Incident    uuid.UUID `json:"i"`
	Fingerprint string    `json:"f"`
}

// page cuts a result to limit and makes the next page's token.
func page(out []*typesv1.IncidentAlert, limit int) ([]*typesv1.IncidentAlert, string, error) {
	out, next := server.NextPage("alerts", out, limit, func(a *typesv1.IncidentAlert) alertKey {
		inc, _ := uuid.Parse(a.GetIncidentId()) // the database's uuid, or none (the zero UUID)
		return alertKey{LastSeen: a.GetLastSeenAt().AsTime(), Incident: inc, Fingerprint: a.GetAlert().GetFingerprint()}
	})
	return out, next, nil
}
