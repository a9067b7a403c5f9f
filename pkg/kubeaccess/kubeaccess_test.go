package kubeaccess_test

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/vigil-ops/vigil/pkg/kubeaccess"
)

// The repair rules name every group, resource and verb: no wildcard, no
// Secrets, nothing that creates objects or grants more access.
func TestRepairRulesAreExplicit(t *testing.T) {
	t.Parallel()
	allowed := map[string][]string{
		"apps/deployments":                     {"get", "list", "watch", "patch"},
		"apps/replicasets":                     {"get", "list", "watch"},
		"/pods":                                {"get", "list", "watch", "delete"},
		"autoscaling/horizontalpodautoscalers": {"get", "list"},
	}
	seen := map[string]bool{}
	for _, r := range kubeaccess.RepairRules {
		assert.Empty(t, r.ResourceNames, "any object of the resource")
		assert.Empty(t, r.NonResourceURLs)
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				key := g + "/" + res
				want, ok := allowed[key]
				if !assert.True(t, ok, "unexpected resource %s", key) {
					continue
				}
				seen[key] = true
				for _, v := range r.Verbs {
					assert.True(t, slices.Contains(want, v), "%s: unexpected verb %s", key, v)
				}
			}
		}
	}
	assert.Len(t, seen, len(allowed), "every resource an executor needs")
}
