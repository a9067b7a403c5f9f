// Package postgres keeps the deploy service's clusters, apps and
// deployments in its schema, "deploy". Secrets and kubeconfigs are sealed
// with pkg/seal before they reach the database. Methods run in the
// caller's transaction or on the pool.
package postgres

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Migrations are the deploy schema's migrations.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Errors the API maps to status codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrInUse: a cluster that apps still target.
	ErrInUse = errors.New("in use")
	// ErrBusy: the app has a deployment under way.
	ErrBusy = errors.New("a deployment of the app is under way")
)

// DomainTakenError says that another app serves an app's domain.
type DomainTakenError struct {
	Domain string
	// App is the app that serves it; empty when the database caught the
	// conflict (two writes at once) before the store could name it.
	App string
}

func (e *DomainTakenError) Error() string {
	if e.App == "" {
		return "domain " + e.Domain + " is another app's"
	}
	return "domain " + e.Domain + " is app " + e.App + "'s"
}

// domainIndex is the unique index of the apps' normalised hosts.
const domainIndex = "apps_domain_unique"

// NormalizeDomain is the host an app's domain names: lowercase, without
// the trailing dot of a fully qualified name. Domains are unique across
// apps in this form.
func NormalizeDomain(d string) string { return strings.ToLower(strings.TrimSuffix(d, ".")) }

// checkDomain returns a *DomainTakenError when an app other than a
// serves a's domain. The unique index decides at commit; this names the
// app for the caller.
func checkDomain(ctx context.Context, q Querier, a *App) error {
	if a.Domain == "" {
		return nil
	}
	var holder string
	err := q.QueryRow(ctx, `SELECT name FROM apps WHERE lower(rtrim(domain, '.')) = lower(rtrim($1, '.')) AND domain <> '' AND name <> $2`,
		a.Domain, a.Name).Scan(&holder)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		return err
	}
	return &DomainTakenError{Domain: NormalizeDomain(a.Domain), App: holder}
}

// Querier is what Store needs of a pool or a transaction.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Store reads and writes the deploy schema.
type Store struct{ box *seal.Box }

// New returns a Store sealing with box.
func New(box *seal.Box) *Store { return &Store{box: box} }

// Owners of sealed values (the additional data): a value sealed for one
// row does not open in another.
func kubeconfigOwner(cluster string) string { return "deploy.clusters.kubeconfig:" + cluster }
func appSecretsOwner(app string) string     { return "deploy.apps.secrets:" + app }
func deploymentSecretsOwner(app string, revision int64) string {
	return "deploy.deployments.secrets:" + app + ":" + strconv.FormatInt(revision, 10)
}

func (s *Store) sealMap(m map[string]string, owner string) ([]byte, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return s.box.Seal(b, owner), nil
}

func (s *Store) openMap(sealed []byte, owner string) (map[string]string, error) {
	if len(sealed) == 0 {
		return map[string]string{}, nil
	}
	b, err := s.box.Open(sealed, owner)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (is VIGIL_ENCRYPTION_KEY the key the data was written with?)", owner, err)
	}
	m := map[string]string{}
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, err
	}
	return m, nil
}

func isUnique(err error, constraint string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505" && (constraint == "" || pe.ConstraintName == constraint)
}

