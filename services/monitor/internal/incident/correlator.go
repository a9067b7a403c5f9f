package incident

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
)

// Producer names monitor in the events it publishes.
const Producer = "monitor"

// maxEventAlerts bounds the alerts an event carries, so a storm of alerts in
// one incident does not make events larger than NATS accepts.
const maxEventAlerts = 50

// Record is an incident as stored: the API shape plus what only monitor
// needs.
type Record struct {
	*typesv1.Incident
	CorrelationID string
}

// AlertRecord is an alert of an incident as stored.
type AlertRecord struct {
	IncidentID string
	*typesv1.IncidentAlert
}

// Store keeps incidents and their alerts; every method runs in the caller's
// transaction.
type Store interface {
	LockGroup(ctx context.Context, tx pgx.Tx, groupKey string) error
	// ActiveIncident returns the unresolved incident of a group, or else
	// its newest one resolved at or after reopenSince (none when
	// reopenSince is zero); nil when neither.
	ActiveIncident(ctx context.Context, tx pgx.Tx, groupKey string, reopenSince time.Time) (*Record, error)
	InsertIncident(ctx context.Context, tx pgx.Tx, r *Record) error
	UpdateIncident(ctx context.Context, tx pgx.Tx, r *Record) error
	LockIncident(ctx context.Context, tx pgx.Tx, id string) (*Record, error)
	Alert(ctx context.Context, tx pgx.Tx, incidentID, fingerprint string) (*AlertRecord, error)
	UpsertAlert(ctx context.Context, tx pgx.Tx, a *AlertRecord) error
	FiringCount(ctx context.Context, tx pgx.Tx, incidentID string) (int, error)
	RecordResolution(ctx context.Context, tx pgx.Tx, fingerprint string, startsAt, endsAt time.Time) error
	ResolutionKnown(ctx context.Context, tx pgx.Tx, fingerprint string, startsAt time.Time) (bool, error)
	// Snapshot returns the incident with counts and its newest alerts.
	Snapshot(ctx context.Context, tx pgx.Tx, id string, maxAlerts int) (*typesv1.Incident, error)
}

// Options tune grouping and deduplication.
type Options struct {
	// GroupBy are the labels that make an incident's group key (default
	// alertname, namespace; "..." groups by all labels).
	GroupBy []string
	// DedupWindow: an alert that fires again within this long after its
	// incident resolved reopens that incident instead of opening a new one
	// (default 10m).
	DedupWindow time.Duration
}

// Correlator applies alert events and people's actions to incidents.
type Correlator struct {
	store Store
	opts  Options
	log   *slog.Logger
	now   func() time.Time
}

// NewCorrelator returns a Correlator over store.
func NewCorrelator(store Store, opts Options, log *slog.Logger) *Correlator {
	if len(opts.GroupBy) == 0 {
		opts.GroupBy = []string{"alertname", "namespace"}
	}
	if opts.DedupWindow == 0 {
		opts.DedupWindow = 10 * time.Minute
	}
	return &Correlator{store: store, opts: opts, log: log.With("component", "correlator"), now: time.Now}
}

func validateAlert(a *typesv1.Alert) error {
	switch {
	case a == nil:
		return bus.Permanent(errors.New("event has no alert"))
	case a.GetFingerprint() == "":
		return bus.Permanent(errors.New("alert has no fingerprint"))
	case len(a.GetLabels()) == 0:
		return bus.Permanent(errors.New("alert has no labels"))
	}
	return nil
}

