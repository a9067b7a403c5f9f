package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/deploy"
)

// repairRig is Vigil with monitor, analysis, deploy and repair — in one
// process as `vigil up` runs them, or repair and deploy each in its own
// as `vigil serve` does — and the analysis service's place on the bus,
// where the test proposes repairs the rules would need a real outage for.
type repairRig struct {
	ctx      context.Context // the bootstrap admin's
	alerts   gatewayv1.AlertServiceClient
	apps     deployv1.AppServiceClient
	repairs  repairv1.RepairServiceClient
	clusters deployv1.ClusterServiceClient
	analyst  *bus.Publisher
	// monitor announces incidents, as the monitor service does.
	monitor *bus.Publisher
	kube    *testkit.Kube
}

func startRepairRig(t *testing.T, apart bool) *repairRig {
	t.Helper()
	k := testkit.SharedKube(t)
	kubeconfig, err := os.ReadFile(k.Kubeconfig)
	require.NoError(t, err)
	dsn := testkit.Postgres(t)
	b := testkit.LockedNATS(t)
	keys := testKeys(t)
	base := app.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", AdminToken: adminToken, Streams: testkit.TestStreams}
	depOpts := deploy.Options{
		EncryptionKey: testKey(), DevCluster: &deploy.Cluster{Name: "dev", Kubeconfig: kubeconfig},
		// Revision 2 of the rollback case never becomes ready: fail it
		// soon.
		RolloutTimeout: 15 * time.Second,
	}
	conn := func(s string) app.Conn {
		nc, js := b.Conn(t, s)
		return app.Conn{NATS: nc, JetStream: js}
	}
	var gw *app.App
	if !apart {
		opts := base
		opts.Services = []string{"monitor", "deploy", "analysis", "repair", "gateway"}
		opts.Deploy = depOpts
		conns := map[string]app.Conn{}
		for _, s := range opts.Services {
			conns[s] = conn(s)
		}
		_, admin := b.Conn(t, bus.UserAdmin)
		gw = runApp(t, opts, app.Deps{DatabaseURL: dsn, Bus: conns, Admin: admin, Logger: testkit.Logger(t), Keys: keys})
	} else {
		repairPub, repairKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		analysisPub, analysisKey, err := ed25519.GenerateKey(rand.Reader)
		require.NoError(t, err)
		opts := base
		opts.Services, opts.Deploy = []string{"deploy"}, depOpts
		c := conn("deploy")
		dep := runApp(t, opts, app.Deps{
			DatabaseURL: dsn, NATS: c.NATS, JetStream: c.JetStream, Logger: testkit.Logger(t), Keys: keys.Verifier(),
			Peers: map[string]ed25519.PublicKey{"repair": repairPub, "analysis": analysisPub},
		})
		opts = base
		opts.Services, opts.DeployAddr = []string{"repair"}, dep.GRPCAddr()
		c = conn("repair")
		rep := runApp(t, opts, app.Deps{
			DatabaseURL: dsn, NATS: c.NATS, JetStream: c.JetStream, Logger: testkit.Logger(t), Keys: keys.Verifier(), ServiceKey: repairKey,
		})
		opts = base
		opts.Services, opts.DeployAddr, opts.RepairAddr = []string{"monitor", "analysis", "gateway"}, dep.GRPCAddr(), rep.GRPCAddr()
		gw = runApp(t, opts, app.Deps{
			DatabaseURL: dsn, Logger: testkit.Logger(t), Keys: keys, ServiceKey: analysisKey,
			Bus: map[string]app.Conn{"monitor": conn("monitor"), "analysis": conn("analysis"), "gateway": conn("gateway")},
		})
	}
	cc, err := grpc.NewClient(gw.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = cc.Close() })
	_, analysisJS := b.Conn(t, "analysis")
	_, monitorJS := b.Conn(t, "monitor")
	return &repairRig{
		monitor: bus.NewPublisher(monitorJS, nil),
		ctx:     metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken),
		alerts:  gatewayv1.NewAlertServiceClient(cc), apps: deployv1.NewAppServiceClient(cc), repairs: repairv1.NewRepairServiceClient(cc),
		analyst: bus.NewPublisher(analysisJS, nil), kube: k, clusters: deployv1.NewClusterServiceClient(cc),
	}
}

// appName is a name of its own on the shared control plane.
func appName(prefix string) string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// onboard creates app (go, basic plan, image) and deploys it.
func (r *repairRig) onboard(t *testing.T, name, image string) {
	t.Helper()
	_, err := r.apps.CreateApp(r.ctx, &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: image, Owner: "payments",
	}})
	require.NoError(t, err)
	d := deployed(r.ctx, t, r.apps, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	// Serving long enough to be the last good revision.
	workloadtest.Settled(t, r.kube.Clientset, name, name, 0, 1)
}