func isForeignKey(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// --- clusters

// InsertCluster records a cluster with its kubeconfig, sealed.
func (s *Store) InsertCluster(ctx context.Context, q Querier, c *deployv1.Cluster, kubeconfig []byte) error {
	_, err := q.Exec(ctx, `INSERT INTO clusters (name, server, version, kubeconfig_sealed, created_at) VALUES ($1, $2, $3, $4, $5)`,
		c.GetName(), c.GetServer(), c.GetVersion(), s.box.Seal(kubeconfig, kubeconfigOwner(c.GetName())), c.GetCreateTime().AsTime())
	if isUnique(err, "") {
		return ErrExists
	}
	return err
}

// UpsertCluster records a cluster or replaces its server, version and
// kubeconfig.
func (s *Store) UpsertCluster(ctx context.Context, q Querier, c *deployv1.Cluster, kubeconfig []byte) error {
	_, err := q.Exec(ctx, `INSERT INTO clusters (name, server, version, kubeconfig_sealed, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (name) DO UPDATE SET server = excluded.server, version = excluded.version,
		kubeconfig_sealed = excluded.kubeconfig_sealed`,
		c.GetName(), c.GetServer(), c.GetVersion(), s.box.Seal(kubeconfig, kubeconfigOwner(c.GetName())), c.GetCreateTime().AsTime())
	return err
}

// ListClusters returns every cluster by name, with how many apps target it.
func (s *Store) ListClusters(ctx context.Context, q Querier) ([]*deployv1.Cluster, error) {
	rows, err := q.Query(ctx, `SELECT c.name, c.server, c.version, c.created_at,
		(SELECT count(*) FROM apps a WHERE a.cluster = c.name) FROM clusters c ORDER BY c.name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (*deployv1.Cluster, error) {
		c := &deployv1.Cluster{}
		var created time.Time
		err := row.Scan(&c.Name, &c.Server, &c.Version, &created, &c.Apps)
		c.CreateTime = timestamppb.New(created)
		return c, err
	})
}

// Kubeconfig returns a cluster's kubeconfig, opened.
func (s *Store) Kubeconfig(ctx context.Context, q Querier, cluster string) ([]byte, error) {
	var sealed []byte
	err := q.QueryRow(ctx, `SELECT kubeconfig_sealed FROM clusters WHERE name = $1`, cluster).Scan(&sealed)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("cluster %q: %w", cluster, ErrNotFound)
	}
	if err != nil {
		return nil, err
	}
	b, err := s.box.Open(sealed, kubeconfigOwner(cluster))
	if err != nil {
		return nil, fmt.Errorf("kubeconfig of cluster %s: %w (is VIGIL_ENCRYPTION_KEY the key it was written with?)", cluster, err)
	}
	return b, nil
}

// DeleteCluster forgets a cluster no app targets.
func (s *Store) DeleteCluster(ctx context.Context, q Querier, name string) error {
	tag, err := q.Exec(ctx, `DELETE FROM clusters WHERE name = $1`, name)
	switch {
	case isForeignKey(err):
		return ErrInUse
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return ErrNotFound
	}
	return nil
}

// --- apps

// App is an app as stored: the API's view and its secrets, opened.
type App struct {
	*deployv1.App
	Secrets map[string]string
}

const appColumns = `name, display_name, domain, framework, plan, image, replicas, port, env, secrets_sealed, owner,
	cluster, namespace, auto_repair, created_at, updated_at, memory_limit_bytes,
	COALESCE((SELECT max(d.revision) FROM deployments d WHERE d.app = apps.name AND d.status = 'succeeded'), 0)`

func (s *Store) scanApp(row pgx.Row) (*App, error) {
	a := &App{App: &deployv1.App{}}
	var (
		sealed           []byte
		created, updated time.Time
	)
	err := row.Scan(&a.Name, &a.DisplayName, &a.Domain, &a.Framework, &a.Plan, &a.Image, &a.Replicas, &a.Port, &a.Env,
		&sealed, &a.Owner, &a.Cluster, &a.Namespace, &a.AutoRepair, &created, &updated, &a.MemoryLimitBytes, &a.CurrentRevision)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	a.CreateTime, a.UpdateTime = timestamppb.New(created), timestamppb.New(updated)
	if a.Secrets, err = s.openMap(sealed, appSecretsOwner(a.Name)); err != nil {
		return nil, err
	}
	a.SecretNames = names(a.Secrets)
	return a, nil
}

// InsertApp records a new app.
func (s *Store) InsertApp(ctx context.Context, q Querier, a *App) error {
	sealed, err := s.sealMap(a.Secrets, appSecretsOwner(a.Name))
	if err != nil {
		return err
	}
	if err := checkDomain(ctx, q, a); err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO apps (name, display_name, domain, framework, plan, image, replicas, port, env,
		secrets_sealed, secret_names, owner, cluster, namespace, auto_repair, created_at, updated_at, memory_limit_bytes)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16, $17)`,
		a.Name, a.DisplayName, a.Domain, a.Framework, a.Plan, a.Image, a.Replicas, a.Port, nonNil(a.Env),
		sealed, names(a.Secrets), a.Owner, a.Cluster, a.Namespace, a.AutoRepair, a.CreateTime.AsTime(), a.MemoryLimitBytes)
	switch {
	case isUnique(err, domainIndex):
		return &DomainTakenError{Domain: NormalizeDomain(a.Domain)}
	case isUnique(err, ""):
		return ErrExists
	case isForeignKey(err):
		return fmt.Errorf("cluster %q: %w", a.Cluster, ErrNotFound)
	case err == nil:
		a.SecretNames = names(a.Secrets)
	}
	return err
}

// names are a map's keys, sorted; empty, not nil, for a NOT NULL array.
func names(m map[string]string) []string {
	return append([]string{}, slices.Sorted(maps.Keys(m))...)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// GetApp returns an app; forUpdate locks its row until the transaction
// ends (deployments of one app are numbered under that lock).
func (s *Store) GetApp(ctx context.Context, q Querier, name string, forUpdate bool) (*App, error) {
	sql := `SELECT ` + appColumns + ` FROM apps WHERE name = $1`
	if forUpdate {
		sql += ` FOR UPDATE`
	}
	return s.scanApp(q.QueryRow(ctx, sql, name))
}

// appKey is where a page of apps ends: they are listed by name.
type appKey struct {
	Name string `json:"n"`
}

// ListApps pages through apps by name, after the page token; it returns
// the token of the next page ("" on the last). A token it did not return
// is a *server.BadRequestError.
//
// Only apps of owners (every app with all; apps without an owner with
// unowned) are listed.
func (s *Store) ListApps(ctx context.Context, q Querier, limit int, pageToken string, owners []string, all, unowned bool) ([]*App, string, error) {
	var bad server.BadRequestError
	after := server.ParsePageToken[appKey](&bad, "apps", pageToken)
	if err := bad.Err("invalid page token"); err != nil {
		return nil, "", err
	}
	if after == nil {
		after = &appKey{}
	}
	rows, err := q.Query(ctx, `SELECT `+appColumns+` FROM apps WHERE name > $1
		AND ($3 OR owner = ANY($4) OR ($5 AND owner = ''))
		ORDER BY name LIMIT $2`, after.Name, limit+1, all, owners, unowned)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*App, error) { return s.scanApp(row) })
	if err != nil {
		return nil, "", err
	}
	out, next := server.NextPage("apps", out, limit, func(a *App) appKey { return appKey{Name: a.Name} })
	return out, next, nil
}

