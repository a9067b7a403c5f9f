// Package repair is the repair service. Its work arrives with a later issue; until
// then it runs and stops with the others but consumes nothing, and its API
// answers Unimplemented through the gateway.
package repair

import (
	"context"
	"log/slog"
)

// Service is the repair service.
type Service struct{ log *slog.Logger }

// New returns the service.
func New(log *slog.Logger) *Service { return &Service{log: log.With("service", "repair")} }

// Run waits for ctx: nothing to consume yet.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
