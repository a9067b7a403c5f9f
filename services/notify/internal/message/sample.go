package message

import (
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Sample is a message of kind k about a made-up incident of the app
// shop: what a template is checked against when it is loaded, and what
// docs/messages.md shows.
func Sample(k Kind) Message {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	inc := &typesv1.Incident{
		Id: "01a20236-f568-7af1-9546-d3f52f62c45a", Title: "CrashLoopBackOff: shop/checkout",
		Severity: typesv1.Severity_SEVERITY_CRITICAL, Priority: typesv1.Priority_PRIORITY_P1,
		App: "shop", Team: "payments", Namespace: "shop",
		Subject:     &typesv1.Subject{Namespace: "shop", Kind: "Deployment", Name: "checkout", Pod: "checkout-7d9f-x2"},
		GroupLabels: map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop"},
		AlertCount:  2, FiringCount: 2, OpenedAt: timestamppb.New(at),
		Alerts: []*typesv1.IncidentAlert{{Alert: &typesv1.Alert{
			Labels:       map[string]string{"alertname": "KubePodCrashLooping", "instance": "10.0.3.7:8080"},
			Annotations:  map[string]string{"summary": "checkout restarts every 30s"},
			GeneratorUrl: "https://prometheus.example.com/graph?g0.expr=up",
		}}},
	}
	proposal := &typesv1.RepairProposal{
		Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
		Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}},
	}
	const repairID = "01a23898-f34e-77f2-88f0-5551a310d725"
	req := &eventsv1.RepairApprovalRequested{
		RepairId: repairID, IncidentId: inc.GetId(), IncidentTitle: inc.GetTitle(), Proposal: proposal,
		Reasons:   []string{"risk MEDIUM is above max_auto_risk LOW", "auto-repair is off for app shop"},
		ExpiresAt: timestamppb.New(at.Add(30 * time.Minute)), App: "shop", Priority: inc.GetPriority(),
		Summary:    "revision 4's image exits 1 at start; revision 3 was healthy",
		Confidence: 0.85, Risk: typesv1.Risk_RISK_MEDIUM, PodsAffected: 3, ExpectedDowntime: durationpb.New(30 * time.Second),
		Engine: "llm:openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042,
	}
	decided := func(outcome, by string) *eventsv1.RepairDecided {
		return &eventsv1.RepairDecided{RepairId: repairID, IncidentId: inc.GetId(), Outcome: outcome, DecidedBy: by, Channel: "telegram", DecidedAt: timestamppb.New(at.Add(5 * time.Minute))}
	}
	switch k {
	case KindIncidentOpened:
		return IncidentOpened(inc)
	case KindIncidentResolved:
		r := proto.CloneOf(inc)
		r.ResolvedAt, r.ResolvedBy, r.Status = timestamppb.New(at.Add(42*time.Minute+10*time.Second)), "repair", typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED
		return IncidentResolved(r)
	case KindIncidentEscalated:
		return IncidentEscalated(&eventsv1.IncidentEscalated{Incident: inc, Level: 2, Policy: "payments-critical", Users: []string{"alice", "bob"}, Channels: []string{"payments-oncall"}, Reason: "unacknowledged"})
	case KindAnalysis:
		return Analysis(&eventsv1.AnalysisCompleted{
			AnalysisId: "01a20237-0000-7000-8000-000000000001", IncidentId: inc.GetId(), Summary: "checkout crash-loops since revision 4",
			RootCause: req.GetSummary(), Confidence: 0.85, Risk: typesv1.Risk_RISK_MEDIUM,
			BlastRadius: "the 3 pods of shop/checkout restart one by one", BlastRadiusPods: 3, ExpectedDowntime: durationpb.New(30 * time.Second),
			Engine: "llm:openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042, App: "shop", Proposal: proposal,
		})
	case KindApprovalCard:
		return ApprovalCard(req, nil)
	case KindDecided:
		return Decided(decided("approved", "user:alice"))
	case KindRepairRequested:
		return RepairRequested(&eventsv1.RepairRequested{RepairId: repairID, IncidentId: inc.GetId(), Proposal: proposal, ApprovedBy: "user:alice", Channel: "telegram"})
	case KindRepairSucceeded:
		return RepairSucceeded(&eventsv1.RepairSucceeded{RepairId: repairID, IncidentId: inc.GetId(), Proposal: proposal, Verification: "3/3 replicas updated and available, no restarts"})
	case KindRepairFailed:
		return RepairFailed(&eventsv1.RepairFailed{
			RepairId: repairID, IncidentId: inc.GetId(), Proposal: proposal, Reason: "pods restart again", Undone: true,
			CooldownUntil: timestamppb.New(at.Add(40 * time.Minute)),
		})
	case KindRepairBlocked:
		return RepairBlocked(&eventsv1.RepairBlocked{
			RepairId: repairID, IncidentId: inc.GetId(), Proposal: proposal, Summary: "crash loop",
			Reasons: []string{"shop/checkout cools down until 12:40", "namespace kube-system is reserved"},
		})
	case KindDeployStarted:
		return DeployStarted(&eventsv1.DeployRequested{DeploymentId: "01a30000-0000-7000-8000-000000000009", App: "shop", Image: "registry.example.com/shop:1.4.2", RequestedBy: "user:alice", Revision: 5})
	case KindDeploySucceeded:
		return DeploySucceeded(&eventsv1.DeploySucceeded{DeploymentId: "01a30000-0000-7000-8000-000000000009", App: "shop", Image: "registry.example.com/shop:1.4.2", Revision: 5, Duration: durationpb.New(94 * time.Second)})
	case KindDeployFailed:
		return DeployFailed(&eventsv1.DeployFailed{DeploymentId: "01a30000-0000-7000-8000-000000000009", App: "shop", Revision: 5, Reason: "rollout did not become available in 5m: 0/3 replicas ready (ImagePullBackOff)"})
	case KindDeployRolledBack:
		return DeployRolledBack(&eventsv1.DeployRolledBack{DeploymentId: "01a30000-0000-7000-8000-00000000000a", App: "shop", FromRevision: 5, ToRevision: 4, Revision: 6})
	case KindIncidentRepeated:
		return IncidentRepeated(Firing{ID: inc.GetId(), Title: inc.GetTitle(), Firing: 2, Alert: 2, OpenedAt: at}, at.Add(65*time.Minute+20*time.Second))
	case KindChannelTest:
		return ChannelTest("payments-oncall", at)
	case KindIncidentFlapping:
		r := proto.CloneOf(inc)
		r.FiringCount, r.Flapping, r.FlappingSince = 0, true, timestamppb.New(at.Add(12*time.Minute))
		return IncidentFlapping(r)
	}
	return Message{About: About{Kind: k}}
}

// SampleDecidedCard is the sample approval card decided: outcome
// approved, rejected (with a reason) or expired.
func SampleDecidedCard(outcome string) Message {
	card := Sample(KindApprovalCard).card
	dec := &eventsv1.RepairDecided{
		RepairId: card.req.GetRepairId(), IncidentId: card.req.GetIncidentId(), Outcome: outcome,
		DecidedAt: timestamppb.New(time.Date(2026, 5, 1, 12, 5, 0, 0, time.UTC)),
	}
	if outcome != "expired" {
		dec.DecidedBy, dec.Channel = "user:alice", "telegram"
	}
	if outcome == "rejected" {
		dec.Reason = "not during the sale"
	}
	return ApprovalCard(card.req, dec)
}

// SampleSnoozedCard is the sample approval card snoozed by a person
// ("Later"), or, as a reminder, asked again once the snooze is over.
func SampleSnoozedCard(reminder bool) Message {
	req := proto.CloneOf(Sample(KindApprovalCard).card.req)
	req.SnoozedUntil = timestamppb.New(time.Date(2026, 5, 1, 12, 15, 0, 0, time.UTC))
	req.SnoozedBy, req.Reminder = "user:alice", reminder
	return ApprovalCard(req, nil)
}