// AppRef is who owns an app and where it runs: what other services keep
// of it.
type AppRef struct {
	Name, Owner, Namespace, Cluster string
	AutoRepair                      bool
}

// AppRefs returns every app's AppRef, by name, without opening secrets.
func (s *Store) AppRefs(ctx context.Context, q Querier) ([]AppRef, error) {
	rows, err := q.Query(ctx, `SELECT name, owner, namespace, cluster, auto_repair FROM apps ORDER BY name`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AppRef, error) {
		var a AppRef
		err := r.Scan(&a.Name, &a.Owner, &a.Namespace, &a.Cluster, &a.AutoRepair)
		return a, err
	})
}

// UpdateApp writes an app's changeable fields.
func (s *Store) UpdateApp(ctx context.Context, q Querier, a *App) error {
	sealed, err := s.sealMap(a.Secrets, appSecretsOwner(a.Name))
	if err != nil {
		return err
	}
	if err := checkDomain(ctx, q, a); err != nil {
		return err
	}
	tag, err := q.Exec(ctx, `UPDATE apps SET display_name = $2, domain = $3, framework = $4, plan = $5, image = $6,
		replicas = $7, port = $8, env = $9, secrets_sealed = $10, secret_names = $11, owner = $12, auto_repair = $13,
		updated_at = $14, memory_limit_bytes = $15 WHERE name = $1`,
		a.Name, a.DisplayName, a.Domain, a.Framework, a.Plan, a.Image, a.Replicas, a.Port, nonNil(a.Env), sealed,
		names(a.Secrets), a.Owner, a.AutoRepair, a.UpdateTime.AsTime(), a.MemoryLimitBytes)
	switch {
	case isUnique(err, domainIndex):
		return &DomainTakenError{Domain: NormalizeDomain(a.Domain)}
	case err != nil:
		return err
	case tag.RowsAffected() == 0:
		return ErrNotFound
	}
	a.SecretNames = names(a.Secrets)
	return nil
}

// DeleteApp forgets an app and its deployments.
func (s *Store) DeleteApp(ctx context.Context, q Querier, name string) error {
	tag, err := q.Exec(ctx, `DELETE FROM apps WHERE name = $1`, name)
	if err == nil && tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return err
}

