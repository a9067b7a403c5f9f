// Package incident turns alerts into incidents: it deduplicates alerts by
// fingerprint, groups them by their group key, opens, updates and resolves
// incidents, and announces each change through the outbox.
package incident

import (
	"errors"
	"strings"

	"github.com/prometheus/common/model"

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