// repair proposes p as an analysis naming no app would (MEDIUM risk: a
// person is asked), approves it as the admin, and returns it ended.
func (r *repairRig) repair(t *testing.T, p *typesv1.RepairProposal) *repairv1.Repair {
	t.Helper()
	e := &eventsv1.AnalysisCompleted{
		Meta: bus.NewMeta("analysis", nil), AnalysisId: bus.NewID(), IncidentId: bus.NewID(),
		Summary: p.GetTarget().GetName() + " is unhealthy", Confidence: 0.9, Risk: typesv1.Risk_RISK_MEDIUM, Engine: "rules",
		Proposal: p,
	}
	// The incident first, about the target, as the monitor announces it:
	// the repair service checks the proposal against it.
	tgt := p.GetTarget()
	require.NoError(t, r.monitor.Publish(t.Context(), &eventsv1.IncidentOpened{
		Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{
			Id: e.GetIncidentId(), Namespace: tgt.GetNamespace(),
			Subject: &typesv1.Subject{Cluster: tgt.GetCluster(), Namespace: tgt.GetNamespace(), Kind: tgt.GetKind(), Name: tgt.GetName()},
		},
	}))
	require.NoError(t, r.analyst.Publish(t.Context(), e))
	return r.approved(t, func(x *repairv1.Repair) bool { return x.GetIncidentId() == e.GetIncidentId() })
}

// approved waits for the repair that matches, asking a person, approves
// it as the admin, and returns it ended.
func (r *repairRig) approved(t *testing.T, match func(*repairv1.Repair) bool) *repairv1.Repair {
	t.Helper()
	get := func() *repairv1.Repair {
		resp, err := r.repairs.ListRepairs(r.ctx, &repairv1.ListRepairsRequest{})
		require.NoError(t, err)
		for _, x := range resp.GetRepairs() {
			if match(x) {
				g, err := r.repairs.GetRepair(r.ctx, &repairv1.GetRepairRequest{Id: x.GetId()})
				require.NoError(t, err)
				return g.GetRepair()
			}
		}
		return nil
	}
	var got *repairv1.Repair
	require.Eventually(t, func() bool {
		got = get()
		return got != nil && got.GetStatus() != repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED
	}, 2*time.Minute, 100*time.Millisecond, "a repair is proposed and decided")
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, got.GetStatus(), got.GetDecisionReason())
	_, err := r.repairs.ApproveRepair(r.ctx, &repairv1.ApproveRepairRequest{Id: got.GetId()})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		got = get()
		return got.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED || got.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_FAILED
	}, 2*time.Minute, 200*time.Millisecond, "the repair ends")
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED, got.GetStatus(), "timeline: %v", got.GetSteps())
	return got
}

// executed is what the repair's timeline says it did.
func executed(t *testing.T, r *repairv1.Repair) string {
	t.Helper()
	for _, s := range r.GetSteps() {
		if s.GetKind() == repairv1.StepKind_STEP_KIND_EXECUTED {
			return s.GetMessage()
		}
	}
	t.Fatalf("no execution in %v", r.GetSteps())
	return ""
}

