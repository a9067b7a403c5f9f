package console

import (
	"testing"

	"github.com/stretchr/testify/require"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Every value of the enums the incident page shows has a word in the
// catalogue: a new value of the API shows as words, not as a key.
func TestStoryWords(t *testing.T) {
	for prefix, enum := range map[string]struct {
		names map[int32]string
		trim  string
	}{
		"story.risk.":     {typesv1.Risk_name, "RISK_"},
		"story.action.":   {typesv1.RepairAction_name, "REPAIR_ACTION_"},
		"story.repair.":   {repairv1.RepairStatus_name, "REPAIR_STATUS_"},
		"story.decision.": {repairv1.Decision_name, "DECISION_"},
		"story.step.":     {repairv1.StepKind_name, "STEP_KIND_"},
	} {
		for _, name := range enum.names {
			require.Contains(t, catalogue["en"], enumKey(prefix, name, enum.trim))
		}
	}
}
