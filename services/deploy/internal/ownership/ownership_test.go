package ownership_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/deploy/internal/ownership"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		labels  map[string]string
		missing string
		owner   string
	}{
		{"the app's", map[string]string{"app.kubernetes.io/managed-by": "vigil", "vigil.dev/app": "shop", "x": "y"}, "", ""},
		{"unlabelled", map[string]string{"kubernetes.io/metadata.name": "shop"}, "app.kubernetes.io/managed-by=vigil", "it has no labels"},
		{"another team's", map[string]string{"kubernetes.io/metadata.name": "shop", "team": "sre", "env": "dev"}, "app.kubernetes.io/managed-by=vigil", "its labels are env=dev, team=sre"},
		{"helm's", map[string]string{"app.kubernetes.io/managed-by": "Helm", "vigil.dev/app": "shop"}, "app.kubernetes.io/managed-by=vigil", "it is managed by Helm"},
		{"another app's", map[string]string{"app.kubernetes.io/managed-by": "vigil", "vigil.dev/app": "cart"}, "vigil.dev/app=shop", "it belongs to Vigil's app cart"},
		{"Vigil's without an app", map[string]string{"app.kubernetes.io/managed-by": "vigil"}, "vigil.dev/app=shop", "its labels are app.kubernetes.io/managed-by=vigil"},
		{"the app label alone", map[string]string{"vigil.dev/app": "shop"}, "app.kubernetes.io/managed-by=vigil", "its labels are vigil.dev/app=shop"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := ownership.Check("shop", "shop", tc.labels)
			if tc.missing == "" {
				require.NoError(t, err)
				return
			}
			var fe *ownership.ForeignError
			require.ErrorAs(t, err, &fe)
			assert.Equal(t, tc.missing, fe.Missing)
			assert.Contains(t, fe.Owner, tc.owner)
			assert.Contains(t, err.Error(), "namespace shop")
			assert.Contains(t, err.Error(), tc.missing)
		})
	}
}

func TestSelector(t *testing.T) {
	t.Parallel()
	assert.Equal(t, "app.kubernetes.io/managed-by=vigil,vigil.dev/app=shop", ownership.Selector("shop"))
}

func TestReserved(t *testing.T) {
	t.Parallel()
	r, err := ownership.NewReserved([]string{"vigil-system", "platform"}, []string{"ingress-nginx", "monitoring"}, []string{"vigil", " team-* ", "default"})
	require.NoError(t, err)
	for ns, want := range map[string]string{
		"default":       "Kubernetes",
		"kube-system":   "Kubernetes",
		"kube-public":   "Kubernetes",
		"monitoring":    "NetworkPolicy",
		"ingress-nginx": "NetworkPolicy",
		"vigil":         "VIGIL_RESERVED_NAMESPACES",
		"vigil-system":  "Vigil's own",
		"platform":      "Vigil's own",
		"team-a":        "VIGIL_RESERVED_NAMESPACES",
		"shop":          "",
		"kube":          "",
		"defaults":      "",
		"monitoring2":   "",
	} {
		if want == "" {
			assert.Empty(t, r.Check(ns), ns)
		} else {
			assert.Contains(t, r.Check(ns), want, ns)
		}
	}
	for _, bad := range []string{"*", "Team", "a*b*", "-x", "a_b*", ""} {
		_, err := ownership.NewReserved(nil, nil, []string{bad})
		assert.Error(t, err, "%q", bad)
	}
}
