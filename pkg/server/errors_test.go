package server_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// take returns what the server logged since the last take, but its
// "listening" line.
func take(t *testing.T, logs *testkit.Logs) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logs.Take(t) {
		if l["msg"] != "listening" {
			out = append(out, l)
		}
	}
	return out
}

// failing answers every call with its err.
type failing struct {
	analysisv1.UnimplementedAnalysisServiceServer
	deployv1.UnimplementedAppServiceServer
	err error
}

func (f *failing) GetAnalysis(context.Context, *analysisv1.GetAnalysisRequest) (*analysisv1.GetAnalysisResponse, error) {
	return nil, f.err
}

func (f *failing) WatchDeployment(*deployv1.WatchDeploymentRequest, grpc.ServerStreamingServer[deployv1.WatchDeploymentResponse]) error {
	return f.err
}

// failingServer serves f over gRPC and REST, logging to the returned
// lines.
func failingServer(t *testing.T, f *failing) (*grpc.ClientConn, string, *testkit.Logs) {
	t.Helper()
	logs := &testkit.Logs{}
	srv := server.New(server.Options{GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: logs.Logger()})
	require.NoError(t, srv.Listen())
	analysisv1.RegisterAnalysisServiceServer(srv.GRPC, f)
	deployv1.RegisterAppServiceServer(srv.GRPC, f)
	self, err := srv.SelfConn()
	require.NoError(t, err)
	require.NoError(t, analysisv1.RegisterAnalysisServiceHandler(t.Context(), srv.Gateway, self))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	conn, err := grpc.NewClient(srv.GRPCAddr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() {
		_ = conn.Close()
		cancel()
		require.NoError(t, <-done)
	})
	return conn, "http://" + srv.HTTPAddr(), logs
}

// TestErrorsAnswerAndLogOnce: whatever a handler fails with, the caller
// gets a status (over gRPC, and the same as problem JSON over REST) and
// the log one line per call; an internal error's cause is in that line
// and nowhere in the answer.
func TestErrorsAnswerAndLogOnce(t *testing.T) {
	const secret = "password authentication failed for user vigil_analysis"
	for name, tc := range map[string]struct {
		err     error
		code    codes.Code
		message string
		http    int
		level   string
		logged  string
	}{
		"internal": {
			err: fmt.Errorf("load analysis: %w", errors.New(secret)), code: codes.Internal, message: "internal error",
			http: http.StatusInternalServerError, level: "ERROR", logged: "load analysis: " + secret,
		},
		"canceled": {
			err: fmt.Errorf("query: %w", context.Canceled), code: codes.Canceled, message: "context canceled",
			http: 499, level: "INFO", logged: "query: context canceled",
		},
		"deadline": {
			err: fmt.Errorf("query: %w", context.DeadlineExceeded), code: codes.DeadlineExceeded, message: "context deadline exceeded",
			http: http.StatusGatewayTimeout, level: "ERROR", logged: "query: context deadline exceeded",
		},
		"a status": {
			err: status.Error(codes.NotFound, "analysis x: not found"), code: codes.NotFound, message: "analysis x: not found",
			http: http.StatusNotFound, level: "INFO", logged: "analysis x: not found",
		},
		"a wrapped status answers as itself": {
			err:  fmt.Errorf("get analysis %s: %w", secret, status.Error(codes.NotFound, "analysis x: not found")),
			code: codes.NotFound, message: "analysis x: not found", http: http.StatusNotFound, level: "INFO", logged: "analysis x: not found",
		},
		"a bad request": {
			err: server.InvalidArgument("invalid id", server.FieldViolation{Field: "id", Description: "must be a UUID"}), code: codes.InvalidArgument,
			message: "invalid id", http: http.StatusBadRequest, level: "INFO", logged: "invalid id",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			conn, base, logs := failingServer(t, &failing{err: tc.err})
			ctx := metadata.AppendToOutgoingContext(t.Context(), "x-request-id", "req-1")

			_, err := analysisv1.NewAnalysisServiceClient(conn).GetAnalysis(ctx, &analysisv1.GetAnalysisRequest{Id: "x"})
			st := status.Convert(err)
			require.Equal(t, tc.code, st.Code())
			require.Equal(t, tc.message, st.Message())
			require.NotContains(t, err.Error(), secret)
			lines := take(t, logs)
			require.Len(t, lines, 1, "one line per failed call: %v", lines)
			require.Equal(t, "rpc failed", lines[0]["msg"])
			require.Equal(t, tc.level, lines[0]["level"])
			require.Equal(t, "/vigil.analysis.v1.AnalysisService/GetAnalysis", lines[0]["method"])
			require.Equal(t, tc.code.String(), lines[0]["code"])
			require.Equal(t, tc.logged, lines[0]["error"])
			require.Equal(t, "req-1", lines[0]["request_id"])

			// REST: the same status as problem JSON, logged once too.
			resp, err := http.Get(base + "/api/v1/analyses/x")
			require.NoError(t, err)
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			require.NoError(t, resp.Body.Close())
			require.Equal(t, tc.http, resp.StatusCode, "%s", body)
			require.Equal(t, "application/problem+json", resp.Header.Get("Content-Type"))
			var p server.Problem
			require.NoError(t, json.Unmarshal(body, &p))
			require.Equal(t, tc.message, p.Detail)
			require.NotContains(t, string(body), secret)
			require.Len(t, take(t, logs), 1)
		})
	}
}

