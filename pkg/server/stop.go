package server

import (
	"context"

	"google.golang.org/grpc"
)

// stop tells the calls in flight -- HTTP requests (their BaseContext), gRPC
// calls and streams -- when they must answer for the server to stop within
// ShutdownTimeout: their contexts end then, not when Run's does.
type stop struct {
	requests    context.Context
	endRequests context.CancelFunc
}

func newStop() *stop {
	st := &stop{}
	st.requests, st.endRequests = context.WithCancel(context.Background())
	return st
}

func (st *stop) unary(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(st.requests, cancel)()
	return handler(ctx, req)
}

func (st *stop) stream(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	ctx, cancel := context.WithCancel(ss.Context())
	defer cancel()
	defer context.AfterFunc(st.requests, cancel)()
	return handler(srv, &stoppingStream{ServerStream: ss, ctx: ctx})
}

type stoppingStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *stoppingStream) Context() context.Context { return s.ctx }