// Tombstone is the namespace a deleted app left behind in a cluster, and
// the team it was left by.
type Tombstone struct {
	Cluster, Namespace, App, Owner, DeletedBy string
	DeletedAt                                 time.Time
}

// PutTombstone records the namespace a deleted app left behind,
// replacing an older record of the same namespace.
func (s *Store) PutTombstone(ctx context.Context, q Querier, t Tombstone) error {
	_, err := q.Exec(ctx, `INSERT INTO namespace_tombstones (cluster, namespace, app, owner, deleted_by, deleted_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (cluster, namespace) DO UPDATE SET app = excluded.app, owner = excluded.owner,
		deleted_by = excluded.deleted_by, deleted_at = excluded.deleted_at`,
		t.Cluster, t.Namespace, t.App, t.Owner, t.DeletedBy, t.DeletedAt)
	return err
}

// TakeTombstone returns the record of the namespace left behind in
// cluster, locked until the transaction ends, or nil when there is none.
func (s *Store) TakeTombstone(ctx context.Context, q Querier, cluster, namespace string) (*Tombstone, error) {
	t := &Tombstone{}
	err := q.QueryRow(ctx, `SELECT cluster, namespace, app, owner, deleted_by, deleted_at FROM namespace_tombstones
		WHERE cluster = $1 AND namespace = $2 FOR UPDATE`, cluster, namespace).
		Scan(&t.Cluster, &t.Namespace, &t.App, &t.Owner, &t.DeletedBy, &t.DeletedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return t, err
}

// DeleteTombstone forgets the record of a namespace left behind: an app
// has it again.
func (s *Store) DeleteTombstone(ctx context.Context, q Querier, cluster, namespace string) error {
	_, err := q.Exec(ctx, `DELETE FROM namespace_tombstones WHERE cluster = $1 AND namespace = $2`, cluster, namespace)
	return err
}

// --- deployments

// Spec is what a revision deploys, besides its secrets: enough to render
// it again for a rollback.
type Spec struct {
	DisplayName string            `json:"display_name,omitempty"`
	Domain      string            `json:"domain,omitempty"`
	Framework   string            `json:"framework"`
	Plan        string            `json:"plan"`
	Image       string            `json:"image"`
	Replicas    int32             `json:"replicas,omitempty"`
	Port        int32             `json:"port,omitempty"`
	Env         map[string]string `json:"env,omitempty"`
	Owner       string            `json:"owner,omitempty"`
	Namespace   string            `json:"namespace"`
	AutoRepair  bool              `json:"auto_repair,omitempty"`
	// MemoryLimitBytes: the container's memory limit when above the
	// plan's (a repair raised it); 0: the plan's.
	MemoryLimitBytes int64 `json:"memory_limit_bytes,omitempty"`
}

// SpecOf is the spec an app deploys now.
func SpecOf(a *App) Spec {
	return Spec{
		DisplayName: a.DisplayName, Domain: a.Domain, Framework: a.Framework, Plan: a.Plan, Image: a.Image,
		Replicas: a.Replicas, Port: a.Port, Env: a.Env, Owner: a.Owner, Namespace: a.Namespace, AutoRepair: a.AutoRepair,
		MemoryLimitBytes: a.MemoryLimitBytes,
	}
}

// Deployment is a revision as stored.
type Deployment struct {
	*deployv1.Deployment
	Spec    Spec
	Secrets map[string]string
}

// Step statuses as stored.
var stepStatusNames = map[deployv1.StepStatus]string{
	deployv1.StepStatus_STEP_STATUS_PENDING: "pending",
	deployv1.StepStatus_STEP_STATUS_RUNNING: "running",
	deployv1.StepStatus_STEP_STATUS_DONE:    "done",
	deployv1.StepStatus_STEP_STATUS_SKIPPED: "skipped",
	deployv1.StepStatus_STEP_STATUS_FAILED:  "failed",
}

var deploymentStatusNames = map[deployv1.DeploymentStatus]string{
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_PENDING:   "pending",
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_RUNNING:   "running",
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED: "succeeded",
	deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:    "failed",
}

var kindNames = map[deployv1.DeploymentKind]string{
	deployv1.DeploymentKind_DEPLOYMENT_KIND_DEPLOY:   "deploy",
	deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK: "rollback",
}

func lookup[K comparable](m map[K]string, name string) K {
	for k, v := range m {
		if v == name {
			return k
		}
	}
	var zero K
	return zero
}

// StepStatusName is a step status as stored and as announced in
// deploy.progress.
func StepStatusName(s deployv1.StepStatus) string { return stepStatusNames[s] }

// NextRevision is the number of the app's next revision; call it with the
// app's row locked (GetApp forUpdate).
func (s *Store) NextRevision(ctx context.Context, q Querier, app string) (int64, error) {
	var n int64
	err := q.QueryRow(ctx, `SELECT COALESCE(max(revision), 0) + 1 FROM deployments WHERE app = $1`, app).Scan(&n)
	return n, err
}

// InsertDeployment records a pending deployment with its steps: ErrExists
// when one with its id is recorded already, ErrBusy when one of the app is
// under way.
func (s *Store) InsertDeployment(ctx context.Context, q Querier, d *Deployment) error {
	sealed, err := s.sealMap(d.Secrets, deploymentSecretsOwner(d.App, d.Revision))
	if err != nil {
		return err
	}
	_, err = q.Exec(ctx, `INSERT INTO deployments (id, app, revision, kind, rollback_to, image, config_hash, cluster, spec,
		secrets_sealed, requested_by, status, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', $12)`,
		d.Id, d.App, d.Revision, kindNames[d.Kind], d.RollbackTo, d.Image, d.ConfigHash, d.Cluster, d.Spec, sealed,
		d.RequestedBy, d.CreateTime.AsTime())
	switch {
	case isUnique(err, "deployments_pkey"):
		// A redelivered request recorded under its event's id.
		return ErrExists
	case isUnique(err, "deployments_one_active_per_app"):
		return ErrBusy
	case err != nil:
		return err
	}
	for i, st := range d.Steps {
		if _, err := q.Exec(ctx, `INSERT INTO deployment_steps (deployment_id, seq, name, status) VALUES ($1, $2, $3, 'pending')`,
			d.Id, i, st.GetName()); err != nil {
			return err
		}
	}
	return nil
}

const deploymentColumns = `id::text, app, revision, kind, rollback_to, image, config_hash, cluster, spec, secrets_sealed,
	requested_by, status, reason, created_at, started_at, ended_at`

func (s *Store) scanDeployment(row pgx.Row) (*Deployment, error) {
	d := &Deployment{Deployment: &deployv1.Deployment{}}
	var (
		kind, status   string
		sealed         []byte
		created        time.Time
		started, ended *time.Time
	)
	err := row.Scan(&d.Id, &d.App, &d.Revision, &kind, &d.RollbackTo, &d.Image, &d.ConfigHash, &d.Cluster, &d.Spec,
		&sealed, &d.RequestedBy, &status, &d.Reason, &created, &started, &ended)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	d.Kind = lookup(kindNames, kind)
	d.Status = lookup(deploymentStatusNames, status)
	d.Replicas, d.MemoryLimitBytes = d.Spec.Replicas, d.Spec.MemoryLimitBytes
	d.CreateTime = timestamppb.New(created)
	if ended != nil {
		d.EndTime = timestamppb.New(*ended)
		if started != nil {
			d.Duration = durationpb.New(ended.Sub(*started))
		}
	}
	if d.Secrets, err = s.openMap(sealed, deploymentSecretsOwner(d.App, d.Revision)); err != nil {
		return nil, err
	}
	return d, nil
}

// GetDeployment returns a deployment with its steps.
func (s *Store) GetDeployment(ctx context.Context, q Querier, id string) (*Deployment, error) {
	d, err := s.scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE id::text = $1`, id))
	if err != nil {
		return nil, err
	}
	return d, s.loadSteps(ctx, q, d)
}

// Revision returns an app's deployment of one revision, with its steps.
func (s *Store) Revision(ctx context.Context, q Querier, app string, revision int64) (*Deployment, error) {
	d, err := s.scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE app = $1 AND revision = $2`, app, revision))
	if err != nil {
		return nil, err
	}
	return d, s.loadSteps(ctx, q, d)
}

