// Package postgres keeps monitor's incidents and alerts in its own schema,
// "monitor". Every method runs in the caller's transaction.
package postgres

import (
	"context"
	"embed"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// Migrations are monitor's schema migrations.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Store implements incident.Store.
type Store struct{}

var _ incident.Store = Store{}

// Querier is what Store needs of a pool or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

var statusNames = map[typesv1.IncidentStatus]string{
	typesv1.IncidentStatus_INCIDENT_STATUS_OPEN:         "open",
	typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED: "acknowledged",
	typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED:     "resolved",
}

func statusFromName(s string) typesv1.IncidentStatus {
	for k, v := range statusNames {
		if v == s {
			return k
		}
	}
	return typesv1.IncidentStatus_INCIDENT_STATUS_UNSPECIFIED
}

func alertStatusName(s typesv1.AlertStatus) string {
	if s == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
		return "resolved"
	}
	return "firing"
}

const incidentColumns = `id::text, group_key, group_labels, title, severity, status, app, namespace, correlation_id,
	opened_at, updated_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by`

func scanIncident(row pgx.Row) (*incident.Record, error) {
	var (
		r              = &incident.Record{Incident: &typesv1.Incident{}}
		severity       int32
		status         string
		opened, update time.Time
		acked, solved  *time.Time
	)
	err := row.Scan(&r.Id, &r.GroupKey, &r.GroupLabels, &r.Title, &severity, &status, &r.App, &r.Namespace,
		&r.CorrelationID, &opened, &update, &acked, &r.AcknowledgedBy, &solved, &r.ResolvedBy)
	if err != nil {
		return nil, err
	}
	r.Severity = typesv1.Severity(severity)
	r.Status = statusFromName(status)
	r.OpenedAt, r.UpdatedAt = timestamppb.New(opened), timestamppb.New(update)
	r.AcknowledgedAt, r.ResolvedAt = ts(acked), ts(solved)
	return r, nil
}

func ts(t *time.Time) *timestamppb.Timestamp {
	if t == nil {
		return nil
	}
	return timestamppb.New(*t)
}

func tm(t *timestamppb.Timestamp) *time.Time {
	if t == nil {
		return nil
	}
	v := t.AsTime()
	return &v
}

// LockGroup serialises work on one group key until the transaction ends,
// across replicas.
func (Store) LockGroup(ctx context.Context, tx pgx.Tx, groupKey string) error {
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, groupKey); err != nil {
		return fmt.Errorf("lock group: %w", err)
	}
	return nil
}

// ActiveIncident implements incident.Store.
func (Store) ActiveIncident(ctx context.Context, tx pgx.Tx, groupKey string, reopenSince time.Time) (*incident.Record, error) {
	r, err := scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents
		WHERE group_key = $1 AND status <> 'resolved'`, groupKey))
	if err == nil {
		return r, nil
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("find unresolved incident: %w", err)
	}
	if reopenSince.IsZero() {
		return nil, nil
	}
	r, err = scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents
		WHERE group_key = $1 AND status = 'resolved' AND resolved_at >= $2
		ORDER BY resolved_at DESC LIMIT 1`, groupKey, reopenSince))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find recently resolved incident: %w", err)
	}
	return r, nil
}

// InsertIncident implements incident.Store.
func (Store) InsertIncident(ctx context.Context, tx pgx.Tx, r *incident.Record) error {
	_, err := tx.Exec(ctx, `INSERT INTO incidents (id, group_key, group_labels, title, severity, status, app,
		namespace, correlation_id, opened_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		r.GetId(), r.GetGroupKey(), r.GetGroupLabels(), r.GetTitle(), int32(r.GetSeverity()),
		statusNames[r.GetStatus()], r.GetApp(), r.GetNamespace(), r.CorrelationID,
		r.GetOpenedAt().AsTime(), r.GetUpdatedAt().AsTime())
	if err != nil {
		return fmt.Errorf("insert incident: %w", err)
	}
	return nil
}

// UpdateIncident implements incident.Store.
func (Store) UpdateIncident(ctx context.Context, tx pgx.Tx, r *incident.Record) error {
	_, err := tx.Exec(ctx, `UPDATE incidents SET severity = $2, status = $3, updated_at = $4,
		acknowledged_at = $5, acknowledged_by = $6, resolved_at = $7, resolved_by = $8 WHERE id = $1`,
		r.GetId(), int32(r.GetSeverity()), statusNames[r.GetStatus()], r.GetUpdatedAt().AsTime(),
		tm(r.GetAcknowledgedAt()), r.GetAcknowledgedBy(), tm(r.GetResolvedAt()), r.GetResolvedBy())
	if err != nil {
		return fmt.Errorf("update incident %s: %w", r.GetId(), err)
	}
	return nil
}

// LockIncident implements incident.Store.
func (Store) LockIncident(ctx context.Context, tx pgx.Tx, id string) (*incident.Record, error) {
	r, err := scanIncident(tx.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1 FOR UPDATE`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load incident %s: %w", id, err)
	}
	return r, nil
}

