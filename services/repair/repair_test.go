package repair_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/repair"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// clusters gives the test control plane as the one cluster.
type clusters struct{ kc kubernetes.Interface }

func (c clusters) Repairer(context.Context, string) (kubernetes.Interface, error) { return c.kc, nil }

func (clusters) DefaultCluster(context.Context) (string, error) { return "main", nil }

type fixture struct {
	svc *repair.Service
	api repairv1.RepairServiceServer
	js  jetstream.JetStream
	pub *bus.Publisher
	// stop ends the service at once, its leases held (it also ends with
	// the test).
	stop func()
}

func start(t testing.TB, k *testkit.Kube, opts repair.Options) *fixture {
	t.Helper()
	_, js := testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(context.Background(), js, testkit.TestStreams))
	return replica(t, k, opts, testkit.Postgres(t), js)
}

// replica starts one repair service on dsn and js, with its own pool.
func replica(t testing.TB, k *testkit.Kube, opts repair.Options, dsn string, js jetstream.JetStream) *fixture {
	t.Helper()
	return replicaOn(t, k.Clientset, opts, dsn, js)
}

// replicaOn is replica acting on the cluster through kc.
func replicaOn(t testing.TB, kc kubernetes.Interface, opts repair.Options, dsn string, js jetstream.JetStream) *fixture {
	t.Helper()
	return replicaWith(t, clusters{kc}, opts, dsn, js)
}

// replicaWith is replica reaching its clusters through cl.
func replicaWith(t testing.TB, cl repair.Clusters, opts repair.Options, dsn string, js jetstream.JetStream) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	pool, err := db.Open(ctx, dsn, repair.Schema)
	require.NoError(t, err)
	pub := bus.NewPublisher(js, nil)
	svc, err := repair.New(ctx, opts, repair.Deps{
		Pool: pool, JetStream: js, Publisher: pub, Logger: testkit.Logger(t), Clusters: cl,
	})
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	stop := sync.OnceFunc(func() { cancel(); require.NoError(t, <-done); pool.Close() })
	t.Cleanup(stop)
	return &fixture{svc: svc, api: svc.Server(), js: js, pub: pub, stop: stop}
}

// as is a context of an authenticated caller.
func as(p auth.Principal) context.Context { return auth.WithPrincipal(context.Background(), p) }

var (
	admin    = auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin, AllTeams: true, Unowned: true}
	operator = auth.Principal{Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments"}}
	stranger = auth.Principal{Kind: auth.KindUser, Name: "walt", Role: auth.RoleOperator, Teams: []string{"web"}}
)

func deployment(ns, name, image string, replicas int32) *appsv1.Deployment {
	labels := map[string]string{"app.kubernetes.io/name": name}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: image}}},
			},
		},
	}
}

// healthy makes a Deployment and waits until it is available.
func healthy(t *testing.T, k *testkit.Kube, ns, name string, replicas int32) *appsv1.Deployment {
	t.Helper()
	deps := k.Clientset.AppsV1().Deployments(ns)
	d, err := deps.Create(t.Context(), deployment(ns, name, "registry.example.com/"+name+":1", replicas), metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		d, err = deps.Get(t.Context(), name, metav1.GetOptions{})
		return err == nil && d.Status.AvailableReplicas == replicas && d.Status.UpdatedReplicas == replicas
	}, time.Minute, 100*time.Millisecond, "%s rolls out", name)
	return d
}

// badRelease rolls a healthy Deployment out to a crash-looping revision 2.
func badRelease(t *testing.T, k *testkit.Kube, ns, name string) {
	t.Helper()
	deps := k.Clientset.AppsV1().Deployments(ns)
	d := healthy(t, k, ns, name, 2)
	// Serving long enough to be its last good revision.
	workloadtest.Settled(t, k.Clientset, ns, name, 1, 2)
	d.Spec.Template.Spec.Containers[0].Image = kubedev.CrashImageHost + "/" + name + ":2"
	_, err := deps.Update(t.Context(), d, metav1.UpdateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		pods, err := k.Clientset.CoreV1().Pods(ns).List(t.Context(), metav1.ListOptions{})
		require.NoError(t, err)
		for _, p := range pods.Items {
			for _, c := range p.Status.ContainerStatuses {
				if c.Image == kubedev.CrashImageHost+"/"+name+":2" && c.RestartCount > 0 {
					return true
				}
			}
		}
		return false
	}, time.Minute, 100*time.Millisecond, "revision 2 crash-loops")
}

