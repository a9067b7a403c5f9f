// Package postgres keeps monitor's incidents and alerts in its own schema,
// "monitor". Every method runs in the caller's transaction.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/appteam"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
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

// Execer runs statements: a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
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
	opened_at, updated_at, acknowledged_at, acknowledged_by, resolved_at, resolved_by,
	alert_count, firing_count, last_event_at, update_due_at, pending, team, subject, priority, priority_by,
	flapping_since, flap_until`

func scanIncident(row pgx.Row) (*incident.Record, error) {
	var (
		r              = &incident.Record{Incident: &typesv1.Incident{}}
		severity       int32
		status         string
		opened, update time.Time
		acked, solved  *time.Time
		lastEvent      *time.Time
		pending        []byte
		subj           []byte
		prio           int32
		flapping       *time.Time
	)
	err := row.Scan(&r.Id, &r.GroupKey, &r.GroupLabels, &r.Title, &severity, &status, &r.App, &r.Namespace,
		&r.CorrelationID, &opened, &update, &acked, &r.AcknowledgedBy, &solved, &r.ResolvedBy,
		&r.AlertCount, &r.FiringCount, &lastEvent, &r.UpdateDueAt, &pending, &r.Team, &subj, &prio, &r.PriorityBy,
		&flapping, &r.FlapUntil)
	if err != nil {
		return nil, err
	}
	if subj != nil {
		r.Subject = &typesv1.Subject{}
		if err := protojson.Unmarshal(subj, r.Subject); err != nil {
			return nil, fmt.Errorf("subject of %s: %w", r.Id, err)
		}
	}
	r.Severity = typesv1.Severity(severity)
	r.Priority = typesv1.Priority(prio)
	r.Status = statusFromName(status)
	r.OpenedAt, r.UpdatedAt = timestamppb.New(opened), timestamppb.New(update)
	r.AcknowledgedAt, r.ResolvedAt = ts(acked), ts(solved)
	r.Flapping, r.FlappingSince = flapping != nil, ts(flapping)
	if lastEvent != nil {
		r.LastEventAt = *lastEvent
	}
	if pending != nil {
		r.Pending = &eventsv1.IncidentChange{}
		if err := proto.Unmarshal(pending, r.Pending); err != nil {
			return nil, fmt.Errorf("pending change of %s: %w", r.Id, err)
		}
	}
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

// LockGroups implements incident.Store: advisory locks, taken one after the
// other in the order given.
func (Store) LockGroups(ctx context.Context, tx pgx.Tx, ids []int64) error {
	if len(ids) == 0 {
		return nil
	}
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(k) FROM unnest($1::bigint[]) AS k`, ids); err != nil {
		return fmt.Errorf("lock groups: %w", err)
	}
	return nil
}

// Incidents implements incident.Store.
func (Store) Incidents(ctx context.Context, tx pgx.Tx, keys []string, reopenSince time.Time) (map[string]*incident.Record, error) {
	out := make(map[string]*incident.Record, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if err := collectIncidents(ctx, tx, out, `SELECT `+incidentColumns+` FROM incidents
		WHERE group_key = ANY($1) AND status <> 'resolved' FOR UPDATE`, keys); err != nil {
		return nil, fmt.Errorf("find unresolved incidents: %w", err)
	}
	if reopenSince.IsZero() || len(out) == len(keys) {
		return out, nil
	}
	rest := make([]string, 0, len(keys)-len(out))
	for _, k := range keys {
		if out[k] == nil {
			rest = append(rest, k)
		}
	}
	if err := collectIncidents(ctx, tx, out, `SELECT `+incidentColumns+` FROM incidents WHERE id IN (
		SELECT DISTINCT ON (group_key) id FROM incidents
		WHERE group_key = ANY($1) AND status = 'resolved' AND resolved_at >= $2
		ORDER BY group_key, resolved_at DESC) FOR UPDATE`, rest, reopenSince); err != nil {
		return nil, fmt.Errorf("find recently resolved incidents: %w", err)
	}
	return out, nil
}

func collectIncidents(ctx context.Context, tx pgx.Tx, out map[string]*incident.Record, sql string, args ...any) error {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanIncident(rows)
		if err != nil {
			return err
		}
		out[r.GetGroupKey()] = r
	}
	return rows.Err()
}