const alertColumns = `incident_id::text, fingerprint, status, labels, annotations, source, starts_at, ends_at,
	generator_url, external_url, count, first_seen_at, last_seen_at`

func scanAlert(row pgx.Row) (*incident.AlertRecord, error) {
	var (
		a           = &typesv1.Alert{}
		rec         = &incident.AlertRecord{IncidentAlert: &typesv1.IncidentAlert{Alert: a}}
		status      string
		source      int32
		starts      time.Time
		ends        *time.Time
		first, last time.Time
	)
	err := row.Scan(&rec.IncidentID, &a.Fingerprint, &status, &a.Labels, &a.Annotations, &source, &starts, &ends,
		&a.GeneratorUrl, &a.ExternalUrl, &rec.Count, &first, &last)
	if err != nil {
		return nil, err
	}
	a.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
	if status == "resolved" {
		a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	}
	a.Source = typesv1.AlertSource(source)
	a.StartsAt, a.EndsAt = timestamppb.New(starts), ts(ends)
	rec.FirstSeenAt, rec.LastSeenAt = timestamppb.New(first), timestamppb.New(last)
	return rec, nil
}

// Alert implements incident.Store.
func (Store) Alert(ctx context.Context, tx pgx.Tx, incidentID, fingerprint string) (*incident.AlertRecord, error) {
	rec, err := scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts
		WHERE incident_id = $1 AND fingerprint = $2`, incidentID, fingerprint))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load alert %s: %w", fingerprint, err)
	}
	return rec, nil
}

// UpsertAlert implements incident.Store.
func (Store) UpsertAlert(ctx context.Context, tx pgx.Tx, r *incident.AlertRecord) error {
	a := r.GetAlert()
	labels, annotations := a.GetLabels(), a.GetAnnotations()
	if annotations == nil {
		annotations = map[string]string{}
	}
	_, err := tx.Exec(ctx, `INSERT INTO alerts (incident_id, fingerprint, status, labels, annotations, source,
		starts_at, ends_at, generator_url, external_url, count, first_seen_at, last_seen_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (incident_id, fingerprint) DO UPDATE SET status = excluded.status,
			labels = excluded.labels, annotations = excluded.annotations, starts_at = excluded.starts_at,
			ends_at = excluded.ends_at, generator_url = excluded.generator_url,
			external_url = excluded.external_url, count = excluded.count, last_seen_at = excluded.last_seen_at`,
		r.IncidentID, a.GetFingerprint(), alertStatusName(a.GetStatus()), labels, annotations, int32(a.GetSource()),
		a.GetStartsAt().AsTime(), tm(a.GetEndsAt()), a.GetGeneratorUrl(), a.GetExternalUrl(), r.GetCount(),
		r.GetFirstSeenAt().AsTime(), r.GetLastSeenAt().AsTime())
	if err != nil {
		return fmt.Errorf("upsert alert %s: %w", a.GetFingerprint(), err)
	}
	return nil
}

// FiringCount implements incident.Store.
func (Store) FiringCount(ctx context.Context, tx pgx.Tx, incidentID string) (int, error) {
	var n int
	err := tx.QueryRow(ctx, `SELECT count(*) FROM alerts WHERE incident_id = $1 AND status = 'firing'`, incidentID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("count firing alerts: %w", err)
	}
	return n, nil
}

// RecordResolution implements incident.Store.
func (Store) RecordResolution(ctx context.Context, tx pgx.Tx, fingerprint string, startsAt, endsAt time.Time) error {
	_, err := tx.Exec(ctx, `INSERT INTO alert_resolutions (fingerprint, starts_at, ends_at) VALUES ($1, $2, $3)
		ON CONFLICT DO NOTHING`, fingerprint, startsAt, endsAt)
	if err != nil {
		return fmt.Errorf("record resolution: %w", err)
	}
	return nil
}

// ResolutionKnown implements incident.Store.
func (Store) ResolutionKnown(ctx context.Context, tx pgx.Tx, fingerprint string, startsAt time.Time) (bool, error) {
	var known bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alert_resolutions WHERE fingerprint = $1 AND starts_at = $2)`,
		fingerprint, startsAt).Scan(&known)
	if err != nil {
		return false, fmt.Errorf("check resolution: %w", err)
	}
	return known, nil
}