// proposal is an analysis.completed proposing a on Deployment ns/name,
// for an incident about that Deployment (of app, when set) that the
// monitor announced first, as it does.
func (f *fixture) proposal(t testing.TB, ns, name, app string, a typesv1.RepairAction, risk typesv1.Risk, confidence float64) *eventsv1.AnalysisCompleted {
	t.Helper()
	e := proposal(ns, name, app, a, risk, confidence)
	f.opened(t, e.GetIncidentId(), &typesv1.Subject{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: name, App: app})
	return e
}

// opened announces incident id about subj, as the monitor does.
func (f *fixture) opened(t testing.TB, id string, subj *typesv1.Subject) {
	t.Helper()
	require.NoError(t, f.pub.Publish(context.Background(), &eventsv1.IncidentOpened{
		Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{Id: id, App: subj.GetApp(), Namespace: subj.GetNamespace(), Team: subj.GetTeam(), Subject: subj},
	}))
}

func proposal(ns, name, app string, a typesv1.RepairAction, risk typesv1.Risk, confidence float64) *eventsv1.AnalysisCompleted {
	p := &typesv1.RepairProposal{Action: a, Target: &typesv1.ResourceRef{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: name}}
	if a == typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT {
		p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{}}
	}
	return &eventsv1.AnalysisCompleted{
		Meta: bus.NewMeta("analysis", nil), AnalysisId: bus.NewID(), IncidentId: bus.NewID(),
		Summary: name + " is unhealthy", Confidence: confidence, Risk: risk, Engine: "rules", App: app, Proposal: p,
	}
}

// repairOf waits for the repair of analysis e to reach a status in want.
func (f *fixture) repairOf(t *testing.T, e *eventsv1.AnalysisCompleted, want ...repairv1.RepairStatus) *repairv1.Repair {
	t.Helper()
	var got *repairv1.Repair
	require.Eventually(t, func() bool {
		resp, err := f.api.ListRepairs(as(admin), &repairv1.ListRepairsRequest{IncidentId: e.GetIncidentId()})
		require.NoError(t, err)
		if len(resp.GetRepairs()) == 0 {
			return false
		}
		got = resp.GetRepairs()[0]
		for _, w := range want {
			if got.GetStatus() == w {
				return true
			}
		}
		return false
	}, 2*time.Minute, 100*time.Millisecond, "repair of %s reaches %v", e.GetIncidentId(), want)
	g, err := f.api.GetRepair(as(admin), &repairv1.GetRepairRequest{Id: got.GetId()})
	require.NoError(t, err)
	return g.GetRepair()
}

// events reads every event of subject on the REPAIRS stream.
func events[T proto.Message](t *testing.T, js jetstream.JetStream, subject string, newT func() T) []T {
	t.Helper()
	s, err := js.Stream(t.Context(), "REPAIRS")
	require.NoError(t, err)
	c, err := s.OrderedConsumer(t.Context(), jetstream.OrderedConsumerConfig{FilterSubjects: []string{subject}})
	require.NoError(t, err)
	var out []T
	for {
		m, err := c.Next(jetstream.FetchMaxWait(300 * time.Millisecond))
		if err != nil {
			return out
		}
		e := newT()
		require.NoError(t, proto.Unmarshal(m.Data(), e))
		out = append(out, e)
	}
}

func steps(r *repairv1.Repair) []repairv1.StepKind {
	var out []repairv1.StepKind
	for _, s := range r.GetSteps() {
		out = append(out, s.GetKind())
	}
	return out
}

