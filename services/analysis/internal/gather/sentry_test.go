package gather_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
)

func sentryAlert(id string, start time.Time, ann map[string]string) *typesv1.IncidentAlert {
	return &typesv1.IncidentAlert{Alert: &typesv1.Alert{
		Labels:   map[string]string{"alertname": "SentryIssue", "sentry_issue_id": id, "project": "payments"},
		Source:   typesv1.AlertSource_ALERT_SOURCE_SENTRY,
		StartsAt: timestamppb.New(start), GeneratorUrl: "https://sentry.io/organizations/acme/issues/" + id + "/",
		Annotations: ann,
	}}
}

// The Sentry issues among an incident's alerts become evidence, once
// each, with their link, release and first sighting; other alerts and
// alerts of other sources naming an issue are not Sentry's.
func TestSentry(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 7, 0, 2, 37, 0, time.UTC)
	forged := sentryAlert("666", t0, nil)
	forged.Alert.Source = typesv1.AlertSource_ALERT_SOURCE_ALERTMANAGER
	alerts := []*typesv1.IncidentAlert{
		{Alert: &typesv1.Alert{Labels: map[string]string{"alertname": "HighLatency"}}},
		sentryAlert("1170820242", t0.Add(3*time.Minute), map[string]string{"summary": "KeyError: 'currency'", "sentry_release": "payments@2.0.0"}),
		sentryAlert("1170820242", t0.Add(time.Minute), map[string]string{"sentry_first_seen": t0.Format(time.RFC3339Nano), "sentry_issue_url": "https://sentry.io/organizations/acme/issues/1170820242/"}),
		sentryAlert("42", t0.Add(5*time.Minute), map[string]string{"summary": "TimeoutError"}),
		forged,
	}
	b := &evidence.Bundle{}
	gather.Sentry(alerts, b)
	require.Len(t, b.Errors, 2)
	assert.Equal(t, evidence.ErrorIssue{
		ID: "1170820242", Project: "payments", Title: "KeyError: 'currency'", URL: "https://sentry.io/organizations/acme/issues/1170820242/",
		Release: "payments@2.0.0", FirstSeen: t0, FirstSeenKnown: true,
	}, b.Errors[0])
	assert.Equal(t, evidence.ErrorIssue{
		ID: "42", Project: "payments", Title: "TimeoutError", URL: "https://sentry.io/organizations/acme/issues/42/",
		FirstSeen: t0.Add(5 * time.Minute),
	}, b.Errors[1], "without Sentry's first sighting, its first alert's")
	require.Len(t, b.Items, 2)
	assert.Equal(t, "sentry/1170820242", b.Items[0].ID)
	assert.Equal(t, "sentry", b.Items[0].Source)
	assert.Equal(t, "Sentry issue 1170820242 of project payments: KeyError: 'currency' (first seen 2026-12-07T00:02:37Z, release payments@2.0.0): https://sentry.io/organizations/acme/issues/1170820242/", b.Items[0].Summary)
	assert.Contains(t, b.Items[1].Summary, "first alerted 2026-12-07T00:07:37Z")

	// Bounded: an incident of many issues keeps the first few.
	var many []*typesv1.IncidentAlert
	for i := range 20 {
		many = append(many, sentryAlert(fmt.Sprint(i+1), t0, nil))
	}
	b = &evidence.Bundle{}
	gather.Sentry(many, b)
	assert.Len(t, b.Errors, 5)
}
