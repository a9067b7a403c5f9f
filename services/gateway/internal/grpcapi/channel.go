package grpcapi

import (
	"context"

	"google.golang.org/grpc"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// ChannelForwarder serves ChannelService by calling notify in another
// process; notify checks who may manage which channel.
type ChannelForwarder struct {
	notifyv1.UnimplementedChannelServiceServer
	c notifyv1.ChannelServiceClient
}

// NewChannelForwarder forwards to notify over conn.
func NewChannelForwarder(conn grpc.ClientConnInterface) *ChannelForwarder {
	return &ChannelForwarder{c: notifyv1.NewChannelServiceClient(conn)}
}

// ListChannels forwards the RPC.
func (f *ChannelForwarder) ListChannels(ctx context.Context, r *notifyv1.ListChannelsRequest) (*notifyv1.ListChannelsResponse, error) {
	return f.c.ListChannels(ctx, r)
}

// GetChannel forwards the RPC.
func (f *ChannelForwarder) GetChannel(ctx context.Context, r *notifyv1.GetChannelRequest) (*notifyv1.GetChannelResponse, error) {
	return f.c.GetChannel(ctx, r)
}

// CreateChannel forwards the RPC.
func (f *ChannelForwarder) CreateChannel(ctx context.Context, r *notifyv1.CreateChannelRequest) (*notifyv1.CreateChannelResponse, error) {
	return f.c.CreateChannel(ctx, r)
}

// UpdateChannel forwards the RPC.
func (f *ChannelForwarder) UpdateChannel(ctx context.Context, r *notifyv1.UpdateChannelRequest) (*notifyv1.UpdateChannelResponse, error) {
	return f.c.UpdateChannel(ctx, r)
}

// DeleteChannel forwards the RPC.
func (f *ChannelForwarder) DeleteChannel(ctx context.Context, r *notifyv1.DeleteChannelRequest) (*notifyv1.DeleteChannelResponse, error) {
	return f.c.DeleteChannel(ctx, r)
}

// TestChannel forwards the RPC.
func (f *ChannelForwarder) TestChannel(ctx context.Context, r *notifyv1.TestChannelRequest) (*notifyv1.TestChannelResponse, error) {
	return f.c.TestChannel(ctx, r)
}

// ListIncidentMessages forwards the RPC.
func (f *ChannelForwarder) ListIncidentMessages(ctx context.Context, r *notifyv1.ListIncidentMessagesRequest) (*notifyv1.ListIncidentMessagesResponse, error) {
	return f.c.ListIncidentMessages(ctx, r)
}
