// Package deploy is the deploy service. Its work arrives with a later issue; until
// then it runs and stops with the others but consumes nothing, and its API
// answers Unimplemented through the gateway.
package deploy

import (
	"context"
	"log/slog"
)

// Service is the deploy service.
type Service struct{ log *slog.Logger }

// New returns the service.
func New(log *slog.Logger) *Service { return &Service{log: log.With("service", "deploy")} }

// Run waits for ctx: nothing to consume yet.
func (s *Service) Run(ctx context.Context) error {
	<-ctx.Done()
	return nil
}
