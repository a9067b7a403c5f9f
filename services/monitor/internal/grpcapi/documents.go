package grpcapi

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/monitor/internal/escalation"
)

// documents serves the changes and reads of a team's stored document
// (schedules, policies): a change is for the document's team, the stored
// one when it exists, so that naming one's own team in a request does not
// take another team's document over.
type documents[T escalation.Document] struct {
	pool  *pgxpool.Pool
	now   func() time.Time
	store escalation.Stored[T]
	// kind names it in refusals; field is its request field ("schedule.").
	kind, field string
	validate    func(T, string) error
}

func (d documents[T]) put(ctx context.Context, v T, create bool) (T, error) {
	var out T
	if err := d.validate(v, d.field); err != nil {
		return out, err
	}
	if err := auth.CheckTeam(ctx, v.GetTeam(), d.kind+" "+v.GetName()); err != nil {
		return out, err
	}
	err := db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		if !create {
			if err := d.reach(ctx, tx, v.GetName()); err != nil {
				return err
			}
		}
		var err error
		out, err = d.store.Put(ctx, tx, v, create, false, actor(ctx), d.now())
		return err
	})
	return out, toStatus(err)
}

// reach checks the caller may change the document name (of its stored
// team).
func (d documents[T]) reach(ctx context.Context, q escalation.Querier, name string) error {
	team, err := d.store.Team(ctx, q, name)
	if err != nil {
		return err
	}
	return auth.CheckTeam(ctx, team, d.kind+" "+name)
}

func (d documents[T]) get(ctx context.Context, name string) (T, error) {
	if err := required("name", name); err != nil {
		var zero T
		return zero, err
	}
	v, err := d.store.Get(ctx, d.pool, name)
	return v, toStatus(err)
}

// list lists team's documents, or every one when team is "".
func (d documents[T]) list(ctx context.Context, team string) ([]T, error) {
	if team == "" {
		team = "*"
	}
	vs, err := d.store.List(ctx, d.pool, team)
	return vs, toStatus(err)
}

func (d documents[T]) delete(ctx context.Context, name string) error {
	if err := required("name", name); err != nil {
		return err
	}
	return toStatus(db.InTx(ctx, d.pool, func(tx pgx.Tx) error {
		if err := d.reach(ctx, tx, name); err != nil {
			return err
		}
		return d.store.Delete(ctx, tx, name)
	}))
}