// TestStreamErrors: a streaming call's failure is answered and logged as
// a unary one's.
func TestStreamErrors(t *testing.T) {
	t.Parallel()
	conn, _, logs := failingServer(t, &failing{err: errors.New("kube: connection refused")})
	stream, err := deployv1.NewAppServiceClient(conn).WatchDeployment(t.Context(), &deployv1.WatchDeploymentRequest{Id: "x"})
	require.NoError(t, err)
	_, err = stream.Recv()
	require.Equal(t, codes.Internal, status.Code(err))
	require.Equal(t, "internal error", status.Convert(err).Message())
	lines := take(t, logs)
	require.Len(t, lines, 1)
	require.Equal(t, "/vigil.deploy.v1.AppService/WatchDeployment", lines[0]["method"])
	require.Equal(t, "kube: connection refused", lines[0]["error"])
}

// TestBadRequestEverywhere: the violations of a BadRequestError reach a gRPC
// client as google.rpc.BadRequest details and a REST client as the
// problem's errors, also when the handler wrapped it.
func TestBadRequestEverywhere(t *testing.T) {
	t.Parallel()
	var bad server.BadRequestError
	bad.Add("id", "must be a UUID")
	bad.Addf("page_size", "must not be negative, got %d", -1)
	conn, base, _ := failingServer(t, &failing{err: fmt.Errorf("get analysis: %w", bad.Err("invalid request"))})
	want := []server.FieldViolation{{Field: "id", Description: "must be a UUID"}, {Field: "page_size", Description: "must not be negative, got -1"}}

	_, err := analysisv1.NewAnalysisServiceClient(conn).GetAnalysis(t.Context(), &analysisv1.GetAnalysisRequest{Id: "x"})
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code())
	require.Equal(t, "invalid request", st.Message())
	require.Equal(t, want, server.Violations(st))

	resp, err := http.Get(base + "/api/v1/analyses/x")
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	var p server.Problem
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&p))
	require.Equal(t, server.Problem{Type: "about:blank", Title: "Bad Request", Status: http.StatusBadRequest, Detail: "invalid request", Errors: want}, p)
}

func TestBadRequest(t *testing.T) {
	t.Parallel()
	var none server.BadRequestError
	require.NoError(t, none.Err("invalid request"), "nothing added, nothing refused")

	var many server.BadRequestError
	for i := range server.MaxViolations + 3 {
		many.Addf(fmt.Sprintf("alerts[%d]", i), "must have labels")
	}
	require.Equal(t, server.MaxViolations+3, many.Len())
	err := many.Err("invalid alerts")
	var br *server.BadRequestError
	require.ErrorAs(t, err, &br)
	require.Len(t, br.Violations, server.MaxViolations+1)
	require.Equal(t, server.FieldViolation{Description: "3 more violations not shown"}, br.Violations[server.MaxViolations])
	require.Len(t, server.Violations(status.Convert(err)), server.MaxViolations+1)

	two := server.InvalidArgument("invalid guardrails",
		server.FieldViolation{Field: "cooldown", Description: "must be positive"}, server.FieldViolation{Description: "scopes overlap"})
	require.Equal(t, "invalid guardrails: cooldown: must be positive; scopes overlap", two.Error())
	require.Equal(t, codes.InvalidArgument, status.Code(fmt.Errorf("apply: %w", two)))
}
