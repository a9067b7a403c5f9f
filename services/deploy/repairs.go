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
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

// repairNamespace derives a rollback's deployment id from its repair's:
// the repair service asking again (a redelivery, a worker that stopped)
// finds the deployment it made instead of rolling back twice.
var repairNamespace = uuid.MustParse("5f0c1d9e-7a4b-4c61-9d0e-3a2f6b8c1e47")

// ErrNotAnApp means the name is not an app Vigil deploys.
var ErrNotAnApp = errors.New("not an app Vigil deploys")

// RollbackForRepair rolls app back to its last good revision, as
// repairID asked, through the deployer (so the app's revision history
// stays true), and waits until the deployment ends: nil once it has
// succeeded. It is idempotent by repairID.
func (s *Service) RollbackForRepair(ctx context.Context, app, repairID string) (*deployv1.Deployment, error) {
	id := uuid.NewSHA1(repairNamespace, []byte(repairID)).String()
	_, err := s.store.GetDeployment(ctx, s.deps.Pool, id)
	if errors.Is(err, postgres.ErrNotFound) {
		a, err := s.store.GetApp(ctx, s.deps.Pool, app, false)
		if errors.Is(err, postgres.ErrNotFound) {
			return nil, fmt.Errorf("%s: %w", app, ErrNotAnApp)
		} else if err != nil {
			return nil, err
		}
		// What runs is the newest deployment's: when it failed, return to
		// the app's current (last good) revision; when it succeeded and
		// broke since, to the one before it.
		to := int64(-1)
		latest, _, err := s.store.ListDeployments(ctx, s.deps.Pool, app, 1, "")
		if err != nil {
			return nil, err
		}
		if len(latest) == 1 && latest[0].GetStatus() == deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED && a.CurrentRevision > 0 {
			to = a.CurrentRevision
		}
		if _, err = s.deployer.Request(ctx, deployer.Request{App: app, RollbackTo: to, RequestedBy: "repair/" + repairID, ID: id}); err != nil {
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
			return d.Deployment, fmt.Errorf("rollback of %s (revision %d): %s", app, d.GetRevision(), d.GetReason())
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
	var fv []server.FieldViolation
	if req.GetApp() == "" {
		fv = append(fv, server.FieldViolation{Field: "app", Description: "required"})
	}
	if uuid.Validate(req.GetRepairId()) != nil {
		fv = append(fv, server.FieldViolation{Field: "repair_id", Description: "must be a UUID"})
	}
	if len(fv) > 0 {
		return nil, server.InvalidArgument("invalid request", fv...)
	}
	d, err := s.svc.RollbackForRepair(ctx, req.GetApp(), req.GetRepairId())
	switch {
	case errors.Is(err, ErrNotAnApp):
		return nil, status.Error(codes.NotFound, err.Error())
	case errors.Is(err, deployer.ErrNoRevision):
		return nil, status.Error(codes.FailedPrecondition, err.Error())
	case ctx.Err() != nil:
		return nil, status.FromContextError(ctx.Err()).Err()
	case err != nil && d != nil:
		// The rollout failed: the deployment says why.
		return nil, status.Error(codes.Aborted, err.Error())
	case err != nil:
		s.svc.readers.log.ErrorContext(ctx, "rollback for a repair failed", "app", req.GetApp(), "repair_id", req.GetRepairId(), "error", err)
		return nil, status.Error(codes.Internal, "internal error")
	}
	return &deployv1.RollbackForRepairResponse{Deployment: d}, nil
}
