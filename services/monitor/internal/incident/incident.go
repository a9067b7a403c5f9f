// Package incident turns alerts into incidents: it deduplicates alerts by
// fingerprint, groups them by their group key, opens, updates and resolves
// incidents, and announces the changes through the outbox, coalesced (ADR
// 0004). It works a batch at a time: one lock per group, counters kept by
// deltas, a constant number of statements per batch, so the cost per alert
// does not grow with its incident.
package incident

import (
	"errors"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Errors callers map to API codes.
var (
	ErrNotFound = errors.New("incident not found")
	// ErrResolved means the incident is resolved and cannot change state.
	ErrResolved = errors.New("incident is resolved")
)

// SeverityOf maps an alert's "severity" label to a Severity.
func SeverityOf(labels map[string]string) typesv1.Severity {
	switch strings.ToLower(labels["severity"]) {
	case "critical", "page", "error", "high", "fatal":
		return typesv1.Severity_SEVERITY_CRITICAL
	case "warning", "warn", "medium":
		return typesv1.Severity_SEVERITY_WARNING
	case "info", "informational", "low", "none":
		return typesv1.Severity_SEVERITY_INFO
	}
	return typesv1.Severity_SEVERITY_UNSPECIFIED
}

// Title names an incident after the alerts of its group: the alert name and
// where it fires.
func Title(groupLabels, alertLabels map[string]string) string {
	name := groupLabels[model.AlertNameLabel]
	if name == "" {
		name = alertLabels[model.AlertNameLabel]
	}
	if name == "" {
		name = "alert"
	}
	if ns := alertLabels["namespace"]; ns != "" {
		return name + " in " + ns
	}
	return name
}

// Reasons an incident changed, in IncidentUpdated.reason and
// IncidentChange.reasons.
const (
	ReasonAlertAdded     = "alert_added"
	ReasonAlertRefired   = "alert_refired"
	ReasonAlertResolved  = "alert_resolved"
	ReasonSeverityRaised = "severity_raised"
	ReasonReopened       = "reopened"
	ReasonAcknowledged   = "acknowledged"
	ReasonPriorityRaised = "priority_raised"
	ReasonPrioritySet    = "priority_set"
)

// maxEventAlerts bounds the alerts an event carries (opened's alerts, each
// sample of a change): no event grows with its incident.
const maxEventAlerts = 10

// Record is an incident as stored: the API shape (with its counters) plus
// what only monitor needs.
type Record struct {
	*typesv1.Incident
	CorrelationID string
	// LastEventAt is when its last incident.* event was made.
	LastEventAt time.Time
	// Pending is the change not yet announced, due at UpdateDueAt.
	Pending     *eventsv1.IncidentChange
	UpdateDueAt *time.Time
	// PriorityBy is who set the priority by hand ("": the rules did).
	PriorityBy string
	// FlapUntil is when a flapping incident settles unless its alerts
	// change again (flap.go).
	FlapUntil *time.Time
}

// AlertRecord is an alert as stored: in an incident, or silenced (no
// incident).
type AlertRecord struct {
	IncidentID string
	*typesv1.IncidentAlert
	// InhibitKey is the key an inhibited alert is held under (inhibit.Match).
	InhibitKey string
}

// AlertRef names an alert of an incident.
type AlertRef struct {
	IncidentID  string
	Fingerprint string
}

// Instance is one firing of an alert: an alert that resolves and fires
// again is a new instance.
type Instance struct {
	Fingerprint string
	StartsAt    time.Time
}

// Resolution records that an instance resolved.
type Resolution struct {
	Instance
	EndsAt time.Time
}
