package app_test

import (
	"context"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/monitor"
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
// person asked (automatic repairs off): the time from the approval (the
// API call, as a chat button press ends in the same call) to the
// EXECUTION_STARTED step.
func BenchmarkAlertToVerifiedRepair(b *testing.B) {
	k := testkit.SharedKube(b)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(b, err)
	dsn := testkit.Postgres(b)
	bb := testkit.LockedNATS(b)
	conns := map[string]app.Conn{}
	for _, s := range app.Services {
		nc, js := bb.Conn(b, s)
		conns[s] = app.Conn{NATS: nc, JetStream: js}
	}
	_, admin := bb.Conn(b, "admin")
	a := runApp(b, app.Options{
		Services: app.Services, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken,
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
		Deploy:  deploy.Options{EncryptionKey: testKey(), DevCluster: &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig}},
	}, app.Deps{DatabaseURL: dsn, Bus: conns, Admin: admin, Logger: discardLogger(), Keys: testKeys(b)})
	conn, err := grpc.NewClient(a.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(b, err)
	b.Cleanup(func() { _ = conn.Close() })
	ctx := metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
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
		var r *repairv1.Repair
		require.Eventually(b, func() bool {
			resp, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{PageSize: 20})
			require.NoError(b, err)
			for _, x := range resp.GetRepairs() {
				if x.GetProposal().GetTarget().GetNamespace() == ns && slices.Contains(want, x.GetStatus()) {
					g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: x.GetId()})
					require.NoError(b, err)
					r = g.GetRepair()
					return true
				}
			}
			return false
		}, 2*time.Minute, 10*time.Millisecond, "the repair in %s", ns)
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

	var loop, floor, approval []time.Duration
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

	// Approval → execution started.
	guardrails(false)
	for range b.N {
		ns := scaledToZero()
		alert(ns)
		r := repairIn(ns, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL)
		_, err := repairs.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: r.GetId()})
		require.NoError(b, err)
		r = repairIn(ns, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, repairv1.RepairStatus_REPAIR_STATUS_FAILED)
		approval = append(approval, stepAt(r, repairv1.StepKind_STEP_KIND_EXECUTION_STARTED).Sub(stepAt(r, repairv1.StepKind_STEP_KIND_APPROVED)))
	}
	report := func(name string, ds []time.Duration) {
		slices.Sort(ds)
		b.ReportMetric(float64(ds[len(ds)/2].Milliseconds()), name+"-p50-ms")
		b.ReportMetric(float64(ds[min(len(ds)-1, len(ds)*99/100)].Milliseconds()), name+"-p99-ms")
	}
	report("loop", loop)
	report("floor", floor)
	report("approval", approval)
	b.Logf("alert → verified %v; control plane alone %v; approval → started %v", loop, floor, approval)
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