// LastSucceeded returns the newest succeeded revision of app below
// before (0: any), or ErrNotFound.
func (s *Store) LastSucceeded(ctx context.Context, q Querier, app string, before int64) (*Deployment, error) {
	if before == 0 {
		before = 1 << 62
	}
	return s.scanDeployment(q.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments
		WHERE app = $1 AND status = 'succeeded' AND revision < $2 ORDER BY revision DESC LIMIT 1`, app, before))
}

func (s *Store) loadSteps(ctx context.Context, q Querier, d *Deployment) error {
	rows, err := q.Query(ctx, `SELECT name, status, message, started_at, ended_at FROM deployment_steps
		WHERE deployment_id::text = $1 ORDER BY seq`, d.Id)
	if err != nil {
		return err
	}
	steps, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*deployv1.Step, error) {
		st := &deployv1.Step{}
		var status string
		var started, ended *time.Time
		if err := row.Scan(&st.Name, &status, &st.Message, &started, &ended); err != nil {
			return nil, err
		}
		st.Status = lookup(stepStatusNames, status)
		if started != nil {
			st.StartTime = timestamppb.New(*started)
		}
		if ended != nil {
			st.EndTime = timestamppb.New(*ended)
		}
		return st, nil
	})
	d.Steps = steps
	return err
}

// deploymentKey is where a page of an app's deployments ends: they are
// listed by revision, newest first.
type deploymentKey struct {
	Revision int64 `json:"r"`
}

// ListDeployments pages through an app's deployments, newest first,
// without steps, after the page token (a token it did not return is a
// *server.BadRequestError); it returns the token of the next page ("" on the
// last).
func (s *Store) ListDeployments(ctx context.Context, q Querier, app string, limit int, pageToken string) ([]*Deployment, string, error) {
	var bad server.BadRequestError
	before := int64(1 << 62)
	if after := server.ParsePageToken[deploymentKey](&bad, "deployments", pageToken); after != nil {
		before = after.Revision
	}
	if err := bad.Err("invalid page token"); err != nil {
		return nil, "", err
	}
	rows, err := q.Query(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE app = $1 AND revision < $2
		ORDER BY revision DESC LIMIT $3`, app, before, limit+1)
	if err != nil {
		return nil, "", err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (*Deployment, error) { return s.scanDeployment(row) })
	if err != nil {
		return nil, "", err
	}
	out, next := server.NextPage("deployments", out, limit, func(d *Deployment) deploymentKey { return deploymentKey{Revision: d.Revision} })
	return out, next, nil
}