const insertIncident = `INSERT INTO incidents (id, group_key, group_labels, title, severity, status, app,
	namespace, correlation_id, opened_at, updated_at, resolved_at, resolved_by, alert_count, firing_count,
	last_event_at, update_due_at, pending, team, subject, priority, flapping_since, flap_until)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23)`

const updateIncident = `UPDATE incidents SET severity = $2, status = $3, updated_at = $4,
	acknowledged_at = $5, acknowledged_by = $6, resolved_at = $7, resolved_by = $8, alert_count = $9,
	firing_count = $10, last_event_at = $11, update_due_at = $12, pending = $13, priority = $14, priority_by = $15,
	flapping_since = $16, flap_until = $17
	WHERE id = $1`

// SaveIncidents implements incident.Store: one round trip for all of them.
func (Store) SaveIncidents(ctx context.Context, tx pgx.Tx, inserted, updated []*incident.Record) error {
	if len(inserted)+len(updated) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, r := range inserted {
		pending, err := encodePending(r)
		if err != nil {
			return err
		}
		var subj []byte
		if r.GetSubject() != nil {
			if subj, err = protojson.Marshal(r.GetSubject()); err != nil {
				return fmt.Errorf("subject of %s: %w", r.GetId(), err)
			}
		}
		b.Queue(insertIncident, r.GetId(), r.GetGroupKey(), r.GetGroupLabels(), r.GetTitle(), int32(r.GetSeverity()),
			statusNames[r.GetStatus()], r.GetApp(), r.GetNamespace(), r.CorrelationID,
			r.GetOpenedAt().AsTime(), r.GetUpdatedAt().AsTime(), tm(r.GetResolvedAt()), r.GetResolvedBy(),
			r.GetAlertCount(), r.GetFiringCount(), nullTime(r.LastEventAt), r.UpdateDueAt, pending, r.GetTeam(), subj, int32(r.GetPriority()),
			tm(r.GetFlappingSince()), r.FlapUntil)
	}
	for _, r := range updated {
		pending, err := encodePending(r)
		if err != nil {
			return err
		}
		b.Queue(updateIncident, r.GetId(), int32(r.GetSeverity()), statusNames[r.GetStatus()], r.GetUpdatedAt().AsTime(),
			tm(r.GetAcknowledgedAt()), r.GetAcknowledgedBy(), tm(r.GetResolvedAt()), r.GetResolvedBy(),
			r.GetAlertCount(), r.GetFiringCount(), nullTime(r.LastEventAt), r.UpdateDueAt, pending,
			int32(r.GetPriority()), r.PriorityBy, tm(r.GetFlappingSince()), r.FlapUntil)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return fmt.Errorf("save %d incidents: %w", len(inserted)+len(updated), err)
	}
	return nil
}

func encodePending(r *incident.Record) ([]byte, error) {
	if r.Pending == nil {
		return nil, nil
	}
	b, err := proto.Marshal(r.Pending)
	if err != nil {
		return nil, fmt.Errorf("encode pending change of %s: %w", r.GetId(), err)
	}
	return b, nil
}

func nullString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
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

