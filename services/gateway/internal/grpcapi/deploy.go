package grpcapi

import (
	"context"
	"errors"
	"io"

	"google.golang.org/grpc"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// AppForwarder serves AppService by calling the deploy service in another
// process, as the original caller.
type AppForwarder struct {
	deployv1.UnimplementedAppServiceServer
	c deployv1.AppServiceClient
}

// NewAppForwarder forwards to the deploy service over conn.
func NewAppForwarder(conn grpc.ClientConnInterface) *AppForwarder {
	return &AppForwarder{c: deployv1.NewAppServiceClient(conn)}
}

// CreateApp forwards the RPC.
func (f *AppForwarder) CreateApp(ctx context.Context, r *deployv1.CreateAppRequest) (*deployv1.CreateAppResponse, error) {
	return f.c.CreateApp(ctx, r)
}

// GetApp forwards the RPC.
func (f *AppForwarder) GetApp(ctx context.Context, r *deployv1.GetAppRequest) (*deployv1.GetAppResponse, error) {
	return f.c.GetApp(ctx, r)
}

// ListApps forwards the RPC.
func (f *AppForwarder) ListApps(ctx context.Context, r *deployv1.ListAppsRequest) (*deployv1.ListAppsResponse, error) {
	return f.c.ListApps(ctx, r)
}

// UpdateApp forwards the RPC.
func (f *AppForwarder) UpdateApp(ctx context.Context, r *deployv1.UpdateAppRequest) (*deployv1.UpdateAppResponse, error) {
	return f.c.UpdateApp(ctx, r)
}

// DeleteApp forwards the RPC.
func (f *AppForwarder) DeleteApp(ctx context.Context, r *deployv1.DeleteAppRequest) (*deployv1.DeleteAppResponse, error) {
	return f.c.DeleteApp(ctx, r)
}

// GetDeployment forwards the RPC.
func (f *AppForwarder) GetDeployment(ctx context.Context, r *deployv1.GetDeploymentRequest) (*deployv1.GetDeploymentResponse, error) {
	return f.c.GetDeployment(ctx, r)
}

// ListDeployments forwards the RPC.
func (f *AppForwarder) ListDeployments(ctx context.Context, r *deployv1.ListDeploymentsRequest) (*deployv1.ListDeploymentsResponse, error) {
	return f.c.ListDeployments(ctx, r)
}

// RenderApp forwards the RPC.
func (f *AppForwarder) RenderApp(ctx context.Context, r *deployv1.RenderAppRequest) (*deployv1.RenderAppResponse, error) {
	return f.c.RenderApp(ctx, r)
}

// DeployApp forwards the stream.
func (f *AppForwarder) DeployApp(r *deployv1.DeployAppRequest, s grpc.ServerStreamingServer[deployv1.DeployAppResponse]) error {
	in, err := f.c.DeployApp(s.Context(), r)
	if err != nil {
		return err
	}
	return relay(in, s)
}

// RollbackApp forwards the stream.
func (f *AppForwarder) RollbackApp(r *deployv1.RollbackAppRequest, s grpc.ServerStreamingServer[deployv1.RollbackAppResponse]) error {
	in, err := f.c.RollbackApp(s.Context(), r)
	if err != nil {
		return err
	}
	return relay(in, s)
}

// WatchDeployment forwards the stream.
func (f *AppForwarder) WatchDeployment(r *deployv1.WatchDeploymentRequest, s grpc.ServerStreamingServer[deployv1.WatchDeploymentResponse]) error {
	in, err := f.c.WatchDeployment(s.Context(), r)
	if err != nil {
		return err
	}
	return relay(in, s)
}

// relay copies a server stream from the deploy service to the caller.
func relay[T any](in grpc.ServerStreamingClient[T], out grpc.ServerStreamingServer[T]) error {
	for {
		m, err := in.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := out.Send(m); err != nil {
			return err
		}
	}
}

// ClusterForwarder serves ClusterService by calling the deploy service in
// another process.
type ClusterForwarder struct {
	deployv1.UnimplementedClusterServiceServer
	c deployv1.ClusterServiceClient
}

// NewClusterForwarder forwards to the deploy service over conn.
func NewClusterForwarder(conn grpc.ClientConnInterface) *ClusterForwarder {
	return &ClusterForwarder{c: deployv1.NewClusterServiceClient(conn)}
}

// AddCluster forwards the RPC.
func (f *ClusterForwarder) AddCluster(ctx context.Context, r *deployv1.AddClusterRequest) (*deployv1.AddClusterResponse, error) {
	return f.c.AddCluster(ctx, r)
}

// ListClusters forwards the RPC.
func (f *ClusterForwarder) ListClusters(ctx context.Context, r *deployv1.ListClustersRequest) (*deployv1.ListClustersResponse, error) {
	return f.c.ListClusters(ctx, r)
}

// RemoveCluster forwards the RPC.
func (f *ClusterForwarder) RemoveCluster(ctx context.Context, r *deployv1.RemoveClusterRequest) (*deployv1.RemoveClusterResponse, error) {
	return f.c.RemoveCluster(ctx, r)
}

// MapNamespace forwards the RPC.
func (f *ClusterForwarder) MapNamespace(ctx context.Context, r *deployv1.MapNamespaceRequest) (*deployv1.MapNamespaceResponse, error) {
	return f.c.MapNamespace(ctx, r)
}

// UnmapNamespace forwards the RPC.
func (f *ClusterForwarder) UnmapNamespace(ctx context.Context, r *deployv1.UnmapNamespaceRequest) (*deployv1.UnmapNamespaceResponse, error) {
	return f.c.UnmapNamespace(ctx, r)
}

// ListNamespaceMappings forwards the RPC.
func (f *ClusterForwarder) ListNamespaceMappings(ctx context.Context, r *deployv1.ListNamespaceMappingsRequest) (*deployv1.ListNamespaceMappingsResponse, error) {
	return f.c.ListNamespaceMappings(ctx, r)
}