// A bad release: the analysis proposes a rollback (MEDIUM risk), so a
// person is asked; approved, it rolls back, the rollout is verified, and
// the repair succeeds. A second answer is refused; so is one from
// another team.
func TestRollbackApprovedAndVerified(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	badRelease(t, k, ns, "checkout")
	// Its team answers for it; the app runs on another cluster, so this
	// Deployment is no app of Vigil's and the executor rolls it back.
	f.appOn(t, "elsewhere", "checkout", "payments", ns, false)

	e := f.proposal(t, ns, "checkout", "checkout", typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	e.Engine, e.Model, e.InputTokens, e.OutputTokens, e.CostUsd = "llm:anthropic", "claude-test", 1200, 300, 0.0042
	e.IncidentTitle = "KubePodCrashLooping in " + ns
	require.NoError(t, f.pub.Publish(t.Context(), e))
	require.NoError(t, f.pub.Publish(t.Context(), e), "a redelivery")
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	assert.Equal(t, repairv1.Decision_DECISION_NEEDS_APPROVAL, r.GetDecision())
	assert.Contains(t, r.GetDecisionReason(), "MEDIUM")
	require.NotNil(t, r.GetExpireTime())
	asks := events(t, f.js, bus.SubjectRepairApprovalRequested, func() *eventsv1.RepairApprovalRequested { return &eventsv1.RepairApprovalRequested{} })
	require.Len(t, asks, 1, "one repair for a redelivered analysis, one question")
	assert.Equal(t, r.GetId(), asks[0].GetRepairId())
	assert.Equal(t, "checkout is unhealthy", asks[0].GetSummary())
	assert.Equal(t, "claude-test", asks[0].GetModel(), "what the card shows of the analysis' cost")
	assert.Equal(t, int32(1200), asks[0].GetInputTokens())
	assert.InDelta(t, 0.0042, asks[0].GetCostUsd(), 1e-9)
	assert.Equal(t, "KubePodCrashLooping in "+ns, asks[0].GetIncidentTitle())

	require.Eventually(t, func() bool {
		_, err := f.api.GetRepair(as(operator), &repairv1.GetRepairRequest{Id: r.GetId()})
		return err == nil
	}, 30*time.Second, 50*time.Millisecond, "the repair belongs to checkout's team")
	_, err := f.api.ApproveRepair(as(stranger), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "another team: %v", err)

	_, err = f.api.ApproveRepair(as(operator), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	_, err = f.api.RejectRepair(as(operator), &repairv1.RejectRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "a second answer: %v", err)

	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "timeline: %v", r.GetSteps())
	assert.Equal(t, "user:olga", r.GetDecidedBy())
	assert.Equal(t, "api", r.GetDecidedVia())
	// The refused second answer lands wherever it came, execution goes
	// on regardless.
	got := steps(r)
	assert.Contains(t, got, repairv1.StepKind_STEP_KIND_REFUSED)
	assert.Equal(t, []repairv1.StepKind{
		repairv1.StepKind_STEP_KIND_PROPOSED, repairv1.StepKind_STEP_KIND_DECIDED, repairv1.StepKind_STEP_KIND_APPROVED,
		repairv1.StepKind_STEP_KIND_EXECUTION_STARTED, repairv1.StepKind_STEP_KIND_EXECUTED, repairv1.StepKind_STEP_KIND_VERIFIED,
	}, slices.DeleteFunc(got, func(k repairv1.StepKind) bool { return k == repairv1.StepKind_STEP_KIND_REFUSED }))

	d, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "checkout", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "registry.example.com/checkout:1", d.Spec.Template.Spec.Containers[0].Image, "rolled back to revision 1")
	ok := events(t, f.js, bus.SubjectRepairSucceeded, func() *eventsv1.RepairSucceeded { return &eventsv1.RepairSucceeded{} })
	require.Len(t, ok, 1)
	decided := events(t, f.js, bus.SubjectRepairDecided, func() *eventsv1.RepairDecided { return &eventsv1.RepairDecided{} })
	require.Len(t, decided, 1)
	assert.Equal(t, "approved", decided[0].GetOutcome())
	assert.Equal(t, "user:olga", decided[0].GetDecidedBy())
}

