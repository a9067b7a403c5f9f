package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/deploy/internal/deployer"
	"github.com/vigil-ops/vigil/services/deploy/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// repairNamespace derives a repair's deployment id from its repair's:
// the repair service asking again (a redelivery, a worker that stopped)
// finds the deployment it made instead of changing the app twice.
var repairNamespace = uuid.MustParse("5f0c1d9e-7a4b-4c61-9d0e-3a2f6b8c1e47")

// ErrNotAnApp means the name is not an app Vigil deploys.
var ErrNotAnApp = errors.New("not an app Vigil deploys")

// repairChange is what a repair asks of one of Vigil's apps: a rollback,
// or a new replica count, or a new memory limit.
type repairChange struct {
	app, repairID string
	kind          changeKind
	replicas      int32
	container     string
	memoryLimit   int64
}

type changeKind int

const (
	rollback changeKind = iota
	scale
	memoryLimit
)

func (c repairChange) check() error {
	var bad server.BadRequestError
	if c.app == "" {
		bad.Add("app", "required")
	}
	if uuid.Validate(c.repairID) != nil {
		bad.Add("repair_id", "must be a UUID")
	}
	switch c.kind {
	case rollback:
	case memoryLimit:
		if c.container != "" && c.container != render.ContainerName {
			bad.Addf("container", "an app has one container, %q; got %q", render.ContainerName, c.container)
		}
		if c.memoryLimit <= 0 || c.memoryLimit > grpcapi.MaxMemoryLimit {
			bad.Addf("limit_bytes", "must be between 1 and %d (256 GiB), got %d", int64(grpcapi.MaxMemoryLimit), c.memoryLimit)
		}
	case scale:
		// 0 is the plan's default in an app's spec, not "no pods": an app
		// Vigil deploys is stopped by a person, not by a repair.
		if c.replicas < 1 || c.replicas > grpcapi.MaxReplicas {
			bad.Addf("replicas", "must be between 1 and %d, got %d", grpcapi.MaxReplicas, c.replicas)
		}
	}
	// A repair's request outside what the app may be given: nothing
	// is changed.
	return bad.Err("invalid request")
}

// RollbackForRepair rolls app back to its last good revision, as
// repairID asked, through the deployer (so the app's revision history
// stays true), and waits until the deployment ends: nil once it has
// succeeded. It is idempotent by repairID.
func (s *Service) RollbackForRepair(ctx context.Context, app, repairID string) (*deployv1.Deployment, error) {
	return s.forRepair(ctx, repairChange{app: app, repairID: repairID, kind: rollback})
}

// ScaleForRepair sets app's replica count (with autoscaling, its
// minimum) as repairID asked and deploys it, as RollbackForRepair does:
// the app keeps the count for its next deployments.
func (s *Service) ScaleForRepair(ctx context.Context, app, repairID string, replicas int32) (*deployv1.Deployment, error) {
	return s.forRepair(ctx, repairChange{app: app, repairID: repairID, kind: scale, replicas: replicas})
}

// SetMemoryLimitForRepair sets the memory limit of app's container
// (container: "" or the app's one) as repairID asked and deploys it, as
// RollbackForRepair does: the app keeps the limit for its next
// deployments.
func (s *Service) SetMemoryLimitForRepair(ctx context.Context, app, repairID, container string, limitBytes int64) (*deployv1.Deployment, error) {
	return s.forRepair(ctx, repairChange{app: app, repairID: repairID, kind: memoryLimit, container: container, memoryLimit: limitBytes})
}

