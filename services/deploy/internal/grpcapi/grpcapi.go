// Package grpcapi is the deploy service's gRPC port: AppService and
// ClusterService. It checks the caller and the input before anything is
// written, reads through the store, makes every change through the
// domain — the registry (apps, clusters, namespace mappings) and the
// deployer (deployments), which hold the transactions and the events —
// and maps errors to status codes in one place.
package grpcapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/auth"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/deploy/internal/deployer"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/ownership"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/registry"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

const (
	// watchInterval is how often a streamed deployment is re-read: the
	// state is in Postgres, so any replica can stream any deployment.
	watchInterval = 250 * time.Millisecond
)

// Server implements AppService and ClusterService.
type Server struct {
	deployv1.UnimplementedAppServiceServer
	deployv1.UnimplementedClusterServiceServer
	pool     *pgxpool.Pool
	store    *postgres.Store
	registry *registry.Registry
	deployer *deployer.Deployer
	opts     Options
	log      *slog.Logger
}

// Options tune the API.
type Options struct {
	// Reserved are the names no app may have: an app's name is its
	// namespace's (required).
	Reserved *ownership.Reserved
	// Repairs, when set, grants and revokes the repair identity's access
	// to the namespaces admins map with allow_repairs; RepairReserved
	// says why a namespace may never be (reserved.Namespaces.Check).
	Repairs        RepairGrants
	RepairReserved func(namespace string) string
}

// namespaceCheckTimeout bounds the look at an app's namespace before a
// deployment is recorded: a cluster slow to answer fails the deployment
// itself, with the reason, rather than the call.
const namespaceCheckTimeout = 10 * time.Second

// New returns the deploy API.
func New(pool *pgxpool.Pool, store *postgres.Store, reg *registry.Registry, d *deployer.Deployer, opts Options, log *slog.Logger) *Server {
	return &Server{pool: pool, store: store, registry: reg, deployer: d, opts: opts, log: log}
}

func actor(ctx context.Context) string { return auth.Actor(ctx) }

// reach answers whether the caller may reach app a: its owner is one of
// the caller's teams (auth.CheckTeam).
func reach(ctx context.Context, a *postgres.App) error {
	return auth.CheckTeam(ctx, a.Owner, "app "+a.Name)
}

// reachApp loads app name and checks the caller may reach it.
func (s *Server) reachApp(ctx context.Context, name string) (*postgres.App, error) {
	a, err := s.store.GetApp(ctx, s.pool, name, false)
	if err != nil {
		return nil, toStatus(err)
	}
	if err := reach(ctx, a); err != nil {
		return nil, err
	}
	return a, nil
}

// reachDeployment checks the caller may reach the app of deployment id.
func (s *Server) reachDeployment(ctx context.Context, id string) error {
	d, err := s.store.GetDeployment(ctx, s.pool, id)
	if err != nil {
		return toStatus(err)
	}
	_, err = s.reachApp(ctx, d.App)
	return err
}

// --- apps

