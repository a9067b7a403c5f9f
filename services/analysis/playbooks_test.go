package analysis_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/playbook"
)

// fixedAnalyzer proposes a rollback of the incident's workload at a fixed
// confidence, whatever the evidence: what the record does to it is what
// is measured. It cites the past incidents it was given.
type fixedAnalyzer struct{ confidence float64 }

func (f fixedAnalyzer) Analyze(_ context.Context, b *evidence.Bundle, _ string) (engine.Result, []*analysisv1.Attempt, error) {
	var cited []string
	for _, it := range b.Items {
		if strings.HasPrefix(it.ID, "history/") {
			cited = append(cited, it.ID)
		}
	}
	return engine.Result{
		Evidence: cited,
		Summary:  "rolled out a crashing release", Engine: "rules", Confidence: f.confidence, Risk: typesv1.Risk_RISK_MEDIUM,
		Proposal:  &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: b.Target},
		Reasoning: "fixed",
	}, nil, nil
}

// startFixed runs the service with fixedAnalyzer on a fake cluster that
// holds the deployments named.
func startFixed(t *testing.T, ns string, names ...string) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := db.Open(ctx, testkit.Postgres(t), analysis.Schema)
	require.NoError(t, err)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(ctx, js, testkit.TestStreams))
	pub := bus.NewPublisher(js, nil)
	kc := fake.NewClientset()
	for _, n := range names {
		_, err := kc.AppsV1().Deployments(ns).Create(ctx, deployment(ns, n, "registry.example.com/"+n+":2", 2), metav1.CreateOptions{})
		require.NoError(t, err)
	}
	svc, err := analysis.New(ctx, analysis.Options{}, analysis.Deps{
		Pool: pool, JetStream: js, Publisher: pub, Logger: testkit.Logger(t),
		Clusters: clusters{kc}, Analyzer: fixedAnalyzer{confidence: 0.6},
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); require.NoError(t, <-done); pool.Close() })
	return &fixture{svc: svc, js: js, pub: pub}
}

// analysed waits for the incident's (first) analysis.
func analysed(t *testing.T, f *fixture, incidentID string) *analysisv1.Analysis {
	t.Helper()
	var got *analysisv1.Analysis
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := f.svc.Server().ListAnalyses(t.Context(), &analysisv1.ListAnalysesRequest{IncidentId: incidentID})
		require.NoError(c, err)
		require.NotEmpty(c, list.GetAnalyses())
		got = list.GetAnalyses()[0]
	}, 30*time.Second, 100*time.Millisecond, "incident %s is analysed", incidentID)
	return got
}

func outcome(incidentID string, succeeded bool, at time.Time) bus.Event {
	meta := bus.NewMeta("repair", nil)
	meta.OccurredAt = timestamppb.New(at)
	p := &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT}
	if succeeded {
		return &eventsv1.RepairSucceeded{Meta: meta, RepairId: bus.NewID(), IncidentId: incidentID, Proposal: p, Verification: "available"}
	}
	return &eventsv1.RepairFailed{Meta: meta, RepairId: bus.NewID(), IncidentId: incidentID, Proposal: p, Reason: "still crashing"}
}

