package reserved_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/reserved"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	n, err := reserved.New("vigil", []string{" team-* ", "payments-prod"})
	require.NoError(t, err)
	for _, tc := range []struct{ namespace, why string }{
		{"kube-system", reserved.WhyKubernetes},
		{"kube-public", reserved.WhyKubernetes},
		{"vigil-system", reserved.WhyVigil},
		{"vigil", "VIGIL_NAMESPACE"},
		{"ingress-nginx", reserved.WhyTrusted},
		{"monitoring", reserved.WhyTrusted},
		{"team-a", reserved.WhyOperator},
		{"payments-prod", reserved.WhyOperator},
		{"shop", ""},
		{"default", ""},
		{"kube", ""},
		{"vigil-systems", ""},
		{"monitoring2", ""},
		{"payments", ""},
	} {
		t.Run(tc.namespace, func(t *testing.T) {
			t.Parallel()
			got := n.Check(tc.namespace)
			if tc.why == "" {
				assert.Empty(t, got)
				assert.NoError(t, n.Refuse(tc.namespace))
				return
			}
			assert.Contains(t, got, tc.why)
			var re *reserved.Error
			require.ErrorAs(t, n.Refuse(tc.namespace), &re)
			assert.Contains(t, re.Error(), "namespace "+tc.namespace+" is "+got)
		})
	}
}

func TestDefault(t *testing.T) {
	t.Parallel()
	n := reserved.Default()
	assert.NotEmpty(t, n.Check("kube-system"))
	assert.NotEmpty(t, n.Check("vigil-system"))
	assert.Empty(t, n.Check("shop"))
	var none *reserved.Namespaces
	assert.Empty(t, none.Check("kube-system"), "nil reserves nothing")
}

func TestNewRefusesBadEntries(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{"*", "Team", "a*b*", "-x", "a_b*", ""} {
		_, err := reserved.New("", []string{bad})
		require.ErrorContains(t, err, "VIGIL_RESERVED_NAMESPACES", "%q", bad)
	}
	_, err := reserved.New("Vigil", nil)
	require.ErrorContains(t, err, "VIGIL_NAMESPACE")
}
