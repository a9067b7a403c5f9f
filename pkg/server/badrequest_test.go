package server_test

import (
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/server"
)

func TestWithViolations(t *testing.T) {
	t.Parallel()
	vs := []server.FieldViolation{{Field: "matchers", Description: `needs namespace="NS"`}}
	st := server.WithViolations(status.New(codes.PermissionDenied, "not your namespace"), vs...)
	require.Equal(t, codes.PermissionDenied, st.Code())
	require.Equal(t, "not your namespace", st.Message())
	require.Equal(t, vs, server.Violations(st))
	require.Empty(t, server.WithViolations(status.New(codes.NotFound, "x")).Details())
}