// Repairs' outcomes become the record of (signature, action): three
// rollbacks that worked and one that did not, each counted once even when
// delivered twice, outcomes of incidents never analysed ignored; the
// record lists with its confidence, and the next analysis of an incident
// of that kind carries the confidence the record supports, saying why.
// A record below the floor of evidence lists, but moves nothing.
func TestRepairOutcomesTeachPlaybooks(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	ns := "shop"
	f := startFixed(t, ns, "checkout", "cart")
	now := time.Now()

	var crashing []string
	for range 4 {
		e := opened(ns, "checkout", now)
		require.NoError(t, f.pub.Publish(ctx, e))
		crashing = append(crashing, e.GetIncident().GetId())
	}
	other := opened(ns, "cart", now)
	other.Incident.GroupLabels["alertname"] = "KubeDeploymentReplicasMismatch"
	require.NoError(t, f.pub.Publish(ctx, other))
	for _, id := range crashing {
		a := analysed(t, f, id)
		require.InDelta(t, 0.6, a.GetConfidence(), 1e-9, "no record yet: the engine's confidence")
		require.Equal(t, "fixed", a.GetReasoning())
	}
	analysed(t, f, other.GetIncident().GetId())

	last := now.Add(time.Minute)
	first := outcome(crashing[0], true, now)
	require.NoError(t, f.pub.Publish(ctx, first))
	// Delivered again past JetStream's duplicate window: the inbox
	// counts it once.
	again, err := bus.Encode(ctx, first)
	require.NoError(t, err)
	again.ID = bus.NewID()
	require.NoError(t, f.pub.PublishMessages(ctx, again))
	require.NoError(t, f.pub.Publish(ctx, outcome(crashing[1], true, now)))
	require.NoError(t, f.pub.Publish(ctx, outcome(bus.NewID(), true, now)), "an incident never analysed here")
	require.NoError(t, f.pub.Publish(ctx, outcome(crashing[2], true, last)))
	require.NoError(t, f.pub.Publish(ctx, outcome(other.GetIncident().GetId(), true, now)))
	// The last in the stream: once it counts, everything before it has.
	require.NoError(t, f.pub.Publish(ctx, outcome(crashing[3], false, now)))

	var books []*analysisv1.Playbook
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		list, err := f.svc.Server().ListPlaybooks(ctx, &analysisv1.ListPlaybooksRequest{})
		require.NoError(c, err)
		books = list.GetPlaybooks()
		require.Len(c, books, 2)
		require.Equal(c, int32(1), books[1].GetFailures())
	}, 30*time.Second, 100*time.Millisecond)
	policy := playbook.DefaultPolicy()

	crash := books[1]
	require.Equal(t, "KubePodCrashLooping/Deployment", crash.GetSignature())
	require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, crash.GetAction())
	require.Equal(t, int32(3), crash.GetSuccesses(), "the redelivered outcome counts once")
	require.InDelta(t, policy.Confidence(playbook.Record{Successes: 3, Failures: 1}), crash.GetConfidence(), 1e-9)
	require.WithinDuration(t, last, crash.GetLastOutcomeTime().AsTime(), time.Millisecond, "the latest outcome, not the last to arrive")

	few := books[0]
	require.Equal(t, "KubeDeploymentReplicasMismatch/Deployment", few.GetSignature())
	require.Equal(t, int32(1), few.GetSuccesses())
	require.Zero(t, few.GetFailures())
	require.Zero(t, few.GetConfidence(), "below the floor of evidence the record supports nothing yet")

	// The next incident of the same kind: the record moves the
	// confidence, here and in what repair is told.
	next := opened(ns, "checkout", time.Now())
	require.NoError(t, f.pub.Publish(ctx, next))
	a := analysed(t, f, next.GetIncident().GetId())
	want := policy.Adjust(0.6, playbook.Record{Successes: 3, Failures: 1})
	require.InDelta(t, want, a.GetConfidence(), 1e-9)
	require.Greater(t, a.GetConfidence(), 0.6)
	require.Contains(t, a.GetReasoning(), "playbook: 3/4 succeeded: confidence 0.60 -> ")
	// Its evidence has the past incidents of its kind, with their
	// outcomes; the other kind's is not among them.
	history := map[string]string{}
	for _, e := range a.GetEvidence() {
		require.Equal(t, "history", e.GetSource())
		history[strings.TrimPrefix(e.GetId(), "history/")] = e.GetSummary()
	}
	require.Len(t, history, 4)
	for i, id := range crashing {
		require.Contains(t, history[id], "of the same kind (KubePodCrashLooping/Deployment)")
		verdict := "repair rollback_deployment succeeded"
		if i == 3 {
			verdict = "repair rollback_deployment failed"
		}
		require.Contains(t, history[id], verdict)
	}
	// Announced through the outbox: the relay publishes it after the
	// commit that made the analysis listable.
	var announced *eventsv1.AnalysisCompleted
	require.Eventually(t, func() bool {
		for _, e := range completed(t, f.js) {
			if e.GetAnalysisId() == a.GetId() {
				announced = e
			}
		}
		return announced != nil
	}, 30*time.Second, 100*time.Millisecond, "analysis.completed of %s", a.GetId())
	require.InDelta(t, want, announced.GetConfidence(), 1e-9)

	// Below the floor: the engine's confidence stands, and the reasoning
	// says why.
	r, err := f.svc.Server().AnalyzeIncident(ctx, &analysisv1.AnalyzeIncidentRequest{IncidentId: other.GetIncident().GetId()})
	require.NoError(t, err)
	require.InDelta(t, 0.6, r.GetAnalysis().GetConfidence(), 1e-9)
	require.Contains(t, r.GetAnalysis().GetReasoning(), "playbook: 1/1 succeeded, fewer than 3 outcomes")
}
