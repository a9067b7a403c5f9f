package app_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vigil-ops/vigil/pkg/approval"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

// BenchmarkAlertToVerifiedRepair measures the closed loop on the dev
// control plane, in one `vigil up`-shaped process: an alert received by
// the gateway → incident → analysis (rules, gatherers included) →
// guardrails (automatic) → execution → the rollout verified. Each run is
// a Deployment scaled to zero by mistake in a namespace of its own; the
// analysis proposes scaling it back to 1, which runs without asking.
// "Done" is the repair's VERIFIED step (repair.succeeded follows in the
// same transaction). The yardstick, measured in the same run, is the
// floor of any such repair: the control plane itself scaling a
// Deployment from 0 to 1 until it is available, asked directly.
//
// A second measure, approval → execution started, runs the same with a
// person asked (automatic repairs off): from a linked operator's press of
// Approve on the card in (fake) Telegram, delivered by webhook, to the
// EXECUTION_STARTED step: the gateway's checks, answerCallbackQuery, the
// answer on the bus, the repair service applying it and a worker starting.
func BenchmarkAlertToVerifiedRepair(b *testing.B) {
	k := testkit.SharedKube(b)
	// Telegram by webhook, as a person's press arrives.
	l := startLoop(b, true)
	ctx := l.ctx
	conn := l.conn
	repairs := repairv1.NewRepairServiceClient(conn)
	alerts := gatewayv1.NewAlertServiceClient(conn)
	guardrails := func(auto bool) {
		_, err := repairs.SetGuardrails(ctx, &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{
			Scope: "global", Auto: proto.Bool(auto), MaxAutoRisk: typesv1.Risk_RISK_MEDIUM, MinConfidence: proto.Float64(0),
			MaxAutoPerHour: proto.Int32(1000), MaxAutoPerResource: proto.Int32(1000),
		}})
		require.NoError(b, err)
	}

	// scaledToZero makes the run's Deployment, at zero replicas.
	scaledToZero := func() string {
		ns := k.Namespace(b)
		d := deployment0(ns)
		_, err := k.Clientset.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{})
		require.NoError(b, err)
		require.Eventually(b, func() bool {
			d, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			return err == nil && d.Status.ObservedGeneration >= 1
		}, time.Minute, 10*time.Millisecond)
		return ns
	}
	// repairIn waits for the repair of ns's Deployment to reach one of want.
	repairIn := func(ns string, want ...repairv1.RepairStatus) *repairv1.Repair {
		var (
			r    *repairv1.Repair
			seen []string
		)
		require.Eventually(b, func() bool {
			resp, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{PageSize: 20})
			require.NoError(b, err)
			for _, x := range resp.GetRepairs() {
				if x.GetProposal().GetTarget().GetNamespace() == ns {
					seen = append(seen[:0], x.GetStatus().String()+": "+x.GetDecisionReason())
				}
				if x.GetProposal().GetTarget().GetNamespace() == ns && slices.Contains(want, x.GetStatus()) {
					g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: x.GetId()})
					require.NoError(b, err)
					r = g.GetRepair()
					return true
				}
			}
			return false
		}, 2*time.Minute, 10*time.Millisecond, "the repair in %s: %v", ns, &seen)
		return r
	}
	alert := func(ns string) time.Time {
		at := time.Now()
		_, err := alerts.IngestAlerts(ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
			Labels:   map[string]string{"alertname": "ProbeFailed", "namespace": ns, "deployment": "web"},
			StartsAt: timestamppb.Now(),
		}}})
		require.NoError(b, err)
		return at
	}
	stepAt := func(r *repairv1.Repair, kind repairv1.StepKind) time.Time {
		for _, s := range r.GetSteps() {
			if s.GetKind() == kind {
				return s.GetTime().AsTime()
			}
		}
		b.Fatalf("repair %s has no %s step: %v", r.GetId(), kind, r.GetSteps())
		return time.Time{}
	}

	var loop, floor, toStart []time.Duration
	guardrails(true)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		ns := scaledToZero()
		b.StartTimer()
		at := alert(ns)
		r := repairIn(ns, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED,
			repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, repairv1.RepairStatus_REPAIR_STATUS_BLOCKED)
		b.StopTimer()
		require.Equal(b, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, r.GetStatus(), "%s %v", r.GetDecisionReason(), r.GetSteps())
		loop = append(loop, stepAt(r, repairv1.StepKind_STEP_KIND_VERIFIED).Sub(at))

		// The yardstick: the control plane alone, 0 → 1 → available,
		// seen through a watch (polling would meet the client's rate
		// limit, not the control plane's speed).
		ns = scaledToZero()
		w, err := k.Clientset.AppsV1().Deployments(ns).Watch(ctx, metav1.ListOptions{FieldSelector: "metadata.name=web"})
		require.NoError(b, err)
		start := time.Now()
		_, err = k.Clientset.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":1}}`), metav1.PatchOptions{})
		require.NoError(b, err)
		for ev := range w.ResultChan() {
			if d, ok := ev.Object.(*appsv1.Deployment); ok && d.Status.AvailableReplicas == 1 {
				break
			}
		}
		w.Stop()
		floor = append(floor, time.Since(start))
		b.StartTimer()
	}
	b.StopTimer()

	// Approval → execution started: the press of Approve in Telegram (the
	// operator's, linked) to the EXECUTION_STARTED step.
	guardrails(false)
	for range b.N {
		ns := scaledToZero()
		alert(ns)
		r := repairIn(ns, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
		card := l.telegramCard(b, r.GetId())
		pressed := time.Now()
		l.telegram.Press(b, card, approval.CallbackData(approval.Approve, r.GetId()), faketelegram.User{ID: olgaTelegram, FirstName: "Olga"})
		r = repairIn(ns, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
		toStart = append(toStart, stepAt(r, repairv1.StepKind_STEP_KIND_EXECUTION_STARTED).Sub(pressed))
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Milliseconds()), name+"-p99-ms")
	}
	report("loop", loop)
	report("floor", floor)
	report("approval", toStart)
	b.Logf("alert → verified %v; control plane alone %v; press → started %v", loop, floor, toStart)
}

// deployment0 is a Deployment "web" scaled to zero.
func deployment0(ns string) *appsv1.Deployment {
	replicas := int32(0)
	labels := map[string]string{"app": "web"}
	return &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/web:1"}}},
			},
		},
	}
}
