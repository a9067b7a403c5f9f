package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
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
				ors = append(ors, "incident_id IS NULL")
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
	if pageToken != "" {
		at, fp, inc, err := decodeAlertToken(pageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, fmt.Sprintf("(last_seen_at, fingerprint, coalesce(incident_id, '%s')) < (%s, %s, %s::uuid)",
			zeroUUID, arg(at), arg(fp), arg(inc)))
	}
	sql := `SELECT ` + alertColumns + ` FROM alerts`
	if len(where) > 0 {
		sql += ` WHERE ` + strings.Join(where, " AND ")
	}
	sql += fmt.Sprintf(` ORDER BY last_seen_at DESC, fingerprint DESC, coalesce(incident_id, '%s') DESC LIMIT %s`, zeroUUID, arg(limit+1))
	rows, err := q.Query(ctx, sql, args...)
	if err != nil {
		return nil, "", fmt.Errorf("list alerts: %w", err)
	}
	defer rows.Close()
	var out []*typesv1.IncidentAlert
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, "", fmt.Errorf("scan alert: %w", err)
		}
		out = append(out, a.IncidentAlert)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list alerts: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		inc := last.GetIncidentId()
		if inc == "" {
			inc = zeroUUID
		}
		next = encodeAlertToken(last.GetLastSeenAt().AsTime(), last.GetAlert().GetFingerprint(), inc)
	}
	return out, next, nil
}

func encodeAlertToken(at time.Time, fingerprint, incidentID string) string {
	return base64.RawURLEncoding.EncodeToString([]byte("a|" + at.UTC().Format(time.RFC3339Nano) + "|" + incidentID + "|" + fingerprint))
}

func decodeAlertToken(tok string) (time.Time, string, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", "", ErrBadPageToken
	}
	parts := strings.SplitN(string(raw), "|", 4)
	if len(parts) != 4 || parts[0] != "a" {
		return time.Time{}, "", "", ErrBadPageToken
	}
	if _, err := uuid.Parse(parts[2]); err != nil {
		return time.Time{}, "", "", ErrBadPageToken
	}
	at, err := time.Parse(time.RFC3339Nano, parts[1])
	if err != nil {
		return time.Time{}, "", "", ErrBadPageToken
	}
	return at, parts[3], parts[2], nil
}