// app announces app (of team, in ns) as the deploy service does.
func (f *fixture) app(t *testing.T, name, team, ns string, auto bool) {
	t.Helper()
	f.appOn(t, "main", name, team, ns, auto)
}

// appOn is app on cluster.
func (f *fixture) appOn(t *testing.T, cluster, name, team, ns string, auto bool) {
	t.Helper()
	require.NoError(t, f.pub.Publish(t.Context(), &eventsv1.AppRegistered{
		Meta: bus.NewMeta("deploy", nil), App: name, Owner: team, Namespace: ns, Cluster: cluster, AutoRepair: auto,
	}))
}

// One of Vigil's apps — known from deploy's events by its cluster,
// namespace and name, though the analysis names no app — is changed only
// through the deploy service: a process that cannot reach it fails the
// approved rollback and leaves the Deployment alone.
func TestVigilAppNotPatchedBehindDeploy(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	badRelease(t, k, ns, "ledger")
	f.app(t, "ledger", "payments", ns, false)
	before, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "ledger", metav1.GetOptions{})
	require.NoError(t, err)

	e := proposal(ns, "ledger", "", typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	e.Proposal.Target.Cluster = "" // the default cluster, main
	// The incident as the monitor placed it: in the app's namespace.
	f.opened(t, e.GetIncidentId(), &typesv1.Subject{Cluster: "main", Namespace: ns, Kind: "Deployment", Name: "ledger", App: "ledger", Team: "payments"})
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	_, err = f.api.ApproveRepair(as(admin), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_FAILED, r.GetStatus(), "timeline: %v", r.GetSteps())
	last := r.GetSteps()[len(r.GetSteps())-1]
	assert.Contains(t, last.GetMessage(), "app ledger of Vigil's, changed only through the deploy service")
	assert.NotContains(t, steps(r), repairv1.StepKind_STEP_KIND_EXECUTED)

	after, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "ledger", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.Generation, after.Generation, "the Deployment was not changed")
	assert.Equal(t, before.Spec.Template.Spec.Containers[0].Image, after.Spec.Template.Spec.Containers[0].Image)
}

// setGuardrails sets g as an admin.
func (f *fixture) setGuardrails(t *testing.T, g *repairv1.Guardrails) {
	t.Helper()
	_, err := f.api.SetGuardrails(as(admin), &repairv1.SetGuardrailsRequest{Guardrails: g})
	require.NoError(t, err)
}

// A LOW-risk restart of an app whose repairs may run alone runs without
// asking and is verified; the 4th on one resource in the hour asks a
// person instead; with the kill switch on, a person is asked.
func TestAutomaticRestartAndItsLimits(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "api", 2)
	// An app Vigil deploys, with --auto-repair: its repairs may run alone.
	f.app(t, "api", "payments", ns, true)
	require.Eventually(t, func() bool {
		g, err := f.api.GetGuardrails(as(admin), &repairv1.GetGuardrailsRequest{Scope: "app/api"})
		require.NoError(t, err)
		return g.GetEffective().GetAuto()
	}, 30*time.Second, 50*time.Millisecond, "the app's --auto-repair, from deploy's events")

	restart := func() *eventsv1.AnalysisCompleted {
		e := f.proposal(t, ns, "api", "api", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
		require.NoError(t, f.pub.Publish(t.Context(), e))
		return e
	}
	for i := range 3 {
		r := f.repairOf(t, restart(), repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED,
			repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
		require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "restart %d: %s %v", i+1, r.GetDecisionReason(), r.GetSteps())
		assert.Equal(t, repairv1.Decision_DECISION_AUTO, r.GetDecision())
	}
	r := f.repairOf(t, restart(), repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, r.GetStatus(), "the 4th in the hour asks: %v", r.GetSteps())
	assert.Contains(t, r.GetDecisionReason(), "(limit 3)")

	healthy(t, k, ns, "worker", 2)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(true)})
	// Of the same app: automatic but for the kill switch.
	e := f.proposal(t, ns, "worker", "api", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r = f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, r.GetStatus())
	assert.Contains(t, r.GetDecisionReason(), "paused")
	assert.NotContains(t, r.GetDecisionReason(), "auto-repair not enabled", "only the kill switch stopped it")
}

