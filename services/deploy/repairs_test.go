package deploy_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/vigil-ops/vigil/pkg/bus"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/workload"
	"github.com/vigil-ops/vigil/pkg/workload/workloadtest"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/deploy/internal/deployer"
)

// live is the app's Deployment's replica count and memory limit.
func live(t *testing.T, k *testkit.Kube, name string) (int32, string) {
	t.Helper()
	d, err := k.Clientset.AppsV1().Deployments(name).Get(t.Context(), name, metav1.GetOptions{})
	require.NoError(t, err)
	lim := d.Spec.Template.Spec.Containers[0].Resources.Limits[corev1.ResourceMemory]
	return *d.Spec.Replicas, lim.String()
}

func (f *fixture) history(t *testing.T, name string) []*deployv1.Deployment {
	t.Helper()
	h, err := f.apps.ListDeployments(t.Context(), &deployv1.ListDeploymentsRequest{App: name})
	require.NoError(t, err)
	return h.GetDeployments()
}

// A repair scales an app and raises its memory limit through the
// deployer: each a revision requested by repair/<id>, kept in the app's
// spec, so the next deployment (a new image) keeps them; asked again, the
// same repair finds its deployment and changes nothing more. A person's
// explicit new value wins over a repaired one.
func TestRepairChangesKeptByNextDeploy(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("cart-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/cart:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	replicas, memory := live(t, k, name)
	require.Equal(t, int32(1), replicas, "the basic plan's")
	require.Equal(t, "512Mi", memory, "the basic plan's")

	scaleID := bus.NewID()
	scaled, err := f.svc.ScaleForRepair(t.Context(), name, scaleID, 3)
	require.NoError(t, err)
	assert.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, scaled.GetStatus())
	assert.Equal(t, int64(2), scaled.GetRevision())
	assert.Equal(t, "repair/"+scaleID, scaled.GetRequestedBy())
	assert.Equal(t, int32(3), scaled.GetReplicas())
	replicas, _ = live(t, k, name)
	assert.Equal(t, int32(3), replicas)

	again, err := f.svc.ScaleForRepair(t.Context(), name, scaleID, 5)
	require.NoError(t, err, "the same repair asking again")
	assert.Equal(t, scaled.GetId(), again.GetId(), "finds the deployment it made")
	assert.Len(t, f.history(t, name), 2, "no second revision")
	replicas, _ = live(t, k, name)
	assert.Equal(t, int32(3), replicas, "not scaled again")

	memID := bus.NewID()
	raised, err := f.svc.SetMemoryLimitForRepair(t.Context(), name, memID, "app", 768<<20)
	require.NoError(t, err)
	assert.Equal(t, int64(3), raised.GetRevision())
	assert.Equal(t, "repair/"+memID, raised.GetRequestedBy())
	assert.Equal(t, int64(768<<20), raised.GetMemoryLimitBytes())
	assert.Equal(t, int32(3), raised.GetReplicas(), "the scale is kept")
	replicas, memory = live(t, k, name)
	assert.Equal(t, int32(3), replicas)
	assert.Equal(t, "768Mi", memory)

	got, err := f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: name})
	require.NoError(t, err)
	assert.Equal(t, int32(3), got.GetApp().GetReplicas(), "the app's spec has the repair")
	assert.Equal(t, int64(768<<20), got.GetApp().GetMemoryLimitBytes())

	// The next release keeps both.
	d = f.deploy(t, name, "registry.example.com/cart:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	replicas, memory = live(t, k, name)
	assert.Equal(t, int32(3), replicas, "the repaired replicas survive a deploy")
	assert.Equal(t, "768Mi", memory, "the repaired memory limit survives a deploy")
	assert.Equal(t, "registry.example.com/cart:2", liveImage(t, k.Clientset, name, name))

	// A person's explicit value wins.
	_, err = f.apps.UpdateApp(t.Context(), &deployv1.UpdateAppRequest{
		App:        &deployv1.App{Name: name, Replicas: 2, MemoryLimitBytes: 0},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"replicas", "memory_limit_bytes"}},
	})
	require.NoError(t, err)
	d = f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	replicas, memory = live(t, k, name)
	assert.Equal(t, int32(2), replicas)
	assert.Equal(t, "512Mi", memory, "back to the plan's")
}

