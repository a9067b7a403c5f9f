// Package appteam keeps, in a service's own schema, which team each app
// belongs to (and where it runs, and whether its repairs may run without
// a person): a projection of the deploy service's app.registered,
// app.updated and app.deleted events, for the services whose data belongs
// to an app's team (monitor's incidents, analysis' analyses), and which
// team each namespace an admin mapped belongs to (namespace.mapped,
// namespace.unmapped): together, what subjects are resolved against
// (pkg/subject). The newest event wins, whatever order events arrive in.
package appteam

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/subject"
)

// Migrations create the app_teams table.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Migrate creates app_teams in schema; its version is kept apart from the
// service's own migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return db.Migrate(ctx, pool, schema, db.Sub(Migrations, "migrations"), db.VersionTable("goose_appteam_version"))
}

// Execer runs statements: a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// Querier reads: a pool or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// App is what the projection keeps of an app.
type App struct {
	Name, Team         string
	Cluster, Namespace string
	// AutoRepair: its repairs may run without a person (--auto-repair).
	AutoRepair bool
}

// SetApp records a as of at, unless a newer event was applied already.
func SetApp(ctx context.Context, q Execer, a App, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO app_teams (app, team, deleted, occurred_at, auto_repair, cluster, namespace)
		VALUES ($1, $2, false, $3, $4, $5, $6)
		ON CONFLICT (app) DO UPDATE SET team = EXCLUDED.team, deleted = false, occurred_at = EXCLUDED.occurred_at,
			auto_repair = EXCLUDED.auto_repair, cluster = EXCLUDED.cluster, namespace = EXCLUDED.namespace
		WHERE app_teams.occurred_at <= EXCLUDED.occurred_at`, a.Name, a.Team, at, a.AutoRepair, a.Cluster, a.Namespace)
	if err != nil {
		return fmt.Errorf("set app %s: %w", a.Name, err)
	}
	return nil
}

// Get returns what the projection knows of app; ok false when it is
// unknown or deleted.
func Get(ctx context.Context, q Querier, app string) (a App, ok bool, err error) {
	if app == "" {
		return App{}, false, nil
	}
	a.Name = app
	err = q.QueryRow(ctx, `SELECT team, cluster, namespace, auto_repair FROM app_teams WHERE app = $1 AND NOT deleted`, app).
		Scan(&a.Team, &a.Cluster, &a.Namespace, &a.AutoRepair)
	if errors.Is(err, pgx.ErrNoRows) {
		return App{}, false, nil
	}
	if err != nil {
		return App{}, false, fmt.Errorf("app %s: %w", app, err)
	}
	return a, true, nil
}

// At returns the app Vigil deploys as the workload name in namespace of
// cluster (an app's workloads are named after it), from what the deploy
// service announced, never from what an alert says; ok false when no
// app of Vigil's is there.
func At(ctx context.Context, q Querier, cluster, namespace, name string) (a App, ok bool, err error) {
	if cluster == "" || namespace == "" || name == "" {
		return App{}, false, nil
	}
	a, ok, err = Get(ctx, q, name)
	if err != nil || !ok || a.Cluster != cluster || a.Namespace != namespace {
		return App{}, false, err
	}
	return a, true, nil
}

// Delete records that app was deleted as of at.
func Delete(ctx context.Context, q Execer, app string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO app_teams (app, team, deleted, occurred_at) VALUES ($1, '', true, $2)
		ON CONFLICT (app) DO UPDATE SET team = '', deleted = true, occurred_at = EXCLUDED.occurred_at
		WHERE app_teams.occurred_at <= EXCLUDED.occurred_at`, app, at)
	if err != nil {
		return fmt.Errorf("delete app %s: %w", app, err)
	}
	return nil
}

// teamOf is the SQL expression of the team of the app in column appColumn
// ("" when it belongs to none).
func teamOf(appColumn string) string {
	return `coalesce((SELECT t.team FROM app_teams t WHERE t.app = ` + appColumn + ` AND NOT t.deleted), '')`
}

// OwnerOf is the SQL expression of the team that owns an incident whose
// subject's app is in column appColumn and whose team, as decided when it
// opened, is in teamColumn: an app's incidents follow the app's owner
// (moved, or nobody's once the app is deleted); others keep the team
// their namespace was mapped to when they opened.
func OwnerOf(appColumn, teamColumn string) string {
	return `(CASE WHEN ` + appColumn + ` <> '' THEN ` + teamOf(appColumn) + ` ELSE ` + teamColumn + ` END)`
}

// WithUnowned is teams, and "" (no team) with unowned: what OwnerOf must
// be one of.
func WithUnowned(teams []string, unowned bool) []string {
	out := append([]string{}, teams...)
	if unowned {
		out = append(out, "")
	}
	return out
}