// A deny-listed action is never executed, even approved; a proposal out
// of date (stale) is not acted on.
func TestDeniedNeverRuns(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "shop", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Deny: []typesv1.RepairAction{typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT}})
	e := f.proposal(t, ns, "shop", "", typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.95)
	e.Proposal.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 2}}
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
	assert.Equal(t, repairv1.Decision_DECISION_BLOCKED, r.GetDecision())
	_, err := f.api.ApproveRepair(as(admin), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	blocked := events(t, f.js, bus.SubjectRepairBlocked, func() *eventsv1.RepairBlocked { return &eventsv1.RepairBlocked{} })
	require.Len(t, blocked, 1)
	d, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "shop", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, int32(1), *d.Spec.Replicas, "nothing scaled")

	stale := f.proposal(t, ns, "shop", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.95)
	stale.Meta.OccurredAt = timestamppb.New(time.Now().Add(-time.Hour))
	require.NoError(t, f.pub.Publish(t.Context(), stale))
	fresh := f.proposal(t, ns, "shop", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.5)
	require.NoError(t, f.pub.Publish(t.Context(), fresh))
	f.repairOf(t, fresh, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	resp, err := f.api.ListRepairs(as(admin), &repairv1.ListRepairsRequest{IncidentId: stale.GetIncidentId()})
	require.NoError(t, err)
	assert.Empty(t, resp.GetRepairs(), "a stale analysis is not acted on")
}

// A repair whose verification fails is undone, escalated, and its
// resource cools down: the next proposal for it is blocked.
func TestFailedVerificationUndoneAndCooled(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "cart", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})
	// A memory limit raised on a Deployment whose new pods crash: the
	// verification sees the new pods restart.
	deps := k.Clientset.AppsV1().Deployments(ns)
	d, err := deps.Get(t.Context(), "cart", metav1.GetOptions{})
	require.NoError(t, err)
	d.Spec.Template.Spec.Containers[0].Image = kubedev.CrashImageHost + "/cart:2"
	_, err = deps.Update(t.Context(), d, metav1.UpdateOptions{})
	require.NoError(t, err)

	e := f.proposal(t, ns, "cart", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_FAILED, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_FAILED, r.GetStatus(), "%v", r.GetSteps())
	assert.Contains(t, steps(r), repairv1.StepKind_STEP_KIND_UNDONE)
	assert.Contains(t, steps(r), repairv1.StepKind_STEP_KIND_ESCALATED)
	failed := events(t, f.js, bus.SubjectRepairFailed, func() *eventsv1.RepairFailed { return &eventsv1.RepairFailed{} })
	require.Len(t, failed, 1)
	assert.True(t, failed[0].GetUndone())

	again := f.proposal(t, ns, "cart", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), again))
	r = f.repairOf(t, again, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
	assert.Contains(t, r.GetDecisionReason(), "cooling down after a failed repair")
}

// Two replicas on one stream and one database: each repair is executed
// once, and they share the counters: of four automatic restarts of one
// Deployment in an hour, three run and the fourth asks a person.
func TestTwoReplicasShareRepairsAndCounters(t *testing.T) {
	k := testkit.SharedKube(t)
	_, js := testkit.JetStream(t, testkit.NATS(t))
	require.NoError(t, bus.Provision(context.Background(), js, testkit.TestStreams))
	dsn := testkit.Postgres(t)
	a := replica(t, k, repair.Options{Workers: 2}, dsn, js)
	replica(t, k, repair.Options{Workers: 2}, dsn, js)
	ns := k.Namespace(t)
	healthy(t, k, ns, "search", 1)
	a.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true)})

	var es []*eventsv1.AnalysisCompleted
	for range 4 {
		e := a.proposal(t, ns, "search", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.9)
		es = append(es, e)
	}
	// All four at once: both replicas decide concurrently.
	require.NoError(t, a.pub.Publish(t.Context(), es[0], es[1], es[2], es[3]))
	var auto, asked int
	for _, e := range es {
		r := a.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED,
			repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
		if r.GetDecision() == repairv1.Decision_DECISION_NEEDS_APPROVAL {
			asked++
			continue
		}
		// Decided automatically. Two restarts planned on the same
		// generation before either ran: the later is superseded by the
		// earlier (blocked as it starts, nothing changed, no cooldown),
		// never failed.
		n := 0
		for _, k := range steps(r) {
			if k == repairv1.StepKind_STEP_KIND_EXECUTION_STARTED {
				n++
			}
		}
		assert.Equal(t, 1, n, "executed once: %v", r.GetSteps())
		if r.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_BLOCKED {
			assert.Contains(t, r.GetDecisionReason(), "superseded: target changed since the repair was planned")
		} else {
			assert.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "%v", r.GetSteps())
		}
		auto++
	}
	assert.Equal(t, 3, auto, "the per-resource limit, shared by both replicas")
	assert.Equal(t, 1, asked)
	started := events(t, js, bus.SubjectRepairRequested, func() *eventsv1.RepairRequested { return &eventsv1.RepairRequested{} })
	assert.Len(t, started, 3, "one repair.requested per executed repair")
}