// DueIncidents implements incident.Store.
func (Store) DueIncidents(ctx context.Context, tx pgx.Tx, now time.Time, limit int) ([]*incident.Record, error) {
	return lockedIncidents(ctx, tx, "due incidents", `SELECT `+incidentColumns+` FROM incidents WHERE update_due_at <= $1
		ORDER BY update_due_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, limit)
}

// lockedIncidents are the incidents sql selects (and locks), what they
// are named in errors.
func lockedIncidents(ctx context.Context, tx pgx.Tx, what, sql string, args ...any) ([]*incident.Record, error) {
	rows, err := tx.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("find %s: %w", what, err)
	}
	defer rows.Close()
	var out []*incident.Record
	for rows.Next() {
		r, err := scanIncident(rows)
		if err != nil {
			return nil, fmt.Errorf("scan %s: %w", what, err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

const alertColumns = `coalesce(incident_id::text, ''), fingerprint, status, labels, annotations, source, starts_at, ends_at,
	generator_url, external_url, count, first_seen_at, last_seen_at, coalesce(silenced_by::text, ''), held_by,
	coalesce(inhibited_by, ''), coalesce(inhibit_key, '')`

func scanAlert(row pgx.Row) (*incident.AlertRecord, error) {
	var (
		a           = &typesv1.Alert{}
		rec         = &incident.AlertRecord{IncidentAlert: &typesv1.IncidentAlert{Alert: a}}
		status      string
		source      int32
		starts      time.Time
		ends        *time.Time
		first, last time.Time
		held        []byte
	)
	err := row.Scan(&rec.IncidentID, &a.Fingerprint, &status, &a.Labels, &a.Annotations, &source, &starts, &ends,
		&a.GeneratorUrl, &a.ExternalUrl, &rec.Count, &first, &last, &rec.SilencedBy, &held, &rec.InhibitedBy, &rec.InhibitKey)
	if err != nil {
		return nil, err
	}
	if held != nil {
		rec.HeldBy = &typesv1.DeployHold{}
		if err := protojson.Unmarshal(held, rec.HeldBy); err != nil {
			return nil, fmt.Errorf("held_by of %s: %w", a.GetFingerprint(), err)
		}
	}
	rec.InhibitRule, _, _ = strings.Cut(rec.InhibitKey, ":")
	rec.IncidentId = rec.IncidentID
	a.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
	if status == "resolved" {
		a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	}
	a.Source = typesv1.AlertSource(source)
	a.StartsAt, a.EndsAt = timestamppb.New(starts), ts(ends)
	rec.FirstSeenAt, rec.LastSeenAt = timestamppb.New(first), timestamppb.New(last)
	return rec, nil
}

// Alerts implements incident.Store.
func (Store) Alerts(ctx context.Context, tx pgx.Tx, refs []incident.AlertRef) (map[incident.AlertRef]*incident.AlertRecord, error) {
	out := make(map[incident.AlertRef]*incident.AlertRecord, len(refs))
	if len(refs) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(refs))
	fps := make([]string, 0, len(refs))
	seen := make(map[incident.AlertRef]bool, len(refs))
	for _, r := range refs {
		if !seen[r] {
			seen[r] = true
			ids, fps = append(ids, r.IncidentID), append(fps, r.Fingerprint)
		}
	}
	// One index probe per ref: the planner, left to itself, takes a bitmap
	// scan per row (twice the cost) or a hash join over the whole table.
	rows, err := tx.Query(ctx, `SELECT a.* FROM unnest($1::uuid[], $2::text[]) AS r(i, f),
		LATERAL (SELECT `+alertColumns+` FROM alerts WHERE incident_id = r.i AND fingerprint = r.f LIMIT 1) a`, ids, fps)
	if err != nil {
		return nil, fmt.Errorf("load alerts: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, fmt.Errorf("scan alert: %w", err)
		}
		out[incident.AlertRef{IncidentID: a.IncidentID, Fingerprint: a.GetAlert().GetFingerprint()}] = a
	}
	return out, rows.Err()
}

// alertArrays are alerts as column arrays, for one multi-row statement.
type alertArrays struct {
	incidents, fingerprints, statuses, labels, annotations       []string
	generators, externals, silencedBy, heldBy, inhibitedBy, keys []*string
	sources, counts                                              []int32
	starts, firsts, lasts                                        []time.Time
	ends                                                         []*time.Time
}

func (x *alertArrays) add(r *incident.AlertRecord) error {
	a := r.GetAlert()
	labels, err := json.Marshal(a.GetLabels())
	if err != nil {
		return fmt.Errorf("labels of %s: %w", a.GetFingerprint(), err)
	}
	annotations := []byte("{}")
	if len(a.GetAnnotations()) > 0 {
		if annotations, err = json.Marshal(a.GetAnnotations()); err != nil {
			return fmt.Errorf("annotations of %s: %w", a.GetFingerprint(), err)
		}
	}
	gen, ext := a.GetGeneratorUrl(), a.GetExternalUrl()
	var silenced *string
	if r.GetSilencedBy() != "" {
		v := r.GetSilencedBy()
		silenced = &v
	}
	x.incidents = append(x.incidents, r.IncidentID)
	x.fingerprints = append(x.fingerprints, a.GetFingerprint())
	x.statuses = append(x.statuses, alertStatusName(a.GetStatus()))
	x.labels = append(x.labels, string(labels))
	x.annotations = append(x.annotations, string(annotations))
	x.generators = append(x.generators, &gen)
	x.externals = append(x.externals, &ext)
	x.silencedBy = append(x.silencedBy, silenced)
	var held *string
	if r.GetHeldBy() != nil {
		js, err := protojson.Marshal(r.GetHeldBy())
		if err != nil {
			return fmt.Errorf("held_by of %s: %w", a.GetFingerprint(), err)
		}
		v := string(js)
		held = &v
	}
	x.heldBy = append(x.heldBy, held)
	x.inhibitedBy = append(x.inhibitedBy, nullString(r.GetInhibitedBy()))
	x.keys = append(x.keys, nullString(r.InhibitKey))
	x.sources = append(x.sources, int32(a.GetSource()))
	x.counts = append(x.counts, r.GetCount())
	x.starts = append(x.starts, a.GetStartsAt().AsTime())
	x.ends = append(x.ends, tm(a.GetEndsAt()))
	x.firsts = append(x.firsts, r.GetFirstSeenAt().AsTime())
	x.lasts = append(x.lasts, r.GetLastSeenAt().AsTime())
	return nil
}

func (x *alertArrays) args() []any {
	return []any{
		x.incidents, x.fingerprints, x.statuses, x.labels, x.annotations, x.sources, x.starts, x.ends,
		x.generators, x.externals, x.counts, x.firsts, x.lasts, x.silencedBy, x.heldBy, x.inhibitedBy, x.keys,
	}
}

const alertRows = `SELECT nullif(i, '')::uuid, f, s, l::jsonb, an::jsonb, src, st, en, g, e, c, fs, ls, sb::uuid, hb::jsonb, ib, ik
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::smallint[], $7::timestamptz[],
		$8::timestamptz[], $9::text[], $10::text[], $11::integer[], $12::timestamptz[], $13::timestamptz[], $14::text[],
		$15::text[], $16::text[], $17::text[])
	AS u(i, f, s, l, an, src, st, en, g, e, c, fs, ls, sb, hb, ib, ik)`

const alertInsert = `INSERT INTO alerts (incident_id, fingerprint, status, labels, annotations, source,
	starts_at, ends_at, generator_url, external_url, count, first_seen_at, last_seen_at, silenced_by, held_by,
	inhibited_by, inhibit_key) `

// UpsertAlerts implements incident.Store: one statement for all of them.
func (Store) UpsertAlerts(ctx context.Context, tx pgx.Tx, as []*incident.AlertRecord) error {
	if len(as) == 0 {
		return nil
	}
	var x alertArrays
	for _, a := range as {
		if err := x.add(a); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, alertInsert+alertRows+`
		ON CONFLICT ON CONSTRAINT alerts_incident_fingerprint DO UPDATE SET status = excluded.status,
			labels = excluded.labels, annotations = excluded.annotations, starts_at = excluded.starts_at,
			ends_at = excluded.ends_at, generator_url = excluded.generator_url,
			external_url = excluded.external_url, count = excluded.count, last_seen_at = excluded.last_seen_at`,
		x.args()...)
	if err != nil {
		return fmt.Errorf("upsert %d alerts: %w", len(as), err)
	}
	return nil
}

// SilenceAlerts implements incident.Store. Replicas may store the same
// silenced alert at once: the count is added in the statement, not read
// before.
func (Store) SilenceAlerts(ctx context.Context, tx pgx.Tx, muted []*incident.AlertRecord,
	resolved []incident.Resolution, unmuted []string,
) error {
	if err := storeMuted(ctx, tx, muted); err != nil {
		return err
	}
	if len(resolved)+len(unmuted) == 0 {
		return nil
	}
	// Most of the time no silenced alert is stored, and the statements
	// about them (an index probe per alert) are skipped.
	var stored bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts WHERE incident_id IS NULL)`).Scan(&stored); err != nil {
		return fmt.Errorf("look for silenced alerts: %w", err)
	}
	if !stored {
		return nil
	}
	if len(resolved) > 0 {
		fps, starts, ends := resolutionArrays(resolved)
		_, err := tx.Exec(ctx, `UPDATE alerts a SET status = 'resolved', ends_at = u.en, last_seen_at = now()
			FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) AS u(f, st, en)
			WHERE a.incident_id IS NULL AND a.fingerprint = u.f AND a.status = 'firing' AND a.starts_at <= u.st`,
			fps, starts, ends)
		if err != nil {
			return fmt.Errorf("resolve silenced alerts: %w", err)
		}
	}
	if len(unmuted) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM alerts WHERE incident_id IS NULL AND fingerprint = ANY($1)`, unmuted); err != nil {
			return fmt.Errorf("unsilence alerts: %w", err)
		}
	}
	return nil
}

// storeMuted upserts muted firings, one row per fingerprint.
func storeMuted(ctx context.Context, tx pgx.Tx, muted []*incident.AlertRecord) error {
	if len(muted) == 0 {
		return nil
	}
	byFP := make(map[string]*incident.AlertRecord, len(muted))
	order := make([]string, 0, len(muted))
	for _, a := range muted {
		fp := a.GetAlert().GetFingerprint()
		if prev := byFP[fp]; prev != nil {
			a.Count += prev.GetCount()
			a.FirstSeenAt = prev.GetFirstSeenAt()
		} else {
			order = append(order, fp)
		}
		byFP[fp] = a
	}
	var x alertArrays
	for _, fp := range order {
		if err := x.add(byFP[fp]); err != nil {
			return err
		}
	}
	_, err := tx.Exec(ctx, alertInsert+alertRows+`
		ON CONFLICT ON CONSTRAINT alerts_incident_fingerprint DO UPDATE SET status = 'firing',
			labels = excluded.labels, annotations = excluded.annotations, starts_at = excluded.starts_at,
			ends_at = NULL, generator_url = excluded.generator_url, external_url = excluded.external_url,
			count = alerts.count + excluded.count, last_seen_at = excluded.last_seen_at,
			silenced_by = excluded.silenced_by, held_by = excluded.held_by, inhibited_by = excluded.inhibited_by,
			inhibit_key = excluded.inhibit_key`, x.args()...)
	if err != nil {
		return fmt.Errorf("store %d silenced alerts: %w", len(order), err)
	}
	return nil
}

// resolutionArrays are resolutions as column arrays.
func resolutionArrays(rs []incident.Resolution) (fps []string, starts, ends []time.Time) {
	fps = make([]string, len(rs))
	starts = make([]time.Time, len(rs))
	ends = make([]time.Time, len(rs))
	for i, r := range rs {
		fps[i], starts[i], ends[i] = r.Fingerprint, r.StartsAt, r.EndsAt
	}
	return fps, starts, ends
}

// RecordResolutions implements incident.Store.
func (Store) RecordResolutions(ctx context.Context, tx pgx.Tx, rs []incident.Resolution) error {
	if len(rs) == 0 {
		return nil
	}
	fps, starts, ends := resolutionArrays(rs)
	_, err := tx.Exec(ctx, `INSERT INTO alert_resolutions (fingerprint, starts_at, ends_at)
		SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::timestamptz[]) ON CONFLICT DO NOTHING`, fps, starts, ends)
	if err != nil {
		return fmt.Errorf("record %d resolutions: %w", len(rs), err)
	}
	return nil
}

// KnownResolutions implements incident.Store.
func (Store) KnownResolutions(ctx context.Context, tx pgx.Tx, is []incident.Instance) (map[incident.Instance]bool, error) {
	out := map[incident.Instance]bool{}
	if len(is) == 0 {
		return out, nil
	}
	fps := make([]string, len(is))
	starts := make([]time.Time, len(is))
	for i, in := range is {
		fps[i], starts[i] = in.Fingerprint, in.StartsAt
	}
	rows, err := tx.Query(ctx, `SELECT k.* FROM unnest($1::text[], $2::timestamptz[]) AS u(f, st),
		LATERAL (SELECT fingerprint, starts_at FROM alert_resolutions WHERE fingerprint = u.f AND starts_at = u.st) k`, fps, starts)
	if err != nil {
		return nil, fmt.Errorf("check resolutions: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var in incident.Instance
		if err := rows.Scan(&in.Fingerprint, &in.StartsAt); err != nil {
			return nil, fmt.Errorf("check resolutions: %w", err)
		}
		in.StartsAt = in.StartsAt.UTC()
		out[in] = true
	}
	return out, rows.Err()
}

// Get returns an incident with its counters and up to pageSize of its
// alerts, most recently seen first (none when pageSize is 0), and the token
// of the next page of alerts ("" when there is none).
func (s Store) Get(ctx context.Context, q Querier, id string, pageSize int) (*typesv1.Incident, string, error) {
	r, err := scanIncident(q.QueryRow(ctx, `SELECT `+ownedColumns()+` FROM incidents i WHERE i.id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, "", fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	if err != nil {
		return nil, "", fmt.Errorf("load incident %s: %w", id, err)
	}
	inc := r.Incident
	if pageSize <= 0 {
		return inc, "", nil
	}
	alerts, next, err := s.ListAlerts(ctx, q, AlertFilter{IncidentID: id}, pageSize, "")
	if err != nil {
		return nil, "", err
	}
	inc.Alerts = alerts
	return inc, next, nil
}

