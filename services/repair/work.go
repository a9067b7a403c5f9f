package repair

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/repair/internal/action"
	"github.com/vigil-ops/vigil/services/repair/internal/guard"
	"github.com/vigil-ops/vigil/services/repair/internal/postgres"
)

// maxAttempts: a repair whose step failed this often (the cluster out of
// reach) fails, and people are told; it is not retried forever.
const maxAttempts = 5

// callTimeout bounds one plan or execution against a cluster (the
// executors' own waits included): a cluster that does not answer fails
// the step, which is retried.
const callTimeout = time.Minute

// lease bounds a step without verification; verification holds the
// repair for its window and renews as it goes.
const lease = 2 * time.Minute

// work is one worker: it leases repairs with work to do and moves each
// one step on (decide, execute, verify).
func (s *Service) work(ctx context.Context) error {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		for ctx.Err() == nil {
			row, ok, err := s.store.Lease(ctx, s.now(), lease)
			if err != nil {
				if ctx.Err() == nil {
					s.log.WarnContext(ctx, "lease a repair failed", "error", err)
				}
				break
			}
			if !ok {
				break
			}
			s.advance(ctx, row)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		case <-s.wake:
		}
	}
}

// state is what a repair carries between its steps (the result column).
type state struct {
	Plan          *action.Plan   `json:"plan,omitempty"`
	Verify        *action.Verify `json:"verify,omitempty"`
	Undo          *action.Undo   `json:"undo,omitempty"`
	VerifyStarted time.Time      `json:"verify_started,omitzero"`
	// VerifyUntil and UndoOnFailure are the guardrails' as the change
	// was made: verification does not read them again on every look.
	VerifyUntil   time.Time `json:"verify_until,omitzero"`
	UndoOnFailure bool      `json:"undo_on_failure,omitempty"`
	// Deploy is the change asked of the deploy service (Vigil's apps).
	Deploy *deployChange `json:"deploy,omitempty"`
}

// verifying is st once a change was made at now, under set.
func (st state) verifying(v *action.Verify, u *action.Undo, now time.Time, set guard.Settings) state {
	st.Verify, st.Undo, st.VerifyStarted = v, u, now
	st.VerifyUntil, st.UndoOnFailure = now.Add(set.VerifyWindow), set.UndoOnFailure
	return st
}

func loadState(row postgres.Row) state {
	var st state
	if len(row.Result) > 0 {
		_ = json.Unmarshal(row.Result, &st)
	}
	return st
}

func (st state) json() json.RawMessage {
	b, _ := json.Marshal(st)
	return b
}

// advance moves a leased repair one step on.
func (s *Service) advance(ctx context.Context, row postgres.Row) {
	r := row.Repair
	log := s.log.With("repair_id", r.GetId(), "incident_id", r.GetIncidentId())
	var err error
	switch r.GetStatus() {
	case repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED:
		err = s.decide(ctx, row)
	case repairv1.RepairStatus_REPAIR_STATUS_QUEUED, repairv1.RepairStatus_REPAIR_STATUS_RUNNING:
		err = s.execute(ctx, row)
	case repairv1.RepairStatus_REPAIR_STATUS_VERIFYING:
		err = s.verify(ctx, row)
	}
	switch {
	case err == nil:
	case ctx.Err() != nil:
		// Stopping: the lease runs out and the step is taken again.
	case row.Attempts >= maxAttempts:
		log.ErrorContext(ctx, "repair step failed, giving up", "attempts", row.Attempts, "error", err)
		s.fail(ctx, row, fmt.Sprintf("gave up after %d attempts: %v", row.Attempts, err), false)
	default:
		log.WarnContext(ctx, "repair step failed, will retry", "attempts", row.Attempts, "error", err)
	}
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
func (s *Service) decide(ctx context.Context, row postgres.Row) error {
	r := row.Repair
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
			r.PodsAffected = int32(p.PodsAffected)
			if p.Downtime > 0 || r.GetExpectedDowntime() == nil {
				r.ExpectedDowntime = durationpb.New(p.Downtime)
			}
		}
	}
	return pgx.BeginFunc(ctx, s.deps.Pool, func(tx pgx.Tx) error {
		now := s.now()
		counts, err := s.store.CountAutomatic(ctx, tx, row.Resource, now)
		if err != nil {
			return err
		}
		facts.Now, facts.AutoLastHour, facts.AutoOnResourceLastHour, facts.CooldownUntil = now, counts.Overall, counts.OnResource, counts.CooldownUntil
		decision, reasons := guard.Decide(set, facts)
		if refusal != "" {
			decision, reasons = repairv1.Decision_DECISION_BLOCKED, append([]string{refusal}, reasons...)
		}
		r.Decision, r.Reasons, r.DecisionReason = decision, reasons, strings.Join(reasons, "; ")
		r.DryRun = set.DryRun
		r.UpdateTime = timestamppb.New(now)
		u := postgres.Update{DecidedAt: now, Release: true, Result: state{Plan: plan}.json()}
		var ev bus.Event
		switch decision {
		case repairv1.Decision_DECISION_AUTO:
			r.Status, u.Automatic = repairv1.RepairStatus_REPAIR_STATUS_QUEUED, true
		case repairv1.Decision_DECISION_NEEDS_APPROVAL:
			r.Status = repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL
			u.ExpiresAt = now.Add(set.ApprovalTTL)
			r.ExpireTime = timestamppb.New(u.ExpiresAt)
			ev = s.approvalRequested(r)
		default:
			r.Status = repairv1.RepairStatus_REPAIR_STATUS_BLOCKED
			ev = &eventsv1.RepairBlocked{
				Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(),
				Proposal: r.GetProposal(), Reasons: reasons, App: r.GetApp(), Summary: r.GetSummary(),
			}
		}
		if err := s.store.Save(ctx, tx, r, u, now); err != nil {
			return err
		}
		msg := strings.TrimPrefix(decision.String(), "DECISION_")
		if len(reasons) > 0 {
			msg += ": " + r.GetDecisionReason()
		}
		if err := s.step(ctx, tx, r.GetId(), repairv1.StepKind_STEP_KIND_DECIDED, "guardrails", "", strings.ToLower(msg)); err != nil {
			return err
		}
		s.log.InfoContext(ctx, "repair decided", "repair_id", r.GetId(), "decision", decision.String(), "reasons", r.GetDecisionReason())
		if ev == nil {
			// Queued: this worker leases it again at once.
			return nil
		}
		return outbox.Add(ctx, tx, ev)
	})
}

func (s *Service) approvalRequested(r *repairv1.Repair) *eventsv1.RepairApprovalRequested {
	return &eventsv1.RepairApprovalRequested{
		Meta: bus.NewMeta(Producer, nil), RepairId: r.GetId(), IncidentId: r.GetIncidentId(), Proposal: r.GetProposal(),
		Reason: r.GetDecisionReason(), Reasons: r.GetReasons(), ExpiresAt: r.GetExpireTime(), AnalysisId: r.GetAnalysisId(),
		App: r.GetApp(), Summary: r.GetSummary(), Confidence: r.GetConfidence(), Risk: r.GetRisk(),
		PodsAffected: r.GetPodsAffected(), ExpectedDowntime: r.GetExpectedDowntime(), Engine: r.GetEngine(),
		Model: r.GetModel(), InputTokens: r.GetInputTokens(), OutputTokens: r.GetOutputTokens(), CostUsd: r.GetCostUsd(),
		IncidentTitle: r.GetIncidentTitle(),
	}
}
