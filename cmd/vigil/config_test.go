package main

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// VIGIL_RESERVED_NAMESPACES is a comma-separated list; the deploy
// service's options check its entries and name the variable.
func TestReservedNamespacesFromEnv(t *testing.T) {
	t.Setenv("VIGIL_RESERVED_NAMESPACES", " vigil, team-* ,,")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, []string{"vigil", "team-*"}, opts.Deploy.ReservedNamespaces)

	t.Setenv("VIGIL_RESERVED_NAMESPACES", "Team_A")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	opts.Deploy.EncryptionKey = make([]byte, 32)
	require.ErrorContains(t, opts.Deploy.Validate(), `VIGIL_RESERVED_NAMESPACES: "Team_A" is not a namespace name`)
}
