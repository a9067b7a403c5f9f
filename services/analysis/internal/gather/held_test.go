package gather_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
)

// The rollout that held an incident's alerts is evidence, once however
// many of its alerts it held; alerts no rollout held add nothing.
func TestHeld(t *testing.T) {
	t.Parallel()
	hold := &typesv1.DeployHold{DeploymentId: "d1", App: "shop", Revision: 7, Outcome: "failed"}
	alert := func(name string, h *typesv1.DeployHold) *typesv1.IncidentAlert {
		return &typesv1.IncidentAlert{Alert: &typesv1.Alert{Labels: map[string]string{"alertname": name}}, HeldBy: h}
	}
	b := &evidence.Bundle{}
	gather.Held([]*typesv1.IncidentAlert{alert("HighLatency", hold), alert("HighErrorRate", hold), alert("DiskFull", nil)}, b)
	require.Len(t, b.Items, 1)
	assert.Equal(t, "deploy/d1", b.Items[0].ID)
	assert.Equal(t, "deploy", b.Items[0].Source)
	assert.Equal(t, "the alert HighLatency fired while deployment d1 of shop (revision 7) rolled out, and was held until it failed", b.Items[0].Summary)

	b = &evidence.Bundle{}
	gather.Held([]*typesv1.IncidentAlert{alert("DiskFull", nil)}, b)
	assert.Empty(t, b.Items)
}