// Filter selects incidents to list.
type Filter struct {
	Statuses   []typesv1.IncidentStatus
	Priorities []typesv1.Priority
	App        string
	// Team: only incidents this team owns; Text: a case-insensitive
	// substring of the title, app, team, namespace or a group label
	// (name=value).
	Team, Text string
	// Scoped: only incidents of Teams' apps, and (with Unowned) of apps
	// that belong to no team. Unscoped (the zero Filter), every incident.
	Scoped  bool
	Teams   []string
	Unowned bool
}

// likeEscaper makes text match itself in a LIKE pattern (backslash is
// PostgreSQL's default escape).
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

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
	if len(f.Priorities) > 0 {
		ps := make([]int32, 0, len(f.Priorities))
		for _, p := range f.Priorities {
			ps = append(ps, int32(p))
		}
		where = append(where, "i.priority = ANY("+arg(ps)+")")
	}
	if f.App != "" {
		where = append(where, "i.app = "+arg(f.App))
	}
	if f.Team != "" {
		where = append(where, appteam.OwnerOf("i.app", "i.team")+" = "+arg(f.Team))
	}
	if f.Text != "" {
		p := arg("%" + likeEscaper.Replace(f.Text) + "%")
		where = append(where, "(i.title ILIKE "+p+" OR i.app ILIKE "+p+" OR "+appteam.OwnerOf("i.app", "i.team")+" ILIKE "+p+
			" OR i.namespace ILIKE "+p+" OR EXISTS (SELECT 1 FROM jsonb_each_text(i.group_labels) g WHERE g.key || '=' || g.value ILIKE "+p+"))")
	}
	if f.Scoped {
		// The team of an incident is its app's (app_teams); an app no
		// team claims is nobody's, reached only with Unowned.
		where = append(where, appteam.OwnerOf("i.app", "i.team")+` = ANY(`+arg(appteam.WithUnowned(f.Teams, f.Unowned))+`)`)
	}
	var bad server.BadRequestError
	if after := server.ParsePageToken[server.TimeID](&bad, "incidents", pageToken); after != nil {
		where = append(where, fmt.Sprintf("(i.opened_at, i.id) < (%s, %s)", arg(after.Time), arg(after.ID.String())))
	}
	if err := bad.Err("invalid page token"); err != nil {
		return nil, "", err
	}
	rows, err := q.Query(ctx, `SELECT `+ownedColumns()+`
		FROM incidents i WHERE `+strings.Join(where, " AND ")+`
		ORDER BY i.opened_at DESC, i.id DESC LIMIT `+arg(limit+1), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	defer rows.Close()
	var out []*typesv1.Incident
	for rows.Next() {
		r, err := scanIncident(rows)
		if err != nil {
			return nil, "", fmt.Errorf("scan incident: %w", err)
		}
		out = append(out, r.Incident)
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("list incidents: %w", err)
	}
	out, next := server.NextPage("incidents", out, limit, func(i *typesv1.Incident) server.TimeID {
		return server.TimeIDOf(i.GetOpenedAt().AsTime(), i.GetId())
	})
	return out, next, nil
}

// ownedColumns are incidentColumns of incidents i, with the team that
// owns each now (appteam.OwnerOf: an app's incidents follow the app) in
// place of the team stored when it opened: what people are shown and
// checked against.
func ownedColumns() string {
	return strings.Replace(prefixed("i.", incidentColumns), "i.team", appteam.OwnerOf("i.app", "i.team"), 1)
}

func prefixed(prefix, columns string) string {
	parts := strings.Split(columns, ",")
	for i, p := range parts {
		parts[i] = prefix + strings.TrimSpace(p)
	}
	return strings.Join(parts, ", ")
}
