// Package analysis is the analysis service: on incident.opened it ties
// the incident to a workload, gathers evidence from its cluster (read
// only), asks its engines what is wrong and what would fix it (rules by
// default, LLM providers with fallback), checks the answer, stores it and
// announces analysis.completed through its outbox. It keeps a read model
// of recent deployments from deploy's events, and learns playbooks from
// repair's outcomes; it reads no other service's schema.
package analysis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/reserved"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/gather"
	"github.com/vigil-ops/vigil/services/analysis/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/analysis/internal/postgres"
)

// Schema is the analysis service's Postgres schema.
const Schema = "analysis"

// Producer names the service in the events it publishes.
const Producer = "analysis"

// Options tune the service.
type Options struct {
	// MaxEventAge: an incident.opened older than this is not analysed
	// (1 h): nobody needs a repair proposed for an incident hours old.
	MaxEventAge time.Duration
	// Retention of incidents, analyses and deployments (30 days).
	Retention time.Duration
	// Gather bounds each gatherer.
	Gather gather.Limits
	// DeployWindow is how far back deployments count as evidence (2 h).
	DeployWindow time.Duration
	// Workers analyse that many incidents at once (2). More do not make a
	// burst faster: its bound is the cluster client's rate limit (50
	// requests/s, ~12 requests an analysis; docs/benchmarks.md).
	Workers int
	// JobLease is how long a queued analysis stays its worker's without
	// word from it (15 s): a worker renews it every third of that while it
	// works, however long an LLM takes, so one that died leaves its job to
	// another within this long.
	JobLease time.Duration
	// ReanalyzeInterval: an incident that reopens or whose severity rises
	// is analysed again, at most this often (10 min; -1: every time).
	ReanalyzeInterval time.Duration
	// PrometheusURL, when set, is the Prometheus whose cAdvisor and
	// kube-state-metrics series around an incident are evidence (see
	// gather.Prometheus); PrometheusToken its bearer token, if it wants one.
	PrometheusURL, PrometheusToken string
	// Namespace Vigil runs in and ReservedNamespaces the operator's
	// (VIGIL_NAMESPACE, VIGIL_RESERVED_NAMESPACES): with the builtin
	// ones (pkg/reserved), where an analysis proposes no repair but says
	// it needs a person, as the repair guardrails would refuse one.
	Namespace          string
	ReservedNamespaces []string
}

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.MaxEventAge < 0 || o.Retention < 0 || o.DeployWindow < 0 || o.ReanalyzeInterval < -1 || o.Workers < 0 || o.JobLease < 0 {
		return errors.New("VIGIL_ANALYSIS_*: durations must not be negative")
	}
	if o.PrometheusURL != "" {
		u, err := url.Parse(o.PrometheusURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("VIGIL_PROMETHEUS_URL: %q is not an http(s) URL", o.PrometheusURL)
		}
	}
	_, err := reserved.New(o.Namespace, o.ReservedNamespaces)
	return err
}

// Clusters gives read-only clients of the registered clusters (the deploy
// service's Readers in one process).
type Clusters interface {
	Reader(ctx context.Context, cluster string) (kubernetes.Interface, error)
	DefaultCluster(ctx context.Context) (string, error)
}

// Analyzer decides: the engines in their order, the answer checked.
type Analyzer interface {
	Analyze(ctx context.Context, b *evidence.Bundle, first string) (engine.Result, []*analysisv1.Attempt, error)
}

// Deps are what the service runs on.
type Deps struct {
	Pool      *pgxpool.Pool
	JetStream jetstream.JetStream
	Publisher *bus.Publisher
	Metrics   *bus.Metrics
	Logger    *slog.Logger
	// Clusters, when nil, leaves every analysis without cluster evidence
	// (said in its gaps).
	Clusters Clusters
	Analyzer Analyzer
}

// Service is the running analysis service.
type Service struct {
	opts      Options
	deps      Deps
	store     *postgres.Store
	prom      *gather.Prometheus // nil: no Prometheus configured
	reserved  *reserved.Namespaces
	incidents *bus.Consumer
	deploys   *bus.Consumer
	apps      *bus.Consumer
	repairs   *bus.Consumer
	relay     *outbox.Relay
	api       *grpcapi.Server
	log       *slog.Logger
	wake      chan struct{}
	now       func() time.Time
}