// What a repair may not ask: nothing is recorded, nothing changes.
func TestRepairChangeRefused(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("till-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/till:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())

	for _, tc := range []struct {
		name  string
		call  func() error
		field string
	}{
		{"scale to zero", func() error { _, err := f.svc.ScaleForRepair(t.Context(), name, bus.NewID(), 0); return err }, "replicas"},
		{"above the app's bound", func() error { _, err := f.svc.ScaleForRepair(t.Context(), name, bus.NewID(), 101); return err }, "replicas"},
		{"another container", func() error {
			_, err := f.svc.SetMemoryLimitForRepair(t.Context(), name, bus.NewID(), "sidecar", 1<<30)
			return err
		}, "container"},
		{"no limit", func() error {
			_, err := f.svc.SetMemoryLimitForRepair(t.Context(), name, bus.NewID(), "", 0)
			return err
		}, "limit_bytes"},
		{"no repair id", func() error { _, err := f.svc.ScaleForRepair(t.Context(), name, "", 2); return err }, "repair_id"},
	} {
		err := tc.call()
		var invalid *server.BadRequestError
		require.ErrorAs(t, err, &invalid, tc.name)
		require.Len(t, invalid.Violations, 1, tc.name)
		assert.Equal(t, tc.field, invalid.Violations[0].Field, tc.name)
	}
	_, err = f.svc.ScaleForRepair(t.Context(), "no-such-app", bus.NewID(), 2)
	require.ErrorIs(t, err, deploy.ErrNotAnApp)

	assert.Len(t, f.history(t, name), 1, "nothing recorded")
	replicas, memory := live(t, k, name)
	assert.Equal(t, int32(1), replicas, "nothing changed")
	assert.Equal(t, "512Mi", memory)
	got, err := f.apps.GetApp(t.Context(), &deployv1.GetAppRequest{Name: name})
	require.NoError(t, err)
	assert.Zero(t, got.GetApp().GetReplicas())
	assert.Zero(t, got.GetApp().GetMemoryLimitBytes())
}

// An app whose plan autoscales: a repair's replica count is the
// autoscaler's minimum (its maximum follows the plan's factor), kept by
// the next deployment.
func TestRepairScaleOfAutoscaledApp(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("hpa-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "advanced", Image: "registry.example.com/hpa:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())

	bounds := func() (int32, int32) {
		t.Helper()
		h, err := k.Clientset.AutoscalingV2().HorizontalPodAutoscalers(name).Get(t.Context(), name, metav1.GetOptions{})
		require.NoError(t, err)
		return *h.Spec.MinReplicas, h.Spec.MaxReplicas
	}
	lo, hi := bounds()
	require.Equal(t, []int32{3, 6}, []int32{lo, hi}, "the advanced plan's")

	scaled, err := f.svc.ScaleForRepair(t.Context(), name, bus.NewID(), 4)
	require.NoError(t, err)
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, scaled.GetStatus(), scaled.GetReason())
	lo, hi = bounds()
	assert.Equal(t, []int32{4, 8}, []int32{lo, hi})

	d = f.deploy(t, name, "registry.example.com/hpa:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	lo, hi = bounds()
	assert.Equal(t, []int32{4, 8}, []int32{lo, hi}, "kept by the next deploy")
}

// Revision 1 served, then two releases crash-looped: a repair's rollback
// returns the app to revision 1, the revision its Deployment's last good
// ReplicaSet ran (pkg/workload), which is what the analysis proposes and
// the repair executor checks; not to revision 2, the one before the
// current, which crashes too. A person's rollback returns to the same.
func TestRepairRollbackToTheLastGoodRevision(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("ledger-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/ledger:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	workloadtest.Settled(t, k.Clientset, name, name, 1, 1)
	for _, image := range []string{kubedev.CrashImageHost + "/ledger:2", kubedev.CrashImageHost + "/ledger:3"} {
		d = f.deploy(t, name, image)
		require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus(), "%s crash-loops", image)
	}

	w, err := workload.Read(t.Context(), k.Clientset, name, name, time.Now())
	require.NoError(t, err)
	require.NotNil(t, w.LastGood())
	assert.Equal(t, int64(1), w.LastGood().Number, "the model's last good revision")
	assert.Equal(t, "1", w.LastGood().ReplicaSet.Annotations["vigil.dev/revision"], "ran the app's revision 1")

	back, err := f.svc.RollbackForRepair(t.Context(), name, bus.NewID())
	require.NoError(t, err)
	assert.Equal(t, deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK, back.GetKind())
	assert.Equal(t, int64(1), back.GetRollbackTo(), "past both bad releases")
	assert.Equal(t, "registry.example.com/ledger:1", back.GetImage())
	assert.Equal(t, "registry.example.com/ledger:1", liveImage(t, k.Clientset, name, name))
}

// Nothing known good: a rollback is refused, and nothing is recorded.
func TestRepairRollbackWithNothingGood(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	f := newFixture(t, 2*time.Minute)
	f.addCluster(t, "main", k)
	name := uniqueName("abacus-")
	_, err := f.apps.CreateApp(t.Context(), &deployv1.CreateAppRequest{App: &deployv1.App{
		Name: name, Framework: "go", Plan: "basic", Image: "registry.example.com/abacus:1",
	}})
	require.NoError(t, err)
	d := f.deploy(t, name, "")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED, d.GetStatus(), d.GetReason())
	// Replaced before it served the settle time: not known good.
	d = f.deploy(t, name, kubedev.CrashImageHost+"/abacus:2")
	require.Equal(t, deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED, d.GetStatus())

	_, err = f.svc.RollbackForRepair(t.Context(), name, bus.NewID())
	require.ErrorIs(t, err, deployer.ErrNoGoodRevision)
	assert.Len(t, f.history(t, name), 2, "nothing recorded")
	assert.Equal(t, kubedev.CrashImageHost+"/abacus:2", liveImage(t, k.Clientset, name, name), "nothing changed")
}