// AlertFired adds a firing alert to its group's incident, opening or
// reopening the incident as needed.
func (c *Correlator) AlertFired(ctx context.Context, tx pgx.Tx, e *eventsv1.AlertFired) error {
	a := e.GetAlert()
	if err := validateAlert(a); err != nil {
		return err
	}
	startsAt := a.GetStartsAt().AsTime()
	if stale, err := c.store.ResolutionKnown(ctx, tx, a.GetFingerprint(), startsAt); err != nil {
		return err
	} else if stale {
		c.log.DebugContext(ctx, "fired after its own resolution, ignored", "fingerprint", a.GetFingerprint())
		return nil
	}
	key, groupLabels := GroupKey(a.GetLabels(), c.opts.GroupBy)
	if err := c.store.LockGroup(ctx, tx, key); err != nil {
		return err
	}
	now := c.now().UTC()
	inc, err := c.store.ActiveIncident(ctx, tx, key, now.Add(-c.opts.DedupWindow))
	if err != nil {
		return err
	}
	opened, reason := false, ""
	if inc == nil {
		opened = true
		inc = &Record{
			Incident: &typesv1.Incident{
				Id:          bus.NewID(),
				GroupKey:    key,
				GroupLabels: groupLabels,
				Title:       Title(groupLabels, a.GetLabels()),
				Severity:    SeverityOf(a.GetLabels()),
				Status:      typesv1.IncidentStatus_INCIDENT_STATUS_OPEN,
				OpenedAt:    timestamppb.New(now),
				UpdatedAt:   timestamppb.New(now),
				App:         alertlabel.App(a.GetLabels()),
				Namespace:   a.GetLabels()["namespace"],
			},
			CorrelationID: e.GetMeta().GetCorrelationId(),
		}
		if err := c.store.InsertIncident(ctx, tx, inc); err != nil {
			return err
		}
	} else if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		reason = "reopened"
		inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_OPEN
		inc.ResolvedAt, inc.ResolvedBy = nil, ""
	}

	existing, err := c.store.Alert(ctx, tx, inc.GetId(), a.GetFingerprint())
	if err != nil {
		return err
	}
	alert := proto.Clone(a).(*typesv1.Alert)
	alert.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
	alert.EndsAt = nil
	rec := &AlertRecord{IncidentID: inc.GetId(), IncidentAlert: &typesv1.IncidentAlert{
		Alert: alert, Count: 1, FirstSeenAt: timestamppb.New(now), LastSeenAt: timestamppb.New(now),
	}}
	if existing == nil {
		if reason == "" && !opened {
			reason = "alert_added"
		}
	} else {
		rec.Count = existing.GetCount() + 1
		rec.FirstSeenAt = existing.GetFirstSeenAt()
		if existing.GetAlert().GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED && reason == "" {
			reason = "alert_refired"
		}
	}
	if err := c.store.UpsertAlert(ctx, tx, rec); err != nil {
		return err
	}
	if sev := SeverityOf(a.GetLabels()); sev > inc.GetSeverity() {
		inc.Severity = sev
		if reason == "" && !opened {
			reason = "severity_raised"
		}
	}
	if opened {
		return c.announce(ctx, tx, inc, e.GetMeta(), func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
			return &eventsv1.IncidentOpened{Meta: meta, Incident: snap}
		})
	}
	if reason == "" {
		// A repeat of an alert we have: counted, nothing to announce.
		return nil
	}
	inc.UpdatedAt = timestamppb.New(now)
	if err := c.store.UpdateIncident(ctx, tx, inc); err != nil {
		return err
	}
	return c.announce(ctx, tx, inc, e.GetMeta(), func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
		return &eventsv1.IncidentUpdated{Meta: meta, Incident: snap, Reason: reason}
	})
}

