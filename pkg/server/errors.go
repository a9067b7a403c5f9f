package server

import (
	"context"
	"errors"
	"log/slog"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// UnaryErrors returns the interceptor that answers every failed call
// with a gRPC status and logs it once: a status the handler chose (its
// sentinels, a BadRequestError, a refusal) goes back as it is; a context
// error becomes Canceled or DeadlineExceeded; anything else is Vigil's
// own failure, logged with its cause and answered Internal with a
// generic message, so that no detail of it reaches the caller. A
// service's toStatus then maps only its own sentinels. New installs it
// first; tests that build a bare grpc.Server install it to answer as
// production does.
func UnaryErrors(log *slog.Logger) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		resp, err := handler(ctx, req)
		if err != nil {
			return resp, answer(ctx, log, info.FullMethod, err)
		}
		return resp, nil
	}
}

// StreamErrors is UnaryErrors for streaming calls.
func StreamErrors(log *slog.Logger) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := handler(srv, ss); err != nil {
			return answer(ss.Context(), log, info.FullMethod, err)
		}
		return nil
	}
}

// answer is the status err is answered with, logged: at error level for
// what the caller cannot fix (5xx), at info otherwise; with the cause
// when the status is not one the handler chose.
func answer(ctx context.Context, log *slog.Logger, method string, err error) error {
	st, chosen := statusOf(err)
	cause := st.Message()
	if !chosen {
		cause = err.Error()
	}
	attrs := []slog.Attr{slog.String("method", method), slog.String("code", st.Code().String()), slog.String("error", cause)}
	if id := requestID(ctx); id != "" {
		attrs = append(attrs, slog.String("request_id", id))
	}
	level := slog.LevelInfo
	if runtime.HTTPStatusFromCode(st.Code()) >= 500 {
		level = slog.LevelError
	}
	log.LogAttrs(ctx, level, "rpc failed", attrs...)
	return st.Err()
}

// statusOf is the status err is answered with, and whether err chose it.
func statusOf(err error) (*status.Status, bool) {
	// A status wrapped with context for the log ("load repair x: ...")
	// answers as the status it wraps: its message was written for the
	// caller, the wrapping was not.
	var gs interface{ GRPCStatus() *status.Status }
	if errors.As(err, &gs) {
		if st := gs.GRPCStatus(); st != nil && st.Code() != codes.OK {
			return st, true
		}
	}
	switch {
	case errors.Is(err, context.Canceled):
		return status.New(codes.Canceled, context.Canceled.Error()), false
	case errors.Is(err, context.DeadlineExceeded):
		return status.New(codes.DeadlineExceeded, context.DeadlineExceeded.Error()), false
	}
	// Vigil's own failure: the cause is logged, never shown.
	return status.New(codes.Internal, "internal error"), false
}

// requestID is the x-request-id a client sent with the call, if any.
func requestID(ctx context.Context) string {
	if v := metadata.ValueFromIncomingContext(ctx, "x-request-id"); len(v) > 0 {
		return v[0]
	}
	return ""
}