// CreateApp implements the RPC.
func (s *Server) CreateApp(ctx context.Context, req *deployv1.CreateAppRequest) (*deployv1.CreateAppResponse, error) {
	in := req.GetApp()
	if in == nil {
		in = &deployv1.App{}
	}
	in = normalized(in)
	var v violations
	validName(&v, "app.name", in.GetName())
	if why := s.opts.Reserved.Check(in.GetName()); why != "" && v.Len() == 0 {
		// The name is the namespace's.
		v.add("app.name", "%q would be the app's namespace, which is %s: choose another name", in.GetName(), why)
	}
	validApp(&v, "app.", in, req.GetSecrets(), nil)
	if err := v.err("invalid app"); err != nil {
		return nil, err
	}
	if err := auth.CheckTeam(ctx, in.GetOwner(), "app "+in.GetName()+" (owner)"); err != nil {
		return nil, err
	}
	if p, ok := auth.FromContext(ctx); ok && req.GetAdoptNamespace() && !p.Has(auth.Admin) {
		return nil, auth.Denied(p, auth.Admin, "adopt_namespace (handing a deleted app's namespace to another team)")
	}
	now := time.Now().Truncate(time.Microsecond) // what Postgres keeps
	a := &postgres.App{App: proto.Clone(in).(*deployv1.App), Secrets: maps.Clone(req.GetSecrets())}
	a.Namespace = a.Name
	a.CreateTime, a.UpdateTime = timestamppb.New(now), timestamppb.New(now)
	a.SecretNames, a.CurrentRevision = nil, 0
	err := s.registry.Create(ctx, a, req.GetAdoptNamespace(), actor(ctx))
	var (
		cluster *registry.ClusterError
		left    *registry.LeftBehindError
	)
	switch {
	case errors.As(err, &cluster) && cluster.Registered == 0:
		return nil, server.InvalidArgument("no cluster", server.FieldViolation{Field: "app.cluster", Description: cluster.Error()})
	case errors.As(err, &cluster):
		return nil, server.InvalidArgument("which cluster?", server.FieldViolation{Field: "app.cluster", Description: cluster.Error()})
	case errors.As(err, &left):
		return nil, leftBehind(left.Tombstone)
	case err != nil:
		return nil, toStatus(err)
	}
	return &deployv1.CreateAppResponse{App: a.App}, nil
}

// leftBehind is FailedPrecondition for a name whose namespace another
// team's deleted app left behind, with a google.rpc.PreconditionFailure.
func leftBehind(t *postgres.Tombstone) error {
	owner := "team " + t.Owner
	if t.Owner == "" {
		owner = "no team"
	}
	desc := fmt.Sprintf("namespace %s in cluster %s belonged to the deleted app %s of %s (deleted by %s at %s without its resources, so it still holds what was left there)",
		t.Namespace, t.Cluster, t.App, owner, t.DeletedBy, t.DeletedAt.UTC().Format(time.RFC3339))
	st := status.Newf(codes.FailedPrecondition, "app %s cannot be created: %s; choose another name, or ask an admin to hand the namespace over (vigil apps create --adopt-namespace)", t.Namespace, desc)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: "NAMESPACE_OF_DELETED_APP", Subject: "namespace/" + t.Namespace, Description: desc,
	}}}); err == nil {
		st = d
	}
	return st.Err()
}

// normalized is app with its domain as a host is compared: without case
// or the trailing dot of a fully qualified name.
func normalized(app *deployv1.App) *deployv1.App {
	if app.GetDomain() == "" {
		return app
	}
	app = proto.Clone(app).(*deployv1.App)
	app.Domain = postgres.NormalizeDomain(app.Domain)
	return app
}