// AlertResolved marks an alert resolved and resolves its incident once no
// alert of it fires any more.
func (c *Correlator) AlertResolved(ctx context.Context, tx pgx.Tx, e *eventsv1.AlertResolved) error {
	a := e.GetAlert()
	if err := validateAlert(a); err != nil {
		return err
	}
	now := c.now().UTC()
	startsAt := a.GetStartsAt().AsTime()
	endsAt := now
	if a.GetEndsAt() != nil {
		endsAt = a.GetEndsAt().AsTime()
	}
	if err := c.store.RecordResolution(ctx, tx, a.GetFingerprint(), startsAt, endsAt); err != nil {
		return err
	}
	key, _ := GroupKey(a.GetLabels(), c.opts.GroupBy)
	if err := c.store.LockGroup(ctx, tx, key); err != nil {
		return err
	}
	inc, err := c.store.ActiveIncident(ctx, tx, key, time.Time{})
	if err != nil {
		return err
	}
	if inc == nil {
		c.log.DebugContext(ctx, "resolved alert has no open incident", "fingerprint", a.GetFingerprint())
		return nil
	}
	existing, err := c.store.Alert(ctx, tx, inc.GetId(), a.GetFingerprint())
	if err != nil {
		return err
	}
	if existing == nil || existing.GetAlert().GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
		return nil
	}
	if existing.GetAlert().GetStartsAt().AsTime().After(startsAt) {
		// Resolves an earlier firing of an alert that has fired again since.
		return nil
	}
	existing.Alert.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	existing.Alert.EndsAt = timestamppb.New(endsAt)
	existing.LastSeenAt = timestamppb.New(now)
	if err := c.store.UpsertAlert(ctx, tx, existing); err != nil {
		return err
	}
	firing, err := c.store.FiringCount(ctx, tx, inc.GetId())
	if err != nil {
		return err
	}
	inc.UpdatedAt = timestamppb.New(now)
	if firing > 0 {
		if err := c.store.UpdateIncident(ctx, tx, inc); err != nil {
			return err
		}
		return c.announce(ctx, tx, inc, e.GetMeta(), func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
			return &eventsv1.IncidentUpdated{Meta: meta, Incident: snap, Reason: "alert_resolved"}
		})
	}
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	inc.ResolvedAt = timestamppb.New(now)
	inc.ResolvedBy = sourceName(a.GetSource())
	if err := c.store.UpdateIncident(ctx, tx, inc); err != nil {
		return err
	}
	return c.announce(ctx, tx, inc, e.GetMeta(), func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
		return &eventsv1.IncidentResolved{Meta: meta, Incident: snap}
	})
}

// Acknowledge records that by is on the incident.
func (c *Correlator) Acknowledge(ctx context.Context, tx pgx.Tx, id, by string) (*typesv1.Incident, error) {
	inc, err := c.store.LockIncident(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	switch inc.GetStatus() {
	case typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED:
		return nil, fmt.Errorf("acknowledge %s: %w", id, ErrResolved)
	case typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED:
		return c.store.Snapshot(ctx, tx, id, 0)
	}
	now := timestamppb.New(c.now())
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
	inc.AcknowledgedAt, inc.AcknowledgedBy, inc.UpdatedAt = now, by, now
	if err := c.store.UpdateIncident(ctx, tx, inc); err != nil {
		return nil, err
	}
	if err := c.announce(ctx, tx, inc, nil, func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
		return &eventsv1.IncidentUpdated{Meta: meta, Incident: snap, Reason: "acknowledged"}
	}); err != nil {
		return nil, err
	}
	return c.store.Snapshot(ctx, tx, id, 0)
}

// Resolve resolves the incident by hand, whatever its alerts say.
func (c *Correlator) Resolve(ctx context.Context, tx pgx.Tx, id, by string) (*typesv1.Incident, error) {
	inc, err := c.store.LockIncident(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		return c.store.Snapshot(ctx, tx, id, 0)
	}
	now := timestamppb.New(c.now())
	inc.Status = typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
	inc.ResolvedAt, inc.ResolvedBy, inc.UpdatedAt = now, by, now
	if err := c.store.UpdateIncident(ctx, tx, inc); err != nil {
		return nil, err
	}
	if err := c.announce(ctx, tx, inc, nil, func(meta *eventsv1.EventMeta, snap *typesv1.Incident) bus.Event {
		return &eventsv1.IncidentResolved{Meta: meta, Incident: snap}
	}); err != nil {
		return nil, err
	}
	return c.store.Snapshot(ctx, tx, id, 0)
}

// announce writes the event describing inc's new state to the outbox, in
// the transaction that made the change.
func (c *Correlator) announce(ctx context.Context, tx pgx.Tx, inc *Record, cause *eventsv1.EventMeta,
	build func(*eventsv1.EventMeta, *typesv1.Incident) bus.Event,
) error {
	snap, err := c.store.Snapshot(ctx, tx, inc.GetId(), maxEventAlerts)
	if err != nil {
		return err
	}
	meta := bus.NewMeta(Producer, cause)
	meta.CorrelationId = inc.CorrelationID
	meta.App = inc.GetApp()
	return outbox.Add(ctx, tx, build(meta, snap))
}

func sourceName(s typesv1.AlertSource) string {
	switch s {
	case typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER:
		return "alertmanager"
	case typesv1.AlertSource_ALERT_SOURCE_UNSPECIFIED:
		return "source"
	}
	return s.String()
}