// Snapshot implements incident.Store.
func (s Store) Snapshot(ctx context.Context, tx pgx.Tx, id string, maxAlerts int) (*typesv1.Incident, error) {
	return s.Get(ctx, tx, id, maxAlerts)
}

// Get returns an incident with its counts and up to maxAlerts alerts, newest
// first (all when maxAlerts is 0).
func (Store) Get(ctx context.Context, q Querier, id string, maxAlerts int) (*typesv1.Incident, error) {
	r, err := scanIncident(q.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("load incident %s: %w", id, err)
	}
	inc := r.Incident
	limit := "ALL"
	if maxAlerts > 0 {
		limit = fmt.Sprint(maxAlerts)
	}
	rows, err := q.Query(ctx, `SELECT `+alertColumns+` FROM alerts WHERE incident_id = $1
		ORDER BY last_seen_at DESC, fingerprint LIMIT `+limit, id)
	if err != nil {
		return nil, fmt.Errorf("load alerts of %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("scan alert: %w", err)
		}
		inc.Alerts = append(inc.Alerts, a.IncidentAlert)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	err = q.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE status = 'firing') FROM alerts WHERE incident_id = $1`, id).
		Scan(&inc.AlertCount, &inc.FiringCount)
	if err != nil {
		return nil, fmt.Errorf("count alerts of %s: %w", id, err)
	}
	return inc, nil
}

// Filter selects incidents to list.
type Filter struct {
	Statuses []typesv1.IncidentStatus
	App      string
}

// ErrBadPageToken means a page token was not one List returned.
var ErrBadPageToken = errors.New("invalid page token")

// List returns up to limit incidents, newest first, after the page token;
// and the token of the next page ("" on the last).
func (Store) List(ctx context.Context, q Querier, f Filter, limit int, pageToken string) ([]*typesv1.Incident, string, error) {
	where := []string{"true"}
	args := []any{}
	arg := func(v any) string { args = append(args, v); return fmt.Sprintf("$%d", len(args)) }
	if len(f.Statuses) > 0 {
		names := make([]string, 0, len(f.Statuses))
		for _, s := range f.Statuses {
			names = append(names, statusNames[s])
		}
		where = append(where, "i.status = ANY("+arg(names)+")")
	}
	if f.App != "" {
		where = append(where, "i.app = "+arg(f.App))
	}
	if pageToken != "" {
		at, id, err := decodePageToken(pageToken)
		if err != nil {
			return nil, "", err
		}
		where = append(where, fmt.Sprintf("(i.opened_at, i.id) < (%s, %s)", arg(at), arg(id)))
	}
	rows, err := q.Query(ctx, `SELECT `+prefixed("i.", incidentColumns)+`,
		(SELECT count(*) FROM alerts a WHERE a.incident_id = i.id),
		(SELECT count(*) FROM alerts a WHERE a.incident_id = i.id AND a.status = 'firing')
		FROM incidents i WHERE `+strings.Join(where, " AND ")+`
		ORDER BY i.opened_at DESC, i.id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	var out []*typesv1.Incident
	for rows.Next() {
		var total, firing int32
		r, err := scanIncident(scanExtra{rows, []any{&total, &firing}})
		if err != nil {
			return nil, "", fmt.Errorf("scan incident: %w", err)
		}
		r.AlertCount, r.FiringCount = total, firing
		out = append(out, r.Incident)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	next := ""
	if len(out) > limit {
		out = out[:limit]
		last := out[len(out)-1]
		next = encodePageToken(last.GetOpenedAt().AsTime(), last.GetId())
	}
	return out, next, nil
}

// scanExtra scans a row's leading incident columns and then extra ones.
type scanExtra struct {
	row   pgx.Row
	extra []any
}

func (s scanExtra) Scan(dest ...any) error { return s.row.Scan(append(dest, s.extra...)...) }

func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}

func encodePageToken(at time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(at.UTC().Format(time.RFC3339Nano) + "|" + id))
}

func decodePageToken(tok string) (time.Time, string, error) {
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	at, id, ok := strings.Cut(string(raw), "|")
	if !ok {
		return time.Time{}, "", ErrBadPageToken
	}
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return time.Time{}, "", ErrBadPageToken
	}
	return t, id, nil
}
