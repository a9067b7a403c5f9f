package gather

import (
	"fmt"
	"strings"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Held records in b the rollouts that held the incident's alerts before
// they opened it (monitor's deploy quiet): the deploy was under way when
// they fired, and they outlived its settle time, or it failed. Once per
// deployment; monitor sets held_by, no sender can.
func Held(alerts []*typesv1.IncidentAlert, b *evidence.Bundle) {
	seen := map[string]bool{}
	for _, ia := range alerts {
		h := ia.GetHeldBy()
		if h == nil || h.GetDeploymentId() == "" || seen[h.GetDeploymentId()] {
			continue
		}
		seen[h.GetDeploymentId()] = true
		item := evidence.Item{
			ID: "deploy/" + h.GetDeploymentId(), Source: "deploy",
			Summary: fmt.Sprintf("the alert %s fired while deployment %s of %s (revision %d) rolled out, and was held until it %s",
				ia.GetAlert().GetLabels()["alertname"], h.GetDeploymentId(), h.GetApp(), h.GetRevision(), heldOutcome(h.GetOutcome())),
		}
		if u := h.GetUntil(); u != nil {
			item.At = u.AsTime()
		}
		b.Items = append(b.Items, item)
	}
}

func heldOutcome(o string) string {
	switch o {
	case "failed", "rolled_back":
		return strings.ReplaceAll(o, "_", " ")
	case "succeeded":
		return "succeeded and the alert outlived the settle time"
	default:
		return "ran past the longest rollout"
	}
}
