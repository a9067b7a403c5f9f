package change_test

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/repair/internal/action/actiontest"
	"github.com/vigil-ops/vigil/services/repair/internal/change"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// A patch applies only to the Deployment as it was read: changed since,
// it fails with a Conflict, as a merge patch and as a JSON patch.
func TestPatchIsGuardedByResourceVersion(t *testing.T) {
	t.Parallel()
	k := testkit.SharedKube(t)
	ns := actiontest.Namespace(t, k)
	ctx := t.Context()
	c := actiontest.Repairer(t, k)
	read := actiontest.Create(t, k, actiontest.Deployment(ns, "web", "registry.example.com/web:1", 1))
	_, err := k.Clientset.AppsV1().Deployments(ns).Patch(ctx, "web", types.MergePatchType, []byte(`{"metadata":{"labels":{"team":"shop"}}}`), metav1.PatchOptions{})
	require.NoError(t, err, "someone else changes it")

	_, err = change.Patch(ctx, c, read, types.MergePatchType, change.SpecPatch(read, nil, map[string]any{"replicas": 2}), false)
	require.True(t, apierrors.IsConflict(err), "merge patch: %v", err)
	jsonPatch, err := json.Marshal([]map[string]any{
		{"op": "replace", "path": "/metadata/resourceVersion", "value": read.ResourceVersion},
		{"op": "replace", "path": "/spec/replicas", "value": 2},
	})
	require.NoError(t, err)
	_, err = change.Patch(ctx, c, read, types.JSONPatchType, jsonPatch, false)
	require.True(t, apierrors.IsConflict(err), "JSON patch: %v", err)

	fresh, err := change.Deployment(ctx, c, actiontest.Proposal(0, "Deployment", ns, "web").Target)
	require.NoError(t, err)
	out, err := change.Patch(ctx, c, fresh, types.MergePatchType, change.SpecPatch(fresh, map[string]string{"note": "x"}, map[string]any{"replicas": 2}), false)
	require.NoError(t, err)
	assert.Equal(t, int32(2), *out.Spec.Replicas)
	assert.Equal(t, "x", out.Annotations["note"])
	assert.Equal(t, "shop", out.Labels["team"])
	var managers []string
	for _, m := range out.ManagedFields {
		managers = append(managers, m.Manager)
	}
	assert.Contains(t, managers, "vigil-repair", "the field manager of repairs")
}
