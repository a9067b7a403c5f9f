package repair

import (
	"context"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/pkg/db"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// Guardrails returns the guardrails set for scope ("global" when empty)
// and those that apply there.
func (s *Service) Guardrails(ctx context.Context, scope string) (set, effective *repairv1.Guardrails, err error) {
	if scope == "" {
		scope = "global"
	}
	if err := guard.Validate(&repairv1.Guardrails{Scope: scope}); err != nil {
		return nil, nil, err
	}
	return s.guardrails(ctx, s.deps.Pool, scope)
}

func (s *Service) guardrails(ctx context.Context, q postgres.Querier, scope string) (set, effective *repairv1.Guardrails, err error) {
	sc, err := guard.ParseScope(scope)
	if err != nil {
		return nil, nil, err
	}
	layers, own, err := s.layers(ctx, q, guard.Scope{Cluster: sc.Cluster, Namespace: sc.Namespace}, sc.App)
	if err != nil {
		return nil, nil, err
	}
	if own == nil {
		own = &repairv1.Guardrails{Scope: scope}
	}
	return own, guard.ToProto(guard.Effective(s.base, layers...), scope), nil
}

// SetGuardrails changes the fields of g present (and clears those named)
// for g's scope, as by.
func (s *Service) SetGuardrails(ctx context.Context, g *repairv1.Guardrails, clearFields []string, by string) (set, effective *repairv1.Guardrails, err error) {
	if g.GetScope() == "" {
		g = proto.Clone(g).(*repairv1.Guardrails)
		g.Scope = "global"
	}
	// guard.Apply checks g, naming the request's fields.
	err = db.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		cur, err := s.store.Guardrails(ctx, tx, g.GetScope())
		if err != nil {
			return err
		}
		next, err := guard.Apply(cur, g, clearFields)
		if err != nil {
			return err
		}
		if err := s.store.SetGuardrails(ctx, tx, next, by, s.now()); err != nil {
			return err
		}
		set, effective, err = s.guardrails(ctx, tx, g.GetScope())
		return err
	})
	if err == nil {
		s.log.InfoContext(ctx, "guardrails set", "scope", g.GetScope(), "by", by)
		// Queued automatic repairs see a kill switch at once.
		s.poke()
	}
	return set, effective, err
}