// Scaling never goes below the minimum of healthy replicas (blocked, even
// approved); a dry run changes nothing and keeps the server's answer.
func TestScaleFloorAndDryRun(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "web", 2)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", Auto: proto.Bool(true), MinHealthyReplicas: proto.Int32(2)})

	down := f.proposal(t, ns, "web", "", typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.95)
	down.Proposal.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 1}}
	require.NoError(t, f.pub.Publish(t.Context(), down))
	r := f.repairOf(t, down, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, r.GetStatus(), "%v", r.GetSteps())
	_, err := f.api.ApproveRepair(as(admin), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err))

	f.setGuardrails(t, &repairv1.Guardrails{Scope: "namespace/main/" + ns, DryRun: proto.Bool(true)})
	restart := f.proposal(t, ns, "web", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.95)
	before, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	require.NoError(t, f.pub.Publish(t.Context(), restart))
	r = f.repairOf(t, restart, repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN, r.GetStatus(), "%v", r.GetSteps())
	assert.True(t, r.GetDryRun())
	assert.Contains(t, r.GetDryRunResult(), "kubectl.kubernetes.io/restartedAt", "the server's answer, as it would be")
	after, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.Generation, after.Generation, "nothing changed")
	assert.NotContains(t, after.Spec.Template.Annotations, "kubectl.kubernetes.io/restartedAt")
}

// fields are the field violations of an InvalidArgument.
func fields(t *testing.T, err error) []string {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	var out []string
	for _, d := range st.Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				out = append(out, v.GetField())
			}
		}
	}
	return out
}

// Bad guardrails are refused naming the request's fields.
func TestGuardrailsRefusedByField(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	_, err := f.api.SetGuardrails(as(admin), &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{
		Scope: "global", MinConfidence: proto.Float64(2), Cooldown: durationpb.New(-time.Minute),
	}})
	assert.ElementsMatch(t, []string{"guardrails.min_confidence", "guardrails.cooldown"}, fields(t, err))
	_, err = f.api.SetGuardrails(as(admin), &repairv1.SetGuardrailsRequest{
		Guardrails: &repairv1.Guardrails{Scope: "global"}, Clear: []string{"no_such_field"},
	})
	assert.Equal(t, []string{"clear[0]"}, fields(t, err))
	_, err = f.api.GetGuardrails(as(admin), &repairv1.GetGuardrailsRequest{Scope: "cluster/x"})
	assert.Equal(t, []string{"scope"}, fields(t, err))
}