// newest is the app's newest revision.
func (r *repairRig) newest(t *testing.T, name string) *deployv1.Deployment {
	t.Helper()
	h, err := r.apps.ListDeployments(r.ctx, &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	require.NotEmpty(t, h.GetDeployments())
	return h.GetDeployments()[0]
}

func (r *repairRig) live(t *testing.T, ns, name string) *appsv1.Deployment {
	t.Helper()
	d, err := r.kube.Clientset.AppsV1().Deployments(ns).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	return d
}

func memoryLimit(d *appsv1.Deployment) string {
	q := d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
	return q.String()
}

func target(cluster, ns, name string) *typesv1.ResourceRef {
	return &typesv1.ResourceRef{Cluster: cluster, Namespace: ns, Kind: "Deployment", Name: name}
}

// TestVigilAppsRepairedThroughDeploy: approved repairs of one of Vigil's
// apps — a rollback for an alert that names no app (the loop from the
// alert on), a scale, a raised memory limit — go through the deploy
// service: the cluster changes, the app's
// history has a revision by repair/<id>, and the next deployment of the
// app keeps what the repair did. A Deployment Vigil did not deploy is
// still patched directly. In one process (`vigil up`) and with repair in
// a process of its own (`vigil serve repair`, deploy over gRPC).
func TestVigilAppsRepairedThroughDeploy(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apart bool
	}{{"one process", false}, {"repair apart", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := startRepairRig(t, tc.apart)

			t.Run("rollback of an alert naming no app", func(t *testing.T) {
				name := appName("till-")
				r.onboard(t, name, "registry.example.com/till:1")
				d := deployed(r.ctx, t, r.apps, name, kubedev.CrashImageHost+"/till:2")
				require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "revision 2 crash-loops")

				// As kube-prometheus sends it: no app label.
				_, err := r.alerts.IngestAlerts(r.ctx, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
					Labels:   map[string]string{"alertname": "KubePodCrashLooping", "namespace": name, "deployment": name, "severity": "critical"},
					StartsAt: timestamppb.Now(),
				}}})
				require.NoError(t, err)
				rep := r.approved(t, func(x *repairv1.Repair) bool { return x.GetProposal().GetTarget().GetNamespace() == name })
				require.Equal(t, typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, rep.GetProposal().GetAction(), rep.GetSummary())
				last := r.newest(t, name)
				assert.Equal(t, "repair/"+rep.GetId(), last.GetRequestedBy())
				assert.Equal(t, deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK, last.GetKind())
				assert.Equal(t, int64(3), last.GetRevision())
				assert.Contains(t, executed(t, rep), "through the deploy service: revision 3 (deployment "+last.GetId()+")")
				assert.Equal(t, "registry.example.com/till:1", r.live(t, name, name).Spec.Template.Spec.Containers[0].Image)

				d = deployed(r.ctx, t, r.apps, name, "")
				require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
				assert.Equal(t, "registry.example.com/till:1", r.live(t, name, name).Spec.Template.Spec.Containers[0].Image,
					"the next deploy does not bring the broken image back")
			})

			t.Run("scale", func(t *testing.T) {
				name := appName("cart-")
				r.onboard(t, name, "registry.example.com/cart:1")
				require.Equal(t, int32(1), *r.live(t, name, name).Spec.Replicas)

				rep := r.repair(t, &typesv1.RepairProposal{
					Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, Target: target("dev", name, name),
					Params: &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 3}},
				})
				last := r.newest(t, name)
				assert.Equal(t, "repair/"+rep.GetId(), last.GetRequestedBy())
				assert.Equal(t, int32(3), last.GetReplicas())
				assert.Contains(t, executed(t, rep), "scaled to 3 replicas through the deploy service: revision 2")
				assert.Equal(t, int32(3), *r.live(t, name, name).Spec.Replicas)
				got, err := r.apps.GetApp(r.ctx, &deployv1.GetAppRequest{Name: name})
				require.NoError(t, err)
				assert.Equal(t, int32(3), got.GetApp().GetReplicas(), "the app's spec")

				d := deployed(r.ctx, t, r.apps, name, "registry.example.com/cart:2")
				require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
				live := r.live(t, name, name)
				assert.Equal(t, int32(3), *live.Spec.Replicas, "the next deploy keeps the repaired replicas")
				assert.Equal(t, "registry.example.com/cart:2", live.Spec.Template.Spec.Containers[0].Image)
			})

			t.Run("memory limit", func(t *testing.T) {
				name := appName("mill-")
				r.onboard(t, name, "registry.example.com/mill:1")
				require.Equal(t, "512Mi", memoryLimit(r.live(t, name, name)), "the basic plan's")

				rep := r.repair(t, &typesv1.RepairProposal{
					Action: typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, Target: target("dev", name, name),
					Params: &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 << 20}},
				})
				last := r.newest(t, name)
				assert.Equal(t, "repair/"+rep.GetId(), last.GetRequestedBy())
				assert.Equal(t, int64(768<<20), last.GetMemoryLimitBytes())
				assert.Contains(t, executed(t, rep), `memory limit of app `+name+` (container "app") set to 768Mi through the deploy service: revision 2`)
				assert.Equal(t, "768Mi", memoryLimit(r.live(t, name, name)))

				d := deployed(r.ctx, t, r.apps, name, "registry.example.com/mill:2")
				require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
				live := r.live(t, name, name)
				assert.Equal(t, "768Mi", memoryLimit(live), "the next deploy keeps the repaired memory limit")
				assert.Equal(t, "registry.example.com/mill:2", live.Spec.Template.Spec.Containers[0].Image)
			})

			t.Run("a Deployment Vigil did not deploy", func(t *testing.T) {
				ns := r.kube.Namespace(t)
				replicas := int32(1)
				labels := map[string]string{"app": "mailer"}
				_, err := r.kube.Clientset.AppsV1().Deployments(ns).Create(t.Context(), &appsv1.Deployment{
					ObjectMeta: metav1.ObjectMeta{Name: "mailer"},
					Spec: appsv1.DeploymentSpec{
						Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: labels},
						Template: corev1.PodTemplateSpec{
							ObjectMeta: metav1.ObjectMeta{Labels: labels},
							Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.example.com/mailer:1"}}},
						},
					},
				}, metav1.CreateOptions{})
				require.NoError(t, err)
				require.Eventually(t, func() bool {
					return r.live(t, ns, "mailer").Status.AvailableReplicas == 1
				}, time.Minute, 100*time.Millisecond, "mailer is available")
				// Not an app's namespace: an admin maps it to its team and
				// lets repairs act there (least privilege, ADR 10).
				_, err = r.clusters.MapNamespace(r.ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{
					Cluster: "dev", Namespace: ns, Team: "payments", AllowRepairs: true,
				}})
				require.NoError(t, err)

				rep := r.repair(t, &typesv1.RepairProposal{
					Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, Target: target("dev", ns, "mailer"),
					Params: &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 2}},
				})
				assert.Contains(t, executed(t, rep), "scaled Deployment "+ns+"/mailer from 1 to 2 replicas")
				assert.NotContains(t, executed(t, rep), "deploy service")
				assert.Equal(t, int32(2), *r.live(t, ns, "mailer").Spec.Replicas)
			})
		})
	}
}