// GetApp implements the RPC.
func (s *Server) GetApp(ctx context.Context, req *deployv1.GetAppRequest) (*deployv1.GetAppResponse, error) {
	if err := nameOnly("name", req.GetName()); err != nil {
		return nil, err
	}
	a, err := s.reachApp(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	return &deployv1.GetAppResponse{App: a.App}, nil
}

// ListApps implements the RPC.
func (s *Server) ListApps(ctx context.Context, req *deployv1.ListAppsRequest) (*deployv1.ListAppsResponse, error) {
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	teams, all, unowned := auth.Teams(ctx)
	apps, next, err := s.store.ListApps(ctx, s.pool, size, req.GetPageToken(), teams, all, unowned)
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &deployv1.ListAppsResponse{NextPageToken: next}
	for _, a := range apps {
		resp.Apps = append(resp.Apps, a.App)
	}
	return resp, nil
}

var updatable = map[string]bool{
	"display_name": true, "domain": true, "framework": true, "plan": true, "image": true,
	"replicas": true, "port": true, "env": true, "owner": true, "auto_repair": true, "memory_limit_bytes": true,
}

// UpdateApp implements the RPC.
func (s *Server) UpdateApp(ctx context.Context, req *deployv1.UpdateAppRequest) (*deployv1.UpdateAppResponse, error) {
	in := normalized(req.GetApp())
	var v violations
	if err := nameOnly("app.name", in.GetName()); err != nil {
		return nil, err
	}
	paths := map[string]bool{}
	for _, p := range req.GetUpdateMask().GetPaths() {
		if !updatable[p] {
			v.add("update_mask", "%q cannot be updated (name, cluster and namespace are fixed)", p)
		}
		paths[p] = true
	}
	if len(paths) == 0 && len(req.GetSetSecrets()) == 0 && len(req.GetRemoveSecrets()) == 0 {
		v.add("update_mask", "is required: name the fields to change")
	}
	validApp(&v, "app.", in, req.GetSetSecrets(), paths)
	if err := v.err("invalid update"); err != nil {
		return nil, err
	}
	a, err := s.registry.Update(ctx, in.GetName(), func(a *postgres.App) error {
		if err := reach(ctx, a); err != nil {
			return err
		}
		if paths["owner"] {
			if err := auth.CheckTeam(ctx, in.GetOwner(), "app "+a.Name+" (new owner)"); err != nil {
				return err
			}
		}
		set := map[string]func(){
			"display_name":       func() { a.DisplayName = in.GetDisplayName() },
			"domain":             func() { a.Domain = in.GetDomain() },
			"framework":          func() { a.Framework = in.GetFramework() },
			"plan":               func() { a.Plan = in.GetPlan() },
			"image":              func() { a.Image = in.GetImage() },
			"replicas":           func() { a.Replicas = in.GetReplicas() },
			"port":               func() { a.Port = in.GetPort() },
			"env":                func() { a.Env = in.GetEnv() },
			"owner":              func() { a.Owner = in.GetOwner() },
			"auto_repair":        func() { a.AutoRepair = in.GetAutoRepair() },
			"memory_limit_bytes": func() { a.MemoryLimitBytes = in.GetMemoryLimitBytes() },
		}
		for p := range paths {
			set[p]()
		}
		maps.Copy(a.Secrets, req.GetSetSecrets())
		for _, k := range req.GetRemoveSecrets() {
			delete(a.Secrets, k)
		}
		return nil
	})
	if both, ok := errors.AsType[*registry.SecretInEnvError](err); ok {
		return nil, server.InvalidArgument("invalid update", server.FieldViolation{
			Field:       "app.env[" + both.Name + "]",
			Description: "is also a secret: a name is either configuration or a secret",
		})
	}
	if err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.UpdateAppResponse{App: a.App}, nil
}

// DeleteApp implements the RPC.
func (s *Server) DeleteApp(ctx context.Context, req *deployv1.DeleteAppRequest) (*deployv1.DeleteAppResponse, error) {
	if err := nameOnly("name", req.GetName()); err != nil {
		return nil, err
	}
	a, err := s.reachApp(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	if req.GetDeleteResources() {
		// The cluster first: an app Vigil forgot while its namespace stayed
		// would be running with nobody watching.
		r, err := s.deployer.RemoveResources(ctx, a)
		switch {
		case errors.Is(err, kube.ErrChanged):
			return nil, status.Errorf(codes.Aborted, "namespace %s in cluster %s changed while Vigil was deleting it: try again", a.Namespace, a.Cluster)
		case errors.Is(err, postgres.ErrNotFound):
			return nil, toStatus(err)
		case err != nil:
			return nil, status.Errorf(codes.Unavailable, "delete the resources of app %s in cluster %s: %v", a.Name, a.Cluster, err)
		case r.Foreign != nil:
			// Not the app's namespace: only what Vigil labelled for the
			// app goes; the namespace and the rest of it stay.
			s.log.InfoContext(ctx, "app namespace left alone", "app", a.Name, "namespace", a.Namespace,
				"cluster", a.Cluster, "why", r.Foreign.Error(), "deleted", r.Objects)
		default:
			s.log.InfoContext(ctx, "app namespace deleted", "app", a.Name, "namespace", a.Namespace, "cluster", a.Cluster)
		}
	}
	if err := s.registry.Delete(ctx, a, !req.GetDeleteResources(), actor(ctx)); err != nil {
		return nil, toStatus(err)
	}
	// After the app is gone, so that a failure here cannot keep it; a
	// grant left behind is revoked with its namespace, or by hand.
	if err := s.deployer.RevokeRepair(ctx, a); err != nil {
		s.log.WarnContext(ctx, "repair grant of a deleted app left in its namespace", "app", a.Name, "namespace", a.Namespace, "cluster", a.Cluster, "error", err)
	}
	return &deployv1.DeleteAppResponse{}, nil
}

// --- deployments

// DeployApp implements the RPC.
func (s *Server) DeployApp(req *deployv1.DeployAppRequest, stream grpc.ServerStreamingServer[deployv1.DeployAppResponse]) error {
	ctx := stream.Context()
	if err := nameOnly("name", req.GetName()); err != nil {
		return err
	}
	if req.GetImage() != "" {
		var v violations
		validImage(&v, "image", req.GetImage())
		if err := v.err("invalid image"); err != nil {
			return err
		}
	}
	if err := s.checkNamespace(ctx, req.GetName()); err != nil {
		return err
	}
	dep, err := s.deployer.Request(ctx, deployer.Request{App: req.GetName(), Image: req.GetImage(), RequestedBy: actor(ctx)})
	if err != nil {
		return toStatus(err)
	}
	return s.watch(ctx, dep.Id, func(d *deployv1.Deployment) error {
		return stream.Send(&deployv1.DeployAppResponse{Deployment: d})
	})
}

// checkNamespace refuses, before a deployment is recorded, to deploy app
// name for a caller who may not reach it, or into a namespace that is not
// the app's (deployer.CheckNamespace). When the cluster cannot be asked,
// the deployment goes ahead and fails with the reason, recorded; it
// checks again before applying anything.
func (s *Server) checkNamespace(ctx context.Context, name string) error {
	a, err := s.reachApp(ctx, name)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, namespaceCheckTimeout)
	defer cancel()
	err = s.deployer.CheckNamespace(cctx, a)
	if fe, ok := errors.AsType[*ownership.ForeignError](err); ok {
		return foreignNamespace(a, fe)
	}
	if err != nil && ctx.Err() == nil {
		s.log.DebugContext(ctx, "namespace check skipped", "app", a.Name, "cluster", a.Cluster, "error", err)
	}
	return nil
}

// foreignNamespace is FailedPrecondition naming the namespace, with a
// google.rpc.PreconditionFailure detail for programs.
func foreignNamespace(a *postgres.App, fe *ownership.ForeignError) error {
	typ, what := "NAMESPACE_NOT_OWNED", "choose another app name (the name is the namespace's): vigil apps delete "+a.Name+", then create it under another name"
	if fe.Reserved != "" {
		typ = "NAMESPACE_RESERVED"
	}
	st := status.Newf(codes.FailedPrecondition, "app %s cannot be deployed in cluster %s: %s; %s", a.Name, a.Cluster, fe.Error(), what)
	if d, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{{
		Type: typ, Subject: "namespace/" + fe.Namespace, Description: fe.Error(),
	}}}); err == nil {
		st = d
	}
	return st.Err()
}