// An approval nobody gives in time expires: the repair never runs, a
// late answer is refused, and the card can say so (repair.decided).
func TestApprovalExpires(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	ns := k.Namespace(t)
	healthy(t, k, ns, "mail", 1)
	f.setGuardrails(t, &repairv1.Guardrails{Scope: "global", ApprovalTtl: durationpb.New(time.Second)})
	e := f.proposal(t, ns, "mail", "", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	require.NoError(t, f.pub.Publish(t.Context(), e))
	r := f.repairOf(t, e, repairv1.RepairStatus_REPAIR_STATUS_EXPIRED)
	assert.Contains(t, steps(r), repairv1.StepKind_STEP_KIND_EXPIRED)
	_, err := f.api.ApproveRepair(as(admin), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	decided := events(t, f.js, bus.SubjectRepairDecided, func() *eventsv1.RepairDecided { return &eventsv1.RepairDecided{} })
	require.Len(t, decided, 1)
	assert.Equal(t, "expired", decided[0].GetOutcome())
	assert.NotContains(t, steps(r), repairv1.StepKind_STEP_KIND_EXECUTION_STARTED)
}

// A repair acts only on its incident's subject, as the repair service
// recorded it from the monitor, whatever the analysis says: a forged
// analysis.completed naming another team's namespace, or another workload
// of the subject's namespace, is blocked and changes nothing; the repair
// belongs to the subject's team, not to the app the analysis named, and
// another team cannot approve it.
func TestRepairOnlyOnItsSubject(t *testing.T) {
	k := testkit.SharedKube(t)
	f := start(t, k, repair.Options{})
	payments, shop := k.Namespace(t), k.Namespace(t)
	healthy(t, k, payments, "payments", 1)
	healthy(t, k, payments, "ledger", 1)
	healthy(t, k, shop, "shop", 1)
	f.app(t, "payments", "payments", payments, false)
	f.app(t, "shop", "web", shop, false)
	subj := &typesv1.Subject{Cluster: "main", Namespace: payments, Kind: "Deployment", Name: "payments", App: "payments", Team: "payments"}
	generation := func(ns, name string) int64 {
		d, err := k.Clientset.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		return d.Generation
	}
	before := map[string]int64{"shop": generation(shop, "shop"), "ledger": generation(payments, "ledger")}

	// Another namespace, with the other team's app named as the app.
	forged := proposal(shop, "shop", "shop", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.99)
	f.opened(t, forged.GetIncidentId(), subj)
	require.NoError(t, f.pub.Publish(t.Context(), forged))
	r := f.repairOf(t, forged, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL,
		repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, r.GetStatus())
	assert.Contains(t, r.GetDecisionReason(), "not the incident's subject")
	assert.Contains(t, r.GetDecisionReason(), shop)
	assert.Equal(t, "payments", r.GetApp(), "the subject's app, not the analysis' word")
	assert.Equal(t, "payments", r.GetTeam())
	_, err := f.api.ApproveRepair(as(admin), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.FailedPrecondition, status.Code(err), "not even an admin: %v", err)

	// Another workload of the subject's namespace.
	other := proposal(payments, "ledger", "payments", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_LOW, 0.99)
	f.opened(t, other.GetIncidentId(), subj)
	require.NoError(t, f.pub.Publish(t.Context(), other))
	r = f.repairOf(t, other, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED, r.GetStatus())
	assert.Contains(t, r.GetDecisionReason(), "Deployment "+payments+"/ledger is not the incident's subject")

	// The subject itself: pending, for its team only.
	own := proposal(payments, "payments", "shop", typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, typesv1.Risk_RISK_MEDIUM, 0.9)
	f.opened(t, own.GetIncidentId(), subj)
	require.NoError(t, f.pub.Publish(t.Context(), own))
	r = f.repairOf(t, own, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, r.GetStatus(), r.GetDecisionReason())
	assert.Equal(t, "payments", r.GetApp(), "the analysis named shop: not believed")
	_, err = f.api.ApproveRepair(as(stranger), &repairv1.ApproveRepairRequest{Id: r.GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "team web may not approve payments' repair: %v", err)
	g, err := f.api.GetRepair(as(operator), &repairv1.GetRepairRequest{Id: r.GetId()})
	require.NoError(t, err, "team payments sees its own repair")
	assert.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, g.GetRepair().GetStatus(), "the refused approval changed nothing")

	assert.Equal(t, before["shop"], generation(shop, "shop"), "the other team's Deployment is untouched")
	assert.Equal(t, before["ledger"], generation(payments, "ledger"), "the other workload is untouched")
}
