package analysis_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/analysis"
)

const sentryIssueURL = "https://sentry.io/organizations/acme/issues/1170820242/"

// sentryOpened is incident.opened for the alert the gateway's Sentry
// source makes of issue 1170820242 of project payments (its labels and
// annotations as services/gateway/internal/source/sentry writes them),
// first seen at firstSeen, with the subject the monitor resolves from
// those labels: app payments in ns.
func sentryOpened(ns string, firstSeen, at time.Time) *eventsv1.IncidentOpened {
	labels := map[string]string{
		"alertname": "SentryIssue", "sentry_issue_id": "1170820242", "project": "payments", "app": "payments", "severity": "critical",
	}
	subj := subject.NewIndex([]subject.App{{Name: "payments", Team: "payments-team", Cluster: "main", Namespace: ns}}, nil).Resolve(labels)
	meta := bus.NewMeta("monitor", nil)
	meta.OccurredAt = timestamppb.New(at)
	return &eventsv1.IncidentOpened{Meta: meta, Incident: &typesv1.Incident{
		Id: bus.NewID(), Title: "SentryIssue", OpenedAt: timestamppb.New(at), Severity: typesv1.Severity_SEVERITY_CRITICAL,
		App: subj.GetApp(), Namespace: subj.GetNamespace(), Team: subj.GetTeam(), Subject: subj,
		GroupLabels: map[string]string{"alertname": "SentryIssue"},
		Alerts: []*typesv1.IncidentAlert{{Alert: &typesv1.Alert{
			Labels: labels, Source: typesv1.AlertSource_ALERT_SOURCE_SENTRY, Status: typesv1.AlertStatus_ALERT_STATUS_FIRING,
			StartsAt: timestamppb.New(firstSeen), GeneratorUrl: sentryIssueURL, ExternalUrl: "https://sentry.io",
			Annotations: map[string]string{
				"summary": "KeyError: 'currency'", "sentry_issue_url": sentryIssueURL,
				"sentry_first_seen": firstSeen.UTC().Format(time.RFC3339Nano), "sentry_release": "payments@2.0.0",
				"sentry_tag_pod": "payments-7d9c5b6f4-x2k8q",
			},
		}}},
	}}
}

func deployed(app string, revision int64, image string, at time.Time) *eventsv1.DeploySucceeded {
	meta := bus.NewMeta("deploy", nil)
	meta.OccurredAt = timestamppb.New(at)
	return &eventsv1.DeploySucceeded{Meta: meta, DeploymentId: bus.NewID(), App: app, Revision: revision, Image: image}
}

// A new Sentry issue of app payments first seen two minutes after Vigil
// deployed payments' revision 2 (its pods healthy: an exception is not a
// crash) is a rollback signal: analysis.completed proposes rolling back
// to revision 1, and the analysis cites the Sentry issue, with its link
// and release, and the deploy. The same alert with no deploy in the 30
// minutes before it proposes no rollback.
func TestSentryIssueAfterDeployProposesRollback(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	workloadtest.History(t, k.Clientset, ns, "payments", 2, true, "registry.example.com/payments:1", "registry.example.com/payments:2")
	ctx := t.Context()
	now := time.Now()

	for _, tc := range []struct {
		name     string
		deployAt time.Time
		rollback bool
	}{
		{"deployed 2 min before the issue", now.Add(-6 * time.Minute), true},
		{"deployed 50 min before the issue", now.Add(-54 * time.Minute), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := startOpts(t, analysis.Options{}, analysis.RulesOnly(), clusters{k.Clientset})
			d := deployed("payments", 2, "registry.example.com/payments:2", tc.deployAt)
			require.NoError(t, f.pub.Publish(ctx, d))
			// The deploy is in analysis' read model before the incident.
			require.Eventually(t, func() bool {
				info, err := f.js.Stream(ctx, "DEPLOYS")
				if err != nil {
					return false
				}
				c, err := info.Consumer(ctx, "analysis")
				if err != nil {
					return false
				}
				ci, err := c.Info(ctx)
				return err == nil && ci.NumPending == 0 && ci.NumAckPending == 0 && ci.Delivered.Stream > 0
			}, 30*time.Second, 50*time.Millisecond)
			e := sentryOpened(ns, now.Add(-4*time.Minute), now.Add(-3*time.Minute))
			require.NoError(t, f.pub.Publish(ctx, e))

			require.Eventually(t, func() bool { return len(completed(t, f.js)) == 1 }, 60*time.Second, 200*time.Millisecond)
			announced := completed(t, f.js)[0]
			require.Equal(t, e.GetIncident().GetId(), announced.GetIncidentId())
			list, err := f.svc.Server().ListAnalyses(ctx, &analysisv1.ListAnalysesRequest{IncidentId: e.GetIncident().GetId()})
			require.NoError(t, err)
			require.Len(t, list.GetAnalyses(), 1)
			a := list.GetAnalyses()[0]

			if !tc.rollback {
				assert.NotEqual(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, announced.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
				assert.NotEqual(t, "error-after-deploy", a.GetRule())
				return
			}
			assert.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, announced.GetProposal().GetAction(), "%s: %s", a.GetSummary(), a.GetRootCause())
			assert.Equal(t, int64(1), announced.GetProposal().GetRollback().GetRevision())
			assert.Equal(t, "Deployment", announced.GetProposal().GetTarget().GetKind())
			assert.Equal(t, "payments", announced.GetProposal().GetTarget().GetName())
			assert.Equal(t, ns, announced.GetProposal().GetTarget().GetNamespace())
			assert.Contains(t, announced.GetSummary(), "Sentry issue 1170820242 (KeyError: 'currency') was first seen 2m0s after revision 2 of deployment/payments was deployed (release payments@2.0.0)")
			assert.Equal(t, "error-after-deploy", a.GetRule())

			byID := map[string]*analysisv1.Evidence{}
			for _, ev := range a.GetEvidence() {
				byID[ev.GetId()] = ev
			}
			issue := byID["sentry/1170820242"]
			require.NotNil(t, issue, "the Sentry issue is evidence: %v", a.GetEvidence())
			assert.Equal(t, "sentry", issue.GetSource())
			assert.Contains(t, issue.GetSummary(), sentryIssueURL)
			assert.Contains(t, issue.GetSummary(), "release payments@2.0.0")
			dep := byID["deploy/"+d.GetDeploymentId()]
			require.NotNil(t, dep, "the deploy is evidence: %v", a.GetEvidence())
			assert.Contains(t, dep.GetSummary(), "revision 2")
		})
	}
}
