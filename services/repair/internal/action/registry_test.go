package action_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/action/deletepod"
	"github.com/vigil-ops/vigil/services/repair/internal/action/memory"
	"github.com/vigil-ops/vigil/services/repair/internal/action/restart"
	"github.com/vigil-ops/vigil/services/repair/internal/action/rollback"
	"github.com/vigil-ops/vigil/services/repair/internal/action/scale"
)

func registry() *action.Registry {
	return action.NewRegistry(restart.New(), deletepod.New(), scale.New(), rollback.New(), memory.New())
}

func requireRefused(t *testing.T, err, reason error) {
	t.Helper()
	var refused *action.RefusedError
	require.ErrorAs(t, err, &refused)
	require.ErrorIs(t, err, reason)
}

// Every Kubernetes action of the enum has an executor; NONE, UNSPECIFIED,
// the declared actions that are not Kubernetes operations or are denied,
// and values the enum does not have are refused as not supported, before any call to
// a cluster (the client here is nil).
func TestRegistry(t *testing.T) {
	t.Parallel()
	r := registry()
	for n := range typesv1.RepairAction_name {
		a := typesv1.RepairAction(n)
		t.Run(a.String(), func(t *testing.T) {
			t.Parallel()
			e, err := r.Executor(a)
			switch a {
			case typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, typesv1.RepairAction_REPAIR_ACTION_NONE,
				// Declared so proposals naming them are recorded, and
				// refused: not Kubernetes operations, or on the deny list.
				typesv1.RepairAction_REPAIR_ACTION_CLEAR_CACHE, typesv1.RepairAction_REPAIR_ACTION_VACUUM_DATABASE,
				typesv1.RepairAction_REPAIR_ACTION_RENEW_CERTIFICATE, typesv1.RepairAction_REPAIR_ACTION_CLEAN_LOGS,
				typesv1.RepairAction_REPAIR_ACTION_DELETE_NAMESPACE, typesv1.RepairAction_REPAIR_ACTION_DELETE_PVC,
				typesv1.RepairAction_REPAIR_ACTION_DELETE_SECRET, typesv1.RepairAction_REPAIR_ACTION_DROP_DATABASE:
				requireRefused(t, err, action.ErrNotSupported)
				_, err = r.Plan(t.Context(), nil, &typesv1.RepairProposal{Action: a}, action.Limits{})
				requireRefused(t, err, action.ErrNotSupported)
				_, err = r.Execute(t.Context(), nil, &typesv1.RepairProposal{Action: a}, action.Run{RepairID: "r"})
				requireRefused(t, err, action.ErrNotSupported)
			default:
				require.NoError(t, err, "a new action needs a package of its own under action/")
				assert.Equal(t, a, e.Action())
			}
		})
	}
	_, err := r.Executor(typesv1.RepairAction(99))
	requireRefused(t, err, action.ErrNotSupported)
	require.EqualError(t, err, "not supported on this target: no executor of 99")
	_, err = r.Plan(t.Context(), nil, nil, action.Limits{})
	requireRefused(t, err, action.ErrNotSupported)

	assert.Panics(t, func() { action.NewRegistry(restart.New(), restart.New()) }, "two executors of one action")
}

// Executors check the proposal's shape before they read the cluster.
func TestTarget(t *testing.T) {
	t.Parallel()
	const a = typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT
	ref := &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "web"}
	for _, tc := range []struct {
		name   string
		p      *typesv1.RepairProposal
		reason error
	}{
		{"no proposal", nil, action.ErrInvalid},
		{"no target", &typesv1.RepairProposal{Action: a}, action.ErrInvalid},
		{"another action", &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, Target: ref}, action.ErrNotSupported},
		{"another kind", &typesv1.RepairProposal{Action: a, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "deployment", Name: "web"}}, action.ErrNotSupported},
		{"no name", &typesv1.RepairProposal{Action: a, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment"}}, action.ErrInvalid},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := action.Target(tc.p, a, "Deployment")
			requireRefused(t, err, tc.reason)
		})
	}
	got, err := action.Target(&typesv1.RepairProposal{Action: a, Target: ref}, a, "Deployment")
	require.NoError(t, err)
	assert.Same(t, ref, got)
}

// A repair may find a workload below its minimum, but never take it
// there.
func TestCheckHealthy(t *testing.T) {
	t.Parallel()
	lim := action.Limits{MinReplicas: 2}
	for _, tc := range []struct {
		before, during int32
		ok             bool
	}{
		{3, 2, true},
		{3, 1, false},
		{1, 1, true},  // already below, not lowered
		{1, 0, false}, // lowered, below
		{0, 0, true},
	} {
		err := lim.CheckHealthy(action.Plan{HealthyBefore: tc.before, HealthyDuring: tc.during})
		if tc.ok {
			assert.NoError(t, err, "%d → %d", tc.before, tc.during)
		} else {
			requireRefused(t, err, action.ErrLimit)
		}
	}
}

func TestRun(t *testing.T) {
	t.Parallel()
	requireRefused(t, action.Run{}.Validate(), action.ErrInvalid)
	requireRefused(t, action.Run{RepairID: "r", GracePeriod: -time.Second}.Validate(), action.ErrInvalid)
	require.NoError(t, action.Run{RepairID: "r"}.Validate())

	require.NoError(t, action.Run{}.CheckPlanned("a", 3), "no plan: anything goes")
	planned := action.Run{Planned: &action.Plan{UID: "a", Generation: 3}}
	require.NoError(t, planned.CheckPlanned("a", 3))
	require.NoError(t, planned.CheckPlanned("a", 0), "no generation to compare")
	requireRefused(t, planned.CheckPlanned("b", 3), action.ErrChanged)
	requireRefused(t, planned.CheckPlanned("a", 4), action.ErrChanged)
}
