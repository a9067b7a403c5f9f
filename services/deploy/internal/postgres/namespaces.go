package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"google.golang.org/protobuf/types/known/timestamppb"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// PutMapping records (or replaces) an admin's mapping of a namespace to a
// team.
func (s *Store) PutMapping(ctx context.Context, q Querier, m *deployv1.NamespaceMapping) error {
	_, err := q.Exec(ctx, `INSERT INTO namespace_mappings (cluster, namespace, team, updated_by, updated_at, allow_repairs) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (namespace, cluster) DO UPDATE SET team = EXCLUDED.team, updated_by = EXCLUDED.updated_by, updated_at = EXCLUDED.updated_at,
			allow_repairs = EXCLUDED.allow_repairs`,
		m.GetCluster(), m.GetNamespace(), m.GetTeam(), m.GetUpdatedBy(), m.GetUpdateTime().AsTime(), m.GetAllowRepairs())
	if err != nil {
		return fmt.Errorf("map namespace %s: %w", m.GetNamespace(), err)
	}
	return nil
}

// DeleteMapping removes a mapping; ErrNotFound when there is none.
func (s *Store) DeleteMapping(ctx context.Context, q Querier, cluster, namespace string) error {
	tag, err := q.Exec(ctx, `DELETE FROM namespace_mappings WHERE cluster = $1 AND namespace = $2`, cluster, namespace)
	if err != nil {
		return fmt.Errorf("unmap namespace %s: %w", namespace, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("mapping of namespace %s (cluster %q): %w", namespace, cluster, ErrNotFound)
	}
	return nil
}

// Mappings are every mapping, by namespace and cluster.
func (s *Store) Mappings(ctx context.Context, q Querier) ([]*deployv1.NamespaceMapping, error) {
	rows, err := q.Query(ctx, `SELECT cluster, namespace, team, updated_by, updated_at, allow_repairs FROM namespace_mappings ORDER BY namespace, cluster`)
	if err != nil {
		return nil, fmt.Errorf("list namespace mappings: %w", err)
	}
	defer rows.Close()
	var out []*deployv1.NamespaceMapping
	for rows.Next() {
		m := &deployv1.NamespaceMapping{}
		var at time.Time
		if err := rows.Scan(&m.Cluster, &m.Namespace, &m.Team, &m.UpdatedBy, &at, &m.AllowRepairs); err != nil {
			return nil, fmt.Errorf("list namespace mappings: %w", err)
		}
		m.UpdateTime = timestamppb.New(at)
		out = append(out, m)
	}
	return out, rows.Err()
}

// AppOfNamespace is the app whose namespace ns is in cluster ("" and
// false when none).
func (s *Store) AppOfNamespace(ctx context.Context, q Querier, cluster, ns string) (string, bool, error) {
	var name string
	err := q.QueryRow(ctx, `SELECT name FROM apps WHERE namespace = $1 AND ($2 = '' OR cluster = $2) LIMIT 1`, ns, cluster).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("app of namespace %s: %w", ns, err)
	}
	return name, true, nil
}

// ClusterExists says whether a cluster is registered, without opening
// its kubeconfig.
func (s *Store) ClusterExists(ctx context.Context, q Querier, name string) (bool, error) {
	var ok bool
	if err := q.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM clusters WHERE name = $1)`, name).Scan(&ok); err != nil {
		return false, fmt.Errorf("cluster %s: %w", name, err)
	}
	return ok, nil
}
