package grpcapi

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/vigil-ops/vigil/pkg/auth"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/services/deploy/internal/registry"
)

// RepairGrants are the repair identity's grants in admins' namespaces
// (deploy's GrantRepair and RevokeRepair).
type RepairGrants interface {
	GrantRepair(ctx context.Context, cluster, namespace string) error
	RevokeRepair(ctx context.Context, cluster, namespace string) error
}

// maxTeamLen bounds a team's name, as the gateway's users' teams.
const maxTeamLen = 63

func validNamespace(v *violations, field, ns string) {
	switch {
	case ns == "":
		v.add(field, "is required")
	case len(validation.IsDNS1123Label(ns)) > 0:
		v.add(field, "%q is not a namespace name (lowercase letters, digits and '-', at most 63)", ns)
	}
}

// MapNamespace implements the RPC: the namespace's incidents belong to
// the team from now on (those already open keep their owner).
func (s *Server) MapNamespace(ctx context.Context, req *deployv1.MapNamespaceRequest) (*deployv1.MapNamespaceResponse, error) {
	m := req.GetMapping()
	var v violations
	validNamespace(&v, "mapping.namespace", m.GetNamespace())
	switch {
	case m.GetTeam() == "":
		v.add("mapping.team", "is required")
	case len(m.GetTeam()) > maxTeamLen:
		v.add("mapping.team", "must be at most %d characters", maxTeamLen)
	}
	if m.GetCluster() != "" {
		validName(&v, "mapping.cluster", m.GetCluster())
	}
	if err := v.err("invalid namespace mapping"); err != nil {
		return nil, err
	}
	if m.GetAllowRepairs() {
		if m.GetCluster() == "" {
			v.add("mapping.cluster", "is required with allow_repairs: repairs are granted in one cluster's namespace")
		}
		if why := s.repairReserved(m.GetNamespace()); why != "" {
			return nil, status.Errorf(codes.FailedPrecondition, "namespace %s: %s", m.GetNamespace(), why)
		}
	}
	if err := v.err("invalid namespace mapping"); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	out := &deployv1.NamespaceMapping{
		Cluster: m.GetCluster(), Namespace: m.GetNamespace(), Team: m.GetTeam(),
		UpdateTime: timestamppb.Now(), UpdatedBy: p.String(), AllowRepairs: m.GetAllowRepairs(),
	}
	err := s.registry.MapNamespace(ctx, out)
	if taken, ok := errors.AsType[*registry.AppNamespaceError](err); ok {
		return nil, status.Error(codes.FailedPrecondition, taken.Error())
	}
	if errors.Is(err, registry.ErrUnknownCluster) {
		return nil, status.Errorf(codes.NotFound, "cluster %s is not registered (vigil clusters list)", out.GetCluster())
	}
	if err != nil {
		return nil, toStatus(err)
	}
	if err := s.applyRepairGrant(ctx, out.GetCluster(), out.GetNamespace(), out.GetAllowRepairs()); err != nil {
		return nil, err
	}
	return &deployv1.MapNamespaceResponse{Mapping: out}, nil
}

// UnmapNamespace implements the RPC.
func (s *Server) UnmapNamespace(ctx context.Context, req *deployv1.UnmapNamespaceRequest) (*deployv1.UnmapNamespaceResponse, error) {
	var v violations
	validNamespace(&v, "namespace", req.GetNamespace())
	if err := v.err("invalid namespace"); err != nil {
		return nil, err
	}
	if err := s.registry.UnmapNamespace(ctx, req.GetCluster(), req.GetNamespace()); err != nil {
		return nil, toStatus(err)
	}
	if req.GetCluster() != "" {
		if err := s.applyRepairGrant(ctx, req.GetCluster(), req.GetNamespace(), false); err != nil {
			return nil, err
		}
	}
	return &deployv1.UnmapNamespaceResponse{}, nil
}

// ListNamespaceMappings implements the RPC.
func (s *Server) ListNamespaceMappings(ctx context.Context, _ *deployv1.ListNamespaceMappingsRequest) (*deployv1.ListNamespaceMappingsResponse, error) {
	ms, err := s.store.Mappings(ctx, s.pool)
	if err != nil {
		return nil, toStatus(err)
	}
	return &deployv1.ListNamespaceMappingsResponse{Mappings: ms}, nil
}

// applyRepairGrant grants (allow) or revokes the repair identity's access
// to namespace of cluster, after the mapping is recorded: a cluster that
// cannot be reached now is answered Unavailable, and mapping again
// (idempotent) finishes it; deploy reconciles the grants when it starts.
func (s *Server) applyRepairGrant(ctx context.Context, cluster, namespace string, allow bool) error {
	if s.opts.Repairs == nil || cluster == "" {
		return nil
	}
	var err error
	if allow {
		err = s.opts.Repairs.GrantRepair(ctx, cluster, namespace)
	} else {
		err = s.opts.Repairs.RevokeRepair(ctx, cluster, namespace)
	}
	switch {
	case err == nil:
		return nil
	case apierrors.IsNotFound(err):
		return status.Errorf(codes.FailedPrecondition, "namespace %s does not exist in cluster %s: the mapping is recorded, repairs are not granted (map it again once it exists)", namespace, cluster)
	}
	s.log.WarnContext(ctx, "repair grant not applied", "cluster", cluster, "namespace", namespace, "allow", allow, "error", err)
	return status.Errorf(codes.Unavailable, "the mapping is recorded, but the repair grant in cluster %s could not be applied (%v): map it again", cluster, err)
}

// repairReserved says why Vigil never repairs in ns ("" when it may).
func (s *Server) repairReserved(ns string) string {
	if s.opts.RepairReserved == nil {
		return ""
	}
	return s.opts.RepairReserved(ns)
}