// Claim marks a pending deployment running and reports whether this caller
// got it; a redelivered request for a deployment that is running (its
// worker died) or already ended is not claimed again, except that a
// running one whose worker is gone may be resumed by passing resume.
func (s *Store) Claim(ctx context.Context, q Querier, id string, now time.Time, resume bool) (bool, error) {
	states := []string{"pending"}
	if resume {
		states = append(states, "running")
	}
	tag, err := q.Exec(ctx, `UPDATE deployments SET status = 'running', started_at = COALESCE(started_at, $2)
		WHERE id::text = $1 AND status = ANY($3)`, id, now, states)
	if err != nil {
		return false, err
	}
	return tag.RowsAffected() == 1, nil
}

// SetStep records a step's state.
func (s *Store) SetStep(ctx context.Context, q Querier, id, step string, st deployv1.StepStatus, message string, now time.Time) error {
	var started, ended any
	switch st {
	case deployv1.StepStatus_STEP_STATUS_RUNNING:
		started = now
	case deployv1.StepStatus_STEP_STATUS_DONE, deployv1.StepStatus_STEP_STATUS_SKIPPED, deployv1.StepStatus_STEP_STATUS_FAILED:
		ended = now
	}
	_, err := q.Exec(ctx, `UPDATE deployment_steps SET status = $3, message = $4,
		started_at = COALESCE($5, started_at), ended_at = $6 WHERE deployment_id::text = $1 AND name = $2`,
		id, step, stepStatusNames[st], truncate(message, 2000), started, ended)
	return err
}

// Finish records a deployment's end; steps never reached stay pending.
func (s *Store) Finish(ctx context.Context, q Querier, id string, st deployv1.DeploymentStatus, reason string, now time.Time) error {
	_, err := q.Exec(ctx, `UPDATE deployments SET status = $2, reason = $3, ended_at = $4,
		started_at = COALESCE(started_at, $4) WHERE id::text = $1`, id, deploymentStatusNames[st], truncate(reason, 2000), now)
	return err
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strings.TrimSpace(s[:cut]) + "..."
}