// NewConsumer is service's durable consumer of the app events that
// keeps the projection (each event once, through the service's inbox),
// created now: it reads what the APPS stream holds (a projection acts on
// nothing, so history is safe to read), and the deploy service announces
// every app when it starts.
func NewConsumer(ctx context.Context, js jetstream.JetStream, pool *pgxpool.Pool, service string, log *slog.Logger, m *bus.Metrics) (*bus.Consumer, error) {
	router := bus.NewRouter[pgx.Tx]()
	Handle(router)
	c, err := bus.NewConsumer(js, bus.ConsumerConfig{
		Name: service, Subjects: router.Subjects(), BatchSize: 100, StartWithin: 365 * 24 * time.Hour,
	}, outbox.NewHandler(pool, service+"-apps", router), log, m)
	if err != nil {
		return nil, err
	}
	if err := c.Create(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// Handle keeps the projection from the app events on r.
func Handle(r *bus.Router[pgx.Tx]) {
	at := func(m *eventsv1.EventMeta) time.Time { return m.GetOccurredAt().AsTime() }
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.AppRegistered) error {
		return SetApp(ctx, tx, App{
			Name: e.GetApp(), Team: e.GetOwner(), Cluster: e.GetCluster(), Namespace: e.GetNamespace(), AutoRepair: e.GetAutoRepair(),
		}, at(e.GetMeta()))
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.AppUpdated) error {
		return SetApp(ctx, tx, App{
			Name: e.GetApp(), Team: e.GetOwner(), Cluster: e.GetCluster(), Namespace: e.GetNamespace(), AutoRepair: e.GetAutoRepair(),
		}, at(e.GetMeta()))
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.AppDeleted) error {
		return Delete(ctx, tx, e.GetApp(), at(e.GetMeta()))
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.NamespaceMapped) error {
		return SetNamespace(ctx, tx, subject.Mapping{Cluster: e.GetCluster(), Namespace: e.GetNamespace(), Team: e.GetTeam()}, at(e.GetMeta()))
	})
	bus.On(r, func(ctx context.Context, tx pgx.Tx, e *eventsv1.NamespaceUnmapped) error {
		return UnsetNamespace(ctx, tx, e.GetCluster(), e.GetNamespace(), at(e.GetMeta()))
	})
}

// SetNamespace records an admin's mapping of a namespace to a team as of
// at, unless a newer event was applied already.
func SetNamespace(ctx context.Context, q Execer, m subject.Mapping, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO namespace_teams (cluster, namespace, team, deleted, occurred_at) VALUES ($1, $2, $3, false, $4)
		ON CONFLICT (namespace, cluster) DO UPDATE SET team = EXCLUDED.team, deleted = false, occurred_at = EXCLUDED.occurred_at
		WHERE namespace_teams.occurred_at <= EXCLUDED.occurred_at`, m.Cluster, m.Namespace, m.Team, at)
	if err != nil {
		return fmt.Errorf("map namespace %s: %w", m.Namespace, err)
	}
	return nil
}

// UnsetNamespace records that the mapping of namespace in cluster was
// removed as of at.
func UnsetNamespace(ctx context.Context, q Execer, cluster, namespace string, at time.Time) error {
	_, err := q.Exec(ctx, `INSERT INTO namespace_teams (cluster, namespace, team, deleted, occurred_at) VALUES ($1, $2, '', true, $3)
		ON CONFLICT (namespace, cluster) DO UPDATE SET team = '', deleted = true, occurred_at = EXCLUDED.occurred_at
		WHERE namespace_teams.occurred_at <= EXCLUDED.occurred_at`, cluster, namespace, at)
	if err != nil {
		return fmt.Errorf("unmap namespace %s: %w", namespace, err)
	}
	return nil
}

// Rows reads: a pool or a transaction.
type Rows interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// Index is what the projection knows of the given namespaces and app
// names (see subject.Names), to resolve subjects against: the apps
// named or living there, and the mappings of those namespaces. One round
// trip, each part by an index.
func Index(ctx context.Context, q Rows, namespaces, apps []string) (*subject.Index, error) {
	known, mappings, err := owners(ctx, q, namespaces, apps)
	if err != nil {
		return nil, err
	}
	return subject.NewIndex(known, mappings), nil
}

// owners reads what Index is made of.
func owners(ctx context.Context, q Rows, namespaces, apps []string) ([]subject.App, []subject.Mapping, error) {
	rows, err := q.Query(ctx, `SELECT 'a', app, team, cluster, namespace FROM app_teams WHERE NOT deleted AND namespace = ANY($1)
		UNION SELECT 'a', app, team, cluster, namespace FROM app_teams WHERE NOT deleted AND app = ANY($2)
		UNION ALL SELECT 'm', '', team, cluster, namespace FROM namespace_teams WHERE NOT deleted AND namespace = ANY($1)`, namespaces, apps)
	if err != nil {
		return nil, nil, fmt.Errorf("owners of namespaces: %w", err)
	}
	defer rows.Close()
	var (
		known    []subject.App
		mappings []subject.Mapping
	)
	for rows.Next() {
		var kind string
		var a subject.App
		if err := rows.Scan(&kind, &a.Name, &a.Team, &a.Cluster, &a.Namespace); err != nil {
			return nil, nil, fmt.Errorf("owners of namespaces: %w", err)
		}
		if kind == "m" {
			mappings = append(mappings, subject.Mapping{Cluster: a.Cluster, Namespace: a.Namespace, Team: a.Team})
		} else {
			known = append(known, a)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("owners of namespaces: %w", err)
	}
	return known, mappings, nil
}

// IndexFor is Index for every namespace and app name the label sets
// mention.
func IndexFor(ctx context.Context, q Rows, labelSets ...map[string]string) (*subject.Index, error) {
	namespaces, apps := names(labelSets)
	return Index(ctx, q, namespaces, apps)
}

// names are the namespaces and app names the label sets mention, each once.
func names(labelSets []map[string]string) (namespaces, apps []string) {
	seenNS, seenApp := map[string]bool{}, map[string]bool{}
	for _, ls := range labelSets {
		ns, named := subject.Names(ls)
		if ns != "" && !seenNS[ns] {
			seenNS[ns] = true
			namespaces = append(namespaces, ns)
		}
		for _, n := range named {
			if !seenApp[n] {
				seenApp[n] = true
				apps = append(apps, n)
			}
		}
	}
	return namespaces, apps
}
