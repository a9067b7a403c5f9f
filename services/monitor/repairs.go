package monitor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
)

// repairConsumer resolves the incident a verified repair fixed: the
// repair service saw the workload healthy again (repair.succeeded). An
// alert that still fires afterwards reopens it, as any alert does.
func (s *Service) repairConsumer(log *slog.Logger) (*bus.Consumer, error) {
	r := bus.NewRouter[pgx.Tx]()
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.RepairSucceeded) error {
		if uuid.Validate(e.GetIncidentId()) != nil {
			return bus.Permanent(errors.New("repair.succeeded without a valid incident id"))
		}
		_, err := s.correlator.Resolve(ctx, tx, e.GetIncidentId(), "repair/"+e.GetRepairId())
		if errors.Is(err, incident.ErrNotFound) {
			// Pruned, or never ours: nothing to resolve.
			log.InfoContext(ctx, "repaired incident not found", "incident_id", e.GetIncidentId(), "repair_id", e.GetRepairId())
			return nil
		}
		return err
	})
	return bus.NewConsumer(s.deps.JetStream, bus.ConsumerConfig{
		Name: "monitor", Subjects: r.Subjects(), BatchSize: 50,
		// A repair verified long ago says nothing about the incident now.
		MaxEventAge: time.Hour,
	}, outbox.NewHandler(s.deps.Pool, "monitor-repairs", r), log, s.deps.Metrics)
}
