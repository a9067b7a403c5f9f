package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/encoding/protojson"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// ErrStaleVersion is an apply from a version that is no longer in force.
var ErrStaleVersion = errors.New("routes were applied since that version")

// Routes keeps the routing document's versions.
type Routes struct{ pool *pgxpool.Pool }

// NewRoutes returns the routing versions over pool.
func NewRoutes(pool *pgxpool.Pool) *Routes { return &Routes{pool: pool} }

// RoutingVersion is one applied routing document.
type RoutingVersion struct {
	Version   int64
	Config    *notifyv1.RoutingConfig
	AppliedBy string
	AppliedAt time.Time
}

// Version is the version in force, 0 for none: what replicas poll.
func (r *Routes) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := r.pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM routing_versions`).Scan(&v); err != nil {
		return 0, fmt.Errorf("routing version: %w", err)
	}
	return v, nil
}

// History is the last n versions, newest first: the one in force first,
// none when no routes were applied.
func (r *Routes) History(ctx context.Context, n int) ([]RoutingVersion, error) {
	rows, err := r.pool.Query(ctx, `SELECT version, config, applied_by, applied_at FROM routing_versions
		ORDER BY version DESC LIMIT $1`, n)
	if err != nil {
		return nil, fmt.Errorf("routing versions: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (RoutingVersion, error) {
		var (
			v    RoutingVersion
			data []byte
		)
		if err := row.Scan(&v.Version, &data, &v.AppliedBy, &v.AppliedAt); err != nil {
			return v, err
		}
		v.Config = &notifyv1.RoutingConfig{}
		// Unknown fields: a newer notify may have stored them.
		if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(data, v.Config); err != nil {
			return v, fmt.Errorf("decode routing version %d: %w", v.Version, err)
		}
		return v, nil
	})
	if err != nil {
		return nil, fmt.Errorf("routing versions: %w", err)
	}
	return out, nil
}

// Apply makes cfg the version after version, unless another was applied
// since (ErrStaleVersion), and forgets the versions older than the last
// keep.
func (r *Routes) Apply(ctx context.Context, cfg *notifyv1.RoutingConfig, version int64, by string, keep int) (RoutingVersion, error) {
	data, err := protojson.Marshal(cfg)
	if err != nil {
		return RoutingVersion{}, fmt.Errorf("encode routes: %w", err)
	}
	out := RoutingVersion{Version: version + 1, Config: cfg, AppliedBy: by}
	err = pgx.BeginFunc(ctx, r.pool, func(tx pgx.Tx) error {
		// Two applies from the same version both find it in force; the
		// second's insert then meets the first's row.
		tag, err := tx.Exec(ctx, `INSERT INTO routing_versions (version, config, applied_by)
			SELECT $1 + 1, $2, $3 WHERE (SELECT coalesce(max(version), 0) FROM routing_versions) = $1`, version, data, by)
		if err != nil {
			if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Code == "23505" {
				return ErrStaleVersion
			}
			return err
		}
		if tag.RowsAffected() == 0 {
			return ErrStaleVersion
		}
		if err := tx.QueryRow(ctx, `SELECT applied_at FROM routing_versions WHERE version = $1`, out.Version).Scan(&out.AppliedAt); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM routing_versions WHERE version <= $1`, out.Version-int64(keep))
		return err
	})
	if err != nil {
		return RoutingVersion{}, fmt.Errorf("apply routes over version %d: %w", version, err)
	}
	return out, nil
}