func (s *Service) forRepair(ctx context.Context, c repairChange) (*deployv1.Deployment, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	id := uuid.NewSHA1(repairNamespace, []byte(c.repairID)).String()
	_, err := s.store.GetDeployment(ctx, s.deps.Pool, id)
	if errors.Is(err, postgres.ErrNotFound) {
		req := deployer.Request{App: c.app, RequestedBy: "repair/" + c.repairID, ID: id, Replicas: c.replicas, MemoryLimitBytes: c.memoryLimit}
		if c.kind == rollback {
			// The last good revision, as the repair service's executor
			// found it (pkg/workload).
			req.RollbackTo = -1
		}
		_, err = s.deployer.Request(ctx, req)
		switch {
		case errors.Is(err, postgres.ErrNotFound):
			return nil, fmt.Errorf("%s: %w", c.app, ErrNotAnApp)
		case errors.Is(err, postgres.ErrExists):
			// The same repair asked at the same moment: wait for its
			// deployment.
		case err != nil:
			return nil, err
		}
	} else if err != nil {
		return nil, err
	}
	t := time.NewTicker(250 * time.Millisecond)
	defer t.Stop()
	for {
		d, err := s.store.GetDeployment(ctx, s.deps.Pool, id)
		if err != nil {
			return nil, err
		}
		switch d.GetStatus() {
		case deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED:
			return d.Deployment, nil
		case deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:
			return d.Deployment, fmt.Errorf("deployment of %s for repair %s (revision %d): %s", c.app, c.repairID, d.GetRevision(), d.GetReason())
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

// rollbackServer serves RepairRollbackService to the repair service in
// another process (the policy admits only it).
type rollbackServer struct {
	deployv1.UnimplementedRepairRollbackServiceServer
	svc *Service
}

// RollbackForRepair implements RepairRollbackService.
func (s rollbackServer) RollbackForRepair(ctx context.Context, req *deployv1.RollbackForRepairRequest) (*deployv1.RollbackForRepairResponse, error) {
	d, err := s.svc.RollbackForRepair(ctx, req.GetApp(), req.GetRepairId())
	if err != nil {
		return nil, changeStatus(ctx, err, d, req.GetApp(), req.GetRepairId())
	}
	return &deployv1.RollbackForRepairResponse{Deployment: d}, nil
}

// ScaleForRepair implements RepairRollbackService.
func (s rollbackServer) ScaleForRepair(ctx context.Context, req *deployv1.ScaleForRepairRequest) (*deployv1.ScaleForRepairResponse, error) {
	d, err := s.svc.ScaleForRepair(ctx, req.GetApp(), req.GetRepairId(), req.GetReplicas())
	if err != nil {
		return nil, changeStatus(ctx, err, d, req.GetApp(), req.GetRepairId())
	}
	return &deployv1.ScaleForRepairResponse{Deployment: d}, nil
}

// SetMemoryLimitForRepair implements RepairRollbackService.
func (s rollbackServer) SetMemoryLimitForRepair(ctx context.Context, req *deployv1.SetMemoryLimitForRepairRequest) (*deployv1.SetMemoryLimitForRepairResponse, error) {
	d, err := s.svc.SetMemoryLimitForRepair(ctx, req.GetApp(), req.GetRepairId(), req.GetContainer(), req.GetLimitBytes())
	if err != nil {
		return nil, changeStatus(ctx, err, d, req.GetApp(), req.GetRepairId())
	}
	return &deployv1.SetMemoryLimitForRepairResponse{Deployment: d}, nil
}

// changeStatus maps what a change for a repair returned (d: the deployment,
// when one ended) to the caller's status.
func changeStatus(ctx context.Context, err error, d *deployv1.Deployment, app, repairID string) error {
	var invalid *server.BadRequestError
	switch {
	case errors.As(err, &invalid):
		return invalid
	case errors.Is(err, ErrNotAnApp):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, deployer.ErrNoRevision), errors.Is(err, deployer.ErrNoGoodRevision), errors.Is(err, postgres.ErrBusy):
		return status.Error(codes.FailedPrecondition, err.Error())
	case ctx.Err() != nil:
		return ctx.Err() // the caller's: the error interceptor answers it
	case d != nil:
		// The rollout failed: the deployment says why.
		return status.Error(codes.Aborted, err.Error())
	}
	// The error interceptor (pkg/server) logs it and answers Internal.
	return fmt.Errorf("change of app %s for repair %s: %w", app, repairID, err)
}