// New migrates the schema and builds the service.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.MaxEventAge == 0 {
		opts.MaxEventAge = time.Hour
	}
	if opts.Retention == 0 {
		opts.Retention = 30 * 24 * time.Hour
	}
	if opts.DeployWindow == 0 {
		opts.DeployWindow = 2 * time.Hour
	}
	if opts.Workers == 0 {
		opts.Workers = 2
	}
	if opts.JobLease == 0 {
		opts.JobLease = defaultJobLease
	}
	if opts.ReanalyzeInterval == 0 {
		opts.ReanalyzeInterval = 10 * time.Minute
	}
	if deps.Analyzer == nil {
		return nil, errors.New("analysis: an analyzer is required")
	}
	log := deps.Logger.With("service", "analysis")
	if err := outbox.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, err
	}
	// app_teams first: incidents' owners are backfilled from it.
	if err := appteam.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, err
	}
	s := &Service{
		opts: opts, deps: deps, store: postgres.New(deps.Pool), log: log, wake: make(chan struct{}, opts.Workers), now: time.Now,
		relay: outbox.NewRelay(deps.Pool, deps.Publisher, outbox.RelayOptions{Schema: Schema}, log),
	}
	s.api = grpcapi.New(s.store, s.analyzeNow)
	res, err := reserved.New(opts.Namespace, opts.ReservedNamespaces)
	if err != nil {
		return nil, err
	}
	s.reserved = res
	if opts.PrometheusURL != "" {
		p, err := gather.NewPrometheus(opts.PrometheusURL, opts.PrometheusToken, opts.Gather.Timeout)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_PROMETHEUS_URL: %w", err)
		}
		s.prom = p
	}

	incidents := bus.NewRouter[pgx.Tx]()
	bus.On(incidents, func(ctx context.Context, tx pgx.Tx, e *eventsv1.IncidentOpened) error {
		return s.store.AddIncident(ctx, tx, e.GetIncident(), s.now())
	})
	bus.On(incidents, func(ctx context.Context, tx pgx.Tx, e *eventsv1.IncidentUpdated) error {
		if !significant(e) {
			return nil
		}
		_, err := s.store.Requeue(ctx, tx, e.GetIncident().GetId(), s.now(), max(opts.ReanalyzeInterval, 0))
		return err
	})
	// The jobs are queued: wake the workers once they are committed.
	intake := outbox.NewHandler(deps.Pool, "analysis-incidents", incidents).OnCommit(func(n int) {
		for range n {
			s.poke()
		}
	})
	s.incidents, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name: "analysis", Subjects: incidents.Subjects(), BatchSize: 20,
		// It acts on nothing itself, but proposes repairs: an incident
		// older than this is left alone.
		MaxEventAge: opts.MaxEventAge,
	}, intake, log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	deploys := bus.NewRouter[pgx.Tx]()
	at := func(m *eventsv1.EventMeta) time.Time { return m.GetOccurredAt().AsTime() }
	bus.On(deploys, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployRequested) error {
		return s.store.AddDeploy(ctx, tx, evidence.Deploy{ID: deployID(e.GetDeploymentId(), e.GetMeta()), Revision: e.GetRevision(), Image: e.GetImage(), Status: "requested", At: at(e.GetMeta())}, e.GetApp())
	})
	bus.On(deploys, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeploySucceeded) error {
		return s.store.AddDeploy(ctx, tx, evidence.Deploy{ID: e.GetDeploymentId(), Revision: e.GetRevision(), Image: e.GetImage(), Status: "succeeded", At: at(e.GetMeta())}, e.GetApp())
	})
	bus.On(deploys, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployFailed) error {
		return s.store.AddDeploy(ctx, tx, evidence.Deploy{ID: e.GetDeploymentId(), Revision: e.GetRevision(), Status: "failed", At: at(e.GetMeta())}, e.GetApp())
	})
	bus.On(deploys, func(ctx context.Context, tx pgx.Tx, e *eventsv1.DeployRolledBack) error {
		return s.store.AddDeploy(ctx, tx, evidence.Deploy{ID: e.GetDeploymentId(), Revision: e.GetRevision(), Status: "rolled_back", At: at(e.GetMeta())}, e.GetApp())
	})
	s.deploys, err = bus.NewConsumer(deps.JetStream, bus.ConsumerConfig{
		Name: "analysis", Subjects: deploys.Subjects(), BatchSize: 50,
		// A read model: the last day is what the deploy window needs.
		StartWithin: 24 * time.Hour,
	}, outbox.NewHandler(deps.Pool, "analysis-deploys", deploys), log, deps.Metrics)
	if err != nil {
		return nil, err
	}
	// Which team each app belongs to: whose analyses they are.
	if s.apps, err = appteam.NewConsumer(ctx, deps.JetStream, deps.Pool, "analysis", log, deps.Metrics); err != nil {
		return nil, err
	}
	if s.repairs, err = s.repairConsumer(); err != nil {
		return nil, err
	}
	for _, c := range []*bus.Consumer{s.incidents, s.deploys, s.repairs} {
		if err := c.Create(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// significant is an update worth a new analysis: the incident reopened, or
// its severity rose. New alerts of the same kind, resolutions and
// acknowledgements are not (bounded: at most one analysis per interval).
func significant(e *eventsv1.IncidentUpdated) bool {
	for _, r := range append([]string{e.GetReason()}, e.GetChange().GetReasons()...) {
		if r == "reopened" || r == "severity_raised" {
			return true
		}
	}
	return false
}

func deployID(id string, m *eventsv1.EventMeta) string {
	if id != "" {
		return id
	}
	return m.GetId()
}

// Register adds the service's gRPC API to r.
func (s *Service) Register(r grpc.ServiceRegistrar) {
	analysisv1.RegisterAnalysisServiceServer(r, s.api)
}

// Server is the API, for a gateway in the same process.
func (s *Service) Server() analysisv1.AnalysisServiceServer { return s.api }

// Run consumes, analyses queued incidents and relays events until ctx is
// cancelled. An analysis in progress at a stop is taken again once its
// lease runs out.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.incidents.Run(ctx) })
	g.Go(func() error { return s.deploys.Run(ctx) })
	g.Go(func() error { return s.apps.Run(ctx) })
	g.Go(func() error { return s.repairs.Run(ctx) })
	g.Go(func() error { return s.relay.Run(ctx) })
	// Workers lease different jobs (SKIP LOCKED); each queued incident
	// wakes one (wake holds a token per worker).
	for range s.opts.Workers {
		g.Go(func() error { return s.work(ctx) })
	}
	retention := db.Retention{
		What:  "analyses, incidents and deploys",
		Prune: func(ctx context.Context) (int64, error) { return s.store.Prune(ctx, s.now().Add(-s.opts.Retention)) },
		Log:   s.log,
	}
	g.Go(func() error { return retention.Run(ctx) })
	return g.Wait()
}

func (s *Service) poke() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

const defaultJobLease = 15 * time.Second

// maxAttempts: an incident whose analysis failed this often is dropped
// (logged), not retried forever.
const maxAttempts = 3

func (s *Service) work(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Postgres down fails every lease: logged when it begins and ends.
	leasing := db.Failures{Log: s.log, Attrs: []any{"step", "lease an analysis job"}}
	for {
		for ctx.Err() == nil {
			job, ok, err := s.store.Lease(ctx, s.now(), s.opts.JobLease)
			if err != nil {
				if ctx.Err() == nil {
					leasing.Failed(ctx, err, time.Second)
				}
				break
			}
			leasing.Succeeded(ctx)
			if !ok {
				break
			}
			s.run(ctx, job)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

func (s *Service) run(ctx context.Context, job postgres.Job) {
	log := s.log.With("incident_id", job.IncidentID)
	if age := s.now().Sub(job.RequestedAt); age > s.opts.MaxEventAge {
		log.InfoContext(ctx, "stale analysis dropped", "age", age.String())
		_ = s.store.Drop(ctx, job.IncidentID)
		return
	}
	renewing, stopRenewing := context.WithCancel(ctx)
	defer stopRenewing()
	go s.renew(renewing, job.IncidentID)
	a, err := s.analyze(ctx, job.IncidentID, job.Engine)
	if err == nil {
		err = db.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error {
			if err := s.record(ctx, tx, a); err != nil {
				return err
			}
			return s.store.Done(ctx, tx, job.IncidentID)
		})
	}
	switch {
	case err == nil:
		log.InfoContext(ctx, "incident analysed", "analysis_id", a.GetId(), "engine", a.GetEngine(),
			"action", a.GetProposal().GetAction().String(), "confidence", a.GetConfidence(), "duration", a.GetDuration().AsDuration().String())
	case ctx.Err() != nil:
		// Stopping: the lease runs out and the job is taken again.
	case job.Attempts >= maxAttempts:
		log.ErrorContext(ctx, "analysis failed, giving up", "attempts", job.Attempts, "error", err)
		_ = s.store.Drop(ctx, job.IncidentID)
	default:
		log.WarnContext(ctx, "analysis failed, will retry", "attempts", job.Attempts, "error", err)
	}
}

// renew keeps the job of incidentID this worker's until ctx ends. A
// renewal that fails (the database away) is tried again at the next tick;
// past JobLease another worker may take the job, whose analysis then
// counts as a retry.
func (s *Service) renew(ctx context.Context, incidentID string) {
	db.KeepLease(ctx, s.opts.JobLease, func(ctx context.Context) (bool, error) {
		return true, s.store.Extend(ctx, incidentID, s.now().Add(s.opts.JobLease))
	}, func(err error) {
		s.log.WarnContext(ctx, "renewing an analysis job's lease failed", "incident_id", incidentID, "error", err)
	})
}

// record stores a and announces it, in tx.
func (s *Service) record(ctx context.Context, tx pgx.Tx, a *analysisv1.Analysis) error {
	if err := s.store.AddAnalysis(ctx, tx, a); err != nil {
		return err
	}
	inc, err := s.store.IncidentTx(ctx, tx, a.GetIncidentId())
	if err != nil {
		return err
	}
	sig := signature(inc, a.GetTarget())
	if err := s.store.SetSignature(ctx, tx, a.GetId(), sig); err != nil {
		return err
	}
	return outbox.Add(ctx, tx, &eventsv1.AnalysisCompleted{
		Meta: bus.NewMeta(Producer, nil), AnalysisId: a.GetId(), IncidentId: a.GetIncidentId(),
		Summary: a.GetSummary(), RootCause: a.GetRootCause(), Confidence: a.GetConfidence(), Risk: a.GetRisk(),
		BlastRadius: a.GetBlastRadius().GetNote(), Engine: a.GetEngine(), Proposal: a.GetProposal(), App: inc.GetApp(),
		BlastRadiusPods: a.GetBlastRadius().GetPods(), ExpectedDowntime: a.GetBlastRadius().GetExpectedDowntime(),
		Signature: sig,
		Model:     a.GetModel(), InputTokens: a.GetUsage().GetInputTokens(), OutputTokens: a.GetUsage().GetOutputTokens(),
		CostUsd: a.GetUsage().GetCostUsd(), IncidentTitle: inc.GetTitle(),
	})
}

// analyzeNow analyses an incident on request and records the result.
func (s *Service) analyzeNow(ctx context.Context, incidentID, first string) (*analysisv1.Analysis, error) {
	a, err := s.analyze(ctx, incidentID, first)
	if err != nil {
		return nil, err
	}
	if err := db.InTx(ctx, s.deps.Pool, func(tx pgx.Tx) error { return s.record(ctx, tx, a) }); err != nil {
		return nil, fmt.Errorf("record analysis: %w", err)
	}
	return a, nil
}

// analyze gathers and decides; it writes nothing.
func (s *Service) analyze(ctx context.Context, incidentID, first string) (*analysisv1.Analysis, error) {
	start := s.now()
	inc, err := s.store.Incident(ctx, incidentID)
	if err != nil {
		return nil, err
	}
	b := &evidence.Bundle{Incident: incidentOf(inc)}
	b.Items = append(b.Items, evidence.Item{ID: "alert/labels", Source: "alerts", Summary: "Alert labels: " + labelString(b.Incident.Labels), At: b.Incident.OpenedAt})
	gather.Sentry(inc.GetAlerts(), b)
	gather.Held(inc.GetAlerts(), b)
	s.gather(ctx, b, subjectOf(inc), start)
	s.history(ctx, inc, b)
	res, attempts, err := s.deps.Analyzer.Analyze(ctx, b, first)
	if err != nil {
		return nil, fmt.Errorf("analyze incident %s: %w", incidentID, err)
	}
	if res, err = s.playbook(ctx, inc, b.Target, res); err != nil {
		return nil, fmt.Errorf("analyze incident %s: %w", incidentID, err)
	}
	return toProto(uuid.Must(uuid.NewV7()).String(), incidentID, b, res, attempts, start, s.now()), nil
}

// subjectOf is what inc is about, as the monitor resolved it; for an
// incident announced before subjects, resolved again from its labels
// alone (owned by nobody, confined to its own namespace all the same).
func subjectOf(inc *typesv1.Incident) *typesv1.Subject {
	if inc.GetSubject() != nil {
		return inc.GetSubject()
	}
	return subject.NewIndex(nil, nil).Resolve(incidentOf(inc).Labels)
}

// gather reads the cluster for b: only subj's cluster and namespace, and
// only its workload (or its pod's controller) as the target.
func (s *Service) gather(ctx context.Context, b *evidence.Bundle, subj *typesv1.Subject, now time.Time) {
	if s.deps.Clusters == nil {
		b.Gaps = append(b.Gaps, "cluster: no cluster access in this process")
		return
	}
	if subj.GetNamespace() == "" {
		b.Gaps = append(b.Gaps, "target: the incident's subject names no namespace (the alerts name none, and no app of Vigil's): nothing in a cluster is read")
		return
	}
	cluster := subj.GetCluster()
	if cluster == "" {
		var err error
		if cluster, err = s.deps.Clusters.DefaultCluster(ctx); err != nil {
			b.Gaps = append(b.Gaps, "cluster: "+err.Error())
			return
		}
	}
	kc, err := s.deps.Clusters.Reader(ctx, cluster)
	if err != nil {
		b.Gaps = append(b.Gaps, "cluster: "+err.Error())
		return
	}
	rctx, cancel := context.WithTimeout(ctx, s.opts.Gather.Timeout+5*time.Second)
	defer cancel()
	ref, why, err := gather.Resolve(rctx, kc, cluster, subj)
	switch {
	case err != nil:
		b.Gaps = append(b.Gaps, "target: "+err.Error())
		return
	case ref == nil:
		b.Gaps = append(b.Gaps, "target: "+why)
		return
	}
	// The resolver stays in the subject's namespace; this says so where
	// it is decided, for any resolver.
	if v := subject.Check(subj, ref, typesv1.RepairAction_REPAIR_ACTION_NONE, cluster); !v.OK {
		b.Gaps = append(b.Gaps, "target: "+v.Reason)
		return
	}
	b.Target = ref
	b.Reserved = s.reserved.Check(ref.GetNamespace())
	gather.Gather(ctx, kc, ref, s.opts.Gather, b, now)
	if s.prom != nil {
		at := b.Incident.OpenedAt
		if at.IsZero() {
			at = now
		}
		s.prom.Gather(ctx, ref, at, now, b)
	}
	if subj.GetApp() == "" {
		// Deploy history is an app's: a workload Vigil did not deploy has
		// none (and must not read another app's of the same name).
		return
	}
	deploys, err := s.store.Deploys(ctx, subj.GetApp(), now.Add(-s.opts.DeployWindow))
	if err != nil {
		b.Gaps = append(b.Gaps, "deploys: "+err.Error())
		return
	}
	for _, d := range deploys {
		b.Deploys = append(b.Deploys, d)
		b.Items = append(b.Items, evidence.Item{
			ID: "deploy/" + d.ID, Source: "deploy:events", At: d.At,
			Summary: fmt.Sprintf("Deployment %s of %s: revision %d, image %s, %s", d.ID, ref.GetName(), d.Revision, d.Image, d.Status),
		})
	}
}

// similarLimit is how many past incidents of the same kind are evidence.
const similarLimit = 5

// history adds the latest other incidents of inc's kind (its signature,
// once the target is known), with the outcomes of their repairs, to b.
func (s *Service) history(ctx context.Context, inc *typesv1.Incident, b *evidence.Bundle) {
	sig := signature(inc, b.Target)
	past, err := s.store.Similar(ctx, sig, inc.GetId(), similarLimit)
	if err != nil {
		b.Gaps = append(b.Gaps, "history: "+err.Error())
		return
	}
	for _, p := range past {
		b.Similar = append(b.Similar, p)
		outcome := "no repair outcome known"
		if p.Action != typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED {
			verdict := "failed"
			if p.Succeeded {
				verdict = "succeeded"
			}
			outcome = fmt.Sprintf("repair %s %s", strings.ToLower(strings.TrimPrefix(p.Action.String(), "REPAIR_ACTION_")), verdict)
		}
		b.Items = append(b.Items, evidence.Item{
			ID: "history/" + p.IncidentID, Source: "history", At: p.At,
			Summary: fmt.Sprintf("Past incident %s of the same kind (%s), %s: %s", p.IncidentID, sig, p.At.UTC().Format(time.RFC3339), outcome),
		})
	}
}

func incidentOf(inc *typesv1.Incident) evidence.Incident {
	e := evidence.Incident{
		ID: inc.GetId(), Title: inc.GetTitle(), Severity: inc.GetSeverity().String(), Team: inc.GetTeam(), OpenedAt: inc.GetOpenedAt().AsTime(),
		Labels: maps.Clone(inc.GetGroupLabels()), Annotations: map[string]string{},
	}
	if e.Labels == nil {
		e.Labels = map[string]string{}
	}
	for _, a := range inc.GetAlerts() {
		for k, v := range a.GetAlert().GetLabels() {
			if _, ok := e.Labels[k]; !ok {
				e.Labels[k] = v
			}
		}
		for k, v := range a.GetAlert().GetAnnotations() {
			if _, ok := e.Annotations[k]; !ok {
				e.Annotations[k] = v
			}
		}
	}
	if inc.GetNamespace() != "" && e.Labels["namespace"] == "" {
		e.Labels["namespace"] = inc.GetNamespace()
	}
	if inc.GetApp() != "" && e.Labels["app"] == "" {
		e.Labels["app"] = inc.GetApp()
	}
	return e
}

// signature is what playbooks learn by: the alert's name and the
// target's kind.
func signature(inc *typesv1.Incident, target *typesv1.ResourceRef) string {
	name := inc.GetGroupLabels()["alertname"]
	if name == "" && len(inc.GetAlerts()) > 0 {
		name = inc.GetAlerts()[0].GetAlert().GetLabels()["alertname"]
	}
	kind := target.GetKind()
	if kind == "" {
		kind = "-"
	}
	return name + "/" + kind
}

func toProto(id, incidentID string, b *evidence.Bundle, r engine.Result, attempts []*analysisv1.Attempt, start, end time.Time) *analysisv1.Analysis {
	a := &analysisv1.Analysis{
		Id: id, IncidentId: incidentID, Summary: r.Summary, RootCause: r.RootCause, Confidence: r.Confidence, Risk: r.Risk,
		Engine: r.Engine, Proposal: r.Proposal, CreateTime: timestamppb.New(end), Target: b.Target,
		RuledOut: r.RuledOut, Reasoning: r.Reasoning, Model: r.Model, Rule: r.Rule, Attempts: attempts, Gaps: b.Gaps,
		Duration: durationpb.New(end.Sub(start)), Sent: r.Usage.Sent,
		BlastRadius: &analysisv1.BlastRadius{
			Pods: int32(r.BlastRadius.Pods), ExpectedDowntime: durationpb.New(r.BlastRadius.ExpectedDowntime), Note: r.BlastRadius.Note, //nolint:gosec // a pod count
		},
		Usage: &analysisv1.Usage{InputTokens: int32(r.Usage.InputTokens), OutputTokens: int32(r.Usage.OutputTokens), CostUsd: r.Usage.Cost}, //nolint:gosec // token counts
	}
	items := map[string]evidence.Item{}
	for _, it := range b.Items {
		items[it.ID] = it
	}
	for _, id := range r.Evidence {
		if it, ok := items[id]; ok {
			a.Evidence = append(a.Evidence, &analysisv1.Evidence{Id: it.ID, Source: it.Source, Summary: it.Summary, Time: timestamppb.New(it.At)})
		}
	}
	return a
}

func labelString(ls map[string]string) string {
	keys := slices.Sorted(maps.Keys(ls))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + ls[k]
	}
	return strings.Join(parts, ",")
}
