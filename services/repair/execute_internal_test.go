package repair

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A deploy that could not answer leaves the repair to the next lease; one
// that refused the change fails it.
func TestDeployUnreachable(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"deploy down", status.Error(codes.Unavailable, "connection refused"), true},
		{"deploy too slow", status.Error(codes.DeadlineExceeded, "deadline exceeded"), true},
		{"deploy's Postgres down, in process", fmt.Errorf("roll back: %w", &pgconn.PgError{Code: "57P01"}), true},
		{"refused", status.Error(codes.FailedPrecondition, "no earlier revision to roll back to"), false},
		{"not allowed", status.Error(codes.PermissionDenied, "not the repair service"), false},
		{"bad request", status.Error(codes.InvalidArgument, "repair_id: must be a UUID"), false},
		{"a rollout that failed", errors.New("revision 3 did not become ready"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, deployUnreachable(tc.err))
		})
	}
}