// domainTaken is AlreadyExists (409 over REST) for a domain another app
// serves, with a field violation on app.domain naming that app (within
// one organisation, knowing whose it is helps) and an ErrorInfo for
// programs.
func domainTaken(e *postgres.DomainTakenError) error {
	desc := fmt.Sprintf("%s is served by another app: choose another host, or free it there first", e.Domain)
	if e.App != "" {
		desc = fmt.Sprintf("%s is served by app %s: choose another host, or remove it from app %s first", e.Domain, e.App, e.App)
	}
	st := server.WithViolations(status.New(codes.AlreadyExists, "domain "+e.Domain+" is taken: "+desc),
		server.FieldViolation{Field: "app.domain", Description: desc})
	if d, err := st.WithDetails(
		&errdetails.ErrorInfo{Reason: "DOMAIN_TAKEN", Domain: "vigil", Metadata: map[string]string{"domain": e.Domain, "app": e.App}},
	); err == nil {
		st = d
	}
	return st.Err()
}

// RollbackApp implements the RPC.
func (s *Server) RollbackApp(req *deployv1.RollbackAppRequest, stream grpc.ServerStreamingServer[deployv1.RollbackAppResponse]) error {
	ctx := stream.Context()
	if err := nameOnly("name", req.GetName()); err != nil {
		return err
	}
	to := req.GetToRevision()
	switch {
	case to < 0:
		return server.InvalidArgument("invalid revision", server.FieldViolation{Field: "to_revision", Description: "must not be negative"})
	case to == 0:
		to = -1
	}
	if err := s.checkNamespace(ctx, req.GetName()); err != nil {
		return err
	}
	dep, err := s.deployer.Request(ctx, deployer.Request{App: req.GetName(), RollbackTo: to, RequestedBy: actor(ctx)})
	if err != nil {
		return toStatus(err)
	}
	return s.watch(ctx, dep.Id, func(d *deployv1.Deployment) error {
		return stream.Send(&deployv1.RollbackAppResponse{Deployment: d})
	})
}

