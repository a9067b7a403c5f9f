package repair

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/protobuf/proto"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/db"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/lifecycle"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// maxFailures: a repair whose step failed this often in a row (the
// cluster or the database out of reach), each try a lease apart, fails,
// and people are told; it is not retried forever. Only failed tries
// count, never leases: a verification takes a lease at every poll, and a
// blip after minutes of polling is one failure, not the last straw. A
// try that goes well — a poll that finds the repair not verified yet
// included — ends the run, and each step starts its own (Store.Failed):
// what gives up is a step that keeps failing, not a repair that met a
// few blips on its way.
const maxFailures = 5

// maxTries: a repair whose step was leased this often without going well
// or failing -- its worker died or was stopped in it each time -- fails
// too. Failures cannot count that (nobody is left to record them); twice
// maxFailures leaves room for a rolling restart or two during a step.
const maxTries = 2 * maxFailures

// callTimeout bounds one plan or execution against a cluster (the
// executors' own waits included): a cluster that does not answer fails
// the step, which is retried.
const callTimeout = time.Minute

// work is one worker: it leases repairs with work to do and moves each
// one step on (decide, execute, verify).
func (s *Service) work(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	// Postgres down fails every lease: logged when it begins and ends.
	leasing := db.Failures{Log: s.log, Attrs: []any{"step", "lease a repair"}}
	for {
		for ctx.Err() == nil {
			r, ok, err := s.store.Lease(ctx, s.now(), s.opts.Lease)
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
			s.advance(ctx, r)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// advance moves a leased repair one step on, renewing its lease while
// the step runs (however long a rollout takes).
func (s *Service) advance(ctx context.Context, rp *lifecycle.Repair) {
	r := rp.Proto()
	log := s.log.With("repair_id", r.GetId(), "incident_id", r.GetIncidentId())
	if rp.Tries() > maxTries {
		log.ErrorContext(ctx, "repair step never finished, giving up", "tries", rp.Tries()-1)
		s.fail(ctx, r, fmt.Sprintf("gave up: %d tries of its step never finished (the worker died or was stopped in each)", rp.Tries()-1), nil)
		return
	}
	renewing, stopRenewing := context.WithCancel(ctx)
	renewed := make(chan struct{})
	go func() { defer close(renewed); s.renew(renewing, rp) }()
	var (
		again bool
		err   error
	)
	switch rp.Status() {
	case repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED:
		err = s.decide(ctx, rp)
	case repairv1.RepairStatus_REPAIR_STATUS_QUEUED, repairv1.RepairStatus_REPAIR_STATUS_RUNNING:
		err = s.execute(ctx, rp)
	case repairv1.RepairStatus_REPAIR_STATUS_VERIFYING:
		again, err = s.verify(ctx, rp)
	}
	// No renewal may land after the shorter hold below.
	stopRenewing()
	<-renewed
	if again {
		// Any free worker looks again then, not at its next idle tick.
		err = s.store.Hold(ctx, r.GetId(), rp.Attempts(), s.now().Add(verifyEvery))
		time.AfterFunc(verifyEvery, s.poke)
	}
	if err == nil || ctx.Err() != nil {
		// Done, or stopping: then the lease runs out and the step is
		// taken again, which is no failure of the step.
		return
	}
	failures, held, recErr := s.store.Failed(ctx, r.GetId(), rp.Attempts())
	switch {
	case recErr != nil:
		// The database away, most likely: the step is tried again when
		// the lease runs out, and counted then.
		log.WarnContext(ctx, "repair step failed, will retry", "error", err, "count_error", recErr)
	case !held:
		log.WarnContext(ctx, "repair step failed after its lease ran out; another worker has it", "error", err)
	case failures >= maxFailures:
		log.ErrorContext(ctx, "repair step failed, giving up", "failures", failures, "error", err)
		s.fail(ctx, r, fmt.Sprintf("gave up after %d failed tries in a row: %v", failures, err), nil)
	default:
		log.WarnContext(ctx, "repair step failed, will retry", "failures", failures, "error", err)
	}
}

// renew keeps rp's lease this worker's until ctx ends, or until the
// step released it or another worker leased the repair (Store.Renew).
func (s *Service) renew(ctx context.Context, rp *lifecycle.Repair) {
	db.KeepLease(ctx, s.opts.Lease, func(ctx context.Context) (bool, error) {
		return s.store.Renew(ctx, rp.ID(), rp.Attempts(), s.now().Add(s.opts.Lease))
	}, func(err error) {
		s.log.WarnContext(ctx, "renewing a repair's lease failed", "repair_id", rp.ID(), "error", err)
	})
}

// settings are the guardrails that apply to r (see layers).
func (s *Service) settings(ctx context.Context, q postgres.Querier, r *repairv1.Repair) (guard.Settings, error) {
	t := r.GetProposal().GetTarget()
	layers, _, err := s.layers(ctx, q, guard.Scope{Cluster: t.GetCluster(), Namespace: t.GetNamespace()}, r.GetApp())
	if err != nil {
		return guard.Settings{}, err
	}
	return guard.Effective(s.base, layers...), nil
}

// layers are the guardrails set where a repair acts, least specific
// first, for guard.Effective over the base (the defaults and the file's
// global ones): for the global scope, the namespace (ns; the app's own
// when ns is empty) and the app, each the file's, then — for an app Vigil
// deploys — its --auto-repair, then what the API set. own is what the API
// set for the most specific of them (nil: nothing).
func (s *Service) layers(ctx context.Context, q postgres.Querier, ns guard.Scope, app string) (layers []*repairv1.Guardrails, own *repairv1.Guardrails, err error) {
	var deployed *appteam.App
	if app != "" {
		a, ok, err := appteam.Get(ctx, q, app)
		if err != nil {
			return nil, nil, err
		}
		if ok {
			deployed = &a
			if ns.Namespace == "" {
				ns = guard.Scope{Cluster: a.Cluster, Namespace: a.Namespace}
			}
		}
	}
	scopes := []guard.Scope{{}}
	if ns.Namespace != "" {
		scopes = append(scopes, ns)
	}
	if app != "" {
		scopes = append(scopes, guard.Scope{App: app})
	}
	for _, sc := range scopes {
		name := sc.String()
		layers = append(layers, s.fileScopes[name])
		if sc.App != "" && deployed != nil {
			layers = append(layers, &repairv1.Guardrails{Scope: name, Auto: proto.Bool(deployed.AutoRepair)})
		}
		if own, err = s.store.Guardrails(ctx, q, name); err != nil {
			return nil, nil, err
		}
		layers = append(layers, own)
	}
	return layers, own, nil
}

func limits(set guard.Settings) action.Limits {
	return action.Limits{
		MinReplicas: int32(set.MinHealthyReplicas), MaxReplicas: int32(set.MaxReplicas), MaxMemoryBytes: set.MaxMemoryBytes,
	}
}

// client is the repair identity's client of the target's cluster.
func (s *Service) client(ctx context.Context, r *repairv1.Repair) (kubernetes.Interface, error) {
	cluster, err := s.targetCluster(ctx, r)
	if err != nil {
		return nil, err
	}
	return s.deps.Clusters.Repairer(ctx, cluster)
}

// targetCluster is the cluster of r's target: the one it names, else the
// default.
func (s *Service) targetCluster(ctx context.Context, r *repairv1.Repair) (string, error) {
	if s.deps.Clusters == nil {
		return "", errNoClusters
	}
	if c := r.GetProposal().GetTarget().GetCluster(); c != "" {
		return c, nil
	}
	return s.deps.Clusters.DefaultCluster(ctx)
}

var errNoClusters = errors.New("no cluster access in this process (run deploy with repair, or give repair its own identity)")

// decide plans the repair against the cluster as it is and lets the
// guardrails decide: queue it (auto), ask a person, or block it.
func (s *Service) decide(ctx context.Context, rp *lifecycle.Repair) error {
	r := rp.Proto()
	set, err := s.settings(ctx, s.deps.Pool, r)
	if err != nil {
		return err
	}
	facts := guard.Facts{
		Proposal: r.GetProposal(), Confidence: r.GetConfidence(), Risk: r.GetRisk(), Supported: true,
		PodsAffected: int(r.GetPodsAffected()), HealthyAfter: -1,
	}
	var (
		plan    *action.Plan
		refusal string
	)
	c, noCluster := s.client(ctx, r)
	if noCluster != nil && !errors.Is(noCluster, errNoClusters) {
		return noCluster
	}
	// Only the incident's subject, whatever the analysis proposed; the
	// cluster tells whether the target controls the subject's pod.
	if refusal, err = s.offSubject(ctx, c, r); err != nil {
		return err
	}
	if refusal == "" && noCluster != nil {
		refusal = noCluster.Error()
	}
	if refusal == "" {
		planCtx, cancel := context.WithTimeout(ctx, callTimeout)
		p, err := s.actions.Plan(planCtx, c, r.GetProposal(), limits(set))
		cancel()
		var refused *action.RefusedError
		switch {
		case errors.As(err, &refused):
			if errors.Is(err, action.ErrNotSupported) {
				facts.Supported = false
			} else {
				refusal = err.Error()
			}
		case err != nil:
			return err
		default:
			plan = &p
			facts.PodsAffected, facts.HealthyAfter = p.PodsAffected, int(p.HealthyDuring)
			if p.HealthyDuring >= p.HealthyBefore {
				// The floor forbids a repair taking a workload below it,
				// as the executors read it (action.Limits.CheckHealthy);
				// one already below it (all pods crashing, scaled to
				// zero) can be repaired by a change that does not take
				// it lower.
				facts.HealthyAfter = max(facts.HealthyAfter, set.MinHealthyReplicas)
			}
		}
	}
	// The hourly limits and the cooldown are counted under the
	// repository's lock (lifecycle.Repair.Recent).
	return s.repairs.Update(ctx, r.GetId(), func(rp *lifecycle.Repair) error {
		now := s.now()
		counts := rp.Recent()
		facts.Now, facts.AutoLastHour, facts.AutoOnResourceLastHour, facts.CooldownUntil = now, counts.Overall, counts.OnResource, counts.CooldownUntil
		decision, reasons := guard.Decide(set, facts)
		if refusal != "" {
			decision, reasons = repairv1.Decision_DECISION_BLOCKED, append([]string{refusal}, reasons...)
		}
		if err := rp.Decide(lifecycle.Decision{
			Decision: decision, Reasons: reasons, Plan: plan, DryRun: set.DryRun, ApprovalTTL: set.ApprovalTTL,
		}, now); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "repair decided", "repair_id", rp.ID(), "decision", decision.String(), "reasons", rp.Proto().GetDecisionReason())
		return nil
	})
}