// WatchDeployment implements the RPC.
func (s *Server) WatchDeployment(req *deployv1.WatchDeploymentRequest, stream grpc.ServerStreamingServer[deployv1.WatchDeploymentResponse]) error {
	if err := validID(req.GetId()); err != nil {
		return err
	}
	if err := s.reachDeployment(stream.Context(), req.GetId()); err != nil {
		return err
	}
	return s.watch(stream.Context(), req.GetId(), func(d *deployv1.Deployment) error {
		return stream.Send(&deployv1.WatchDeploymentResponse{Deployment: d})
	})
}

// watch sends the deployment now and after every change until it ends.
func (s *Server) watch(ctx context.Context, id string, send func(*deployv1.Deployment) error) error {
	var last *deployv1.Deployment
	t := time.NewTicker(watchInterval)
	defer t.Stop()
	for {
		d, err := s.store.GetDeployment(ctx, s.pool, id)
		if err != nil {
			return toStatus(err)
		}
		if !proto.Equal(d.Deployment, last) {
			if err := send(d.Deployment); err != nil {
				return err
			}
			last = d.Deployment
		}
		if ended(d.Deployment) {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

func ended(d *deployv1.Deployment) bool {
	return d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED ||
		d.GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED
}

// GetDeployment implements the RPC.
func (s *Server) GetDeployment(ctx context.Context, req *deployv1.GetDeploymentRequest) (*deployv1.GetDeploymentResponse, error) {
	if err := validID(req.GetId()); err != nil {
		return nil, err
	}
	if err := s.reachDeployment(ctx, req.GetId()); err != nil {
		return nil, err
	}
	d, err := s.store.GetDeployment(ctx, s.pool, req.GetId())
	if err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.GetDeploymentResponse{Deployment: d.Deployment}, nil
}

// ListDeployments implements the RPC.
func (s *Server) ListDeployments(ctx context.Context, req *deployv1.ListDeploymentsRequest) (*deployv1.ListDeploymentsResponse, error) {
	if err := nameOnly("app", req.GetApp()); err != nil {
		return nil, err
	}
	size, err := pageSize(req.GetPageSize())
	if err != nil {
		return nil, err
	}
	if _, err := s.reachApp(ctx, req.GetApp()); err != nil {
		return nil, err
	}
	ds, next, err := s.store.ListDeployments(ctx, s.pool, req.GetApp(), size, req.GetPageToken())
	if err != nil {
		return nil, toStatus(err)
	}
	resp := &deployv1.ListDeploymentsResponse{NextPageToken: next}
	for _, d := range ds {
		resp.Deployments = append(resp.Deployments, d.Deployment)
	}
	return resp, nil
}

// RenderApp implements the RPC.
func (s *Server) RenderApp(ctx context.Context, req *deployv1.RenderAppRequest) (*deployv1.RenderAppResponse, error) {
	if err := nameOnly("name", req.GetName()); err != nil {
		return nil, err
	}
	a, err := s.reachApp(ctx, req.GetName())
	if err != nil {
		return nil, err
	}
	y, err := s.deployer.Render(a)
	if err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.RenderAppResponse{Yaml: string(y)}, nil
}

// --- clusters

// AddCluster implements the RPC.
func (s *Server) AddCluster(ctx context.Context, req *deployv1.AddClusterRequest) (*deployv1.AddClusterResponse, error) {
	var v violations
	validName(&v, "name", req.GetName())
	if len(req.GetKubeconfig()) == 0 {
		v.add("kubeconfig", "is required")
	} else if len(req.GetKubeconfig()) > 1<<20 {
		v.add("kubeconfig", "must be at most 1 MiB")
	}
	if err := v.err("invalid cluster"); err != nil {
		return nil, err
	}
	kc, err := kube.Inspect(ctx, req.GetKubeconfig(), req.GetContext())
	if err != nil {
		msg := "invalid kubeconfig"
		if _, ok := errors.AsType[*kube.UnreachableError](err); ok {
			msg = "cluster not reachable"
		}
		return nil, server.InvalidArgument(msg, server.FieldViolation{Field: "kubeconfig", Description: err.Error()})
	}
	c := &deployv1.Cluster{Name: req.GetName(), Server: kc.Server, Version: kc.Version, CreateTime: timestamppb.Now()}
	if err := s.registry.AddCluster(ctx, c, kc.Kubeconfig); err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.AddClusterResponse{Cluster: c}, nil
}

// ListClusters implements the RPC.
func (s *Server) ListClusters(ctx context.Context, _ *deployv1.ListClustersRequest) (*deployv1.ListClustersResponse, error) {
	cs, err := s.store.ListClusters(ctx, s.pool)
	if err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.ListClustersResponse{Clusters: cs}, nil
}

// RemoveCluster implements the RPC.
func (s *Server) RemoveCluster(ctx context.Context, req *deployv1.RemoveClusterRequest) (*deployv1.RemoveClusterResponse, error) {
	if err := nameOnly("name", req.GetName()); err != nil {
		return nil, err
	}
	if err := s.registry.RemoveCluster(ctx, req.GetName()); err != nil {
		if errors.Is(err, postgres.ErrInUse) {
			return nil, status.Errorf(codes.FailedPrecondition, "cluster %s: apps still target it: delete them first", req.GetName())
		}
		return nil, toStatus(err)
	}
	return &deployv1.RemoveClusterResponse{}, nil
}

// --- helpers

func nameOnly(field, name string) error {
	if name == "" {
		return server.InvalidArgument("missing "+field, server.FieldViolation{Field: field, Description: "is required"})
	}
	return nil
}

func validID(id string) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return server.InvalidArgument("invalid deployment id", server.FieldViolation{Field: "id", Description: fmt.Sprintf("%q is not a UUID", id)})
	}
	return nil
}

// pageSize is a request's page size (server.PageSize).
func pageSize(n int32) (int, error) {
	var bad server.BadRequestError
	size := server.PageSize(&bad, "page_size", n)
	return size, bad.Err("invalid page size")
}

// toStatus maps deploy's sentinels to their codes; the error interceptor
// (pkg/server) answers the rest.
func toStatus(err error) error {
	var (
		fe    *render.FieldError
		taken *postgres.DomainTakenError
	)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, postgres.ErrExists):
		return status.Error(codes.AlreadyExists, "already exists")
	case errors.Is(err, postgres.ErrBusy):
		return status.Error(codes.FailedPrecondition, "a deployment of the app is under way: wait for it (vigil apps history)")
	case errors.Is(err, deployer.ErrNoGoodRevision):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, deployer.ErrNoRevision):
		return status.Error(codes.FailedPrecondition, "no such revision to roll back to (vigil apps history lists them)")
	case errors.As(err, &fe):
		return server.InvalidArgument("invalid app", server.FieldViolation{Field: "app." + fe.Field, Description: fe.Description})
	case errors.As(err, &taken):
		return domainTaken(taken)
	}
	return err
}
