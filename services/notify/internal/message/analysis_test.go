package message_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	tgapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

func TestAction(t *testing.T) {
	t.Parallel()
	checkout := &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"}
	tests := []struct {
		name string
		p    *typesv1.RepairProposal
		want string
	}{
		{name: "no proposal", p: nil, want: "Nothing to repair automatically: needs a person"},
		{name: "none", p: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_NONE, Target: checkout}, want: "Nothing to repair automatically: needs a person"},
		{name: "unspecified", p: &typesv1.RepairProposal{Target: checkout}, want: "Nothing to repair automatically: needs a person"},
		{name: "restart", p: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: checkout}, want: "Restart shop/checkout"},
		{
			name: "delete pod",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Pod", Name: "checkout-7d9f-x2"}},
			want: "Delete pod shop/checkout-7d9f-x2 so that it is recreated",
		},
		{
			name: "scale",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, Target: checkout, Params: &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 4}}},
			want: "Scale shop/checkout to 4 replicas",
		},
		{
			name: "scale to one",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT, Target: checkout, Params: &typesv1.RepairProposal_Scale{Scale: &typesv1.ScaleParams{Replicas: 1}}},
			want: "Scale shop/checkout to 1 replica",
		},
		{
			name: "rollback to a revision",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: checkout, Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}}},
			want: "Roll back shop/checkout to revision 3",
		},
		{
			name: "rollback to the previous revision",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: checkout},
			want: "Roll back shop/checkout to its previous revision",
		},
		{
			name: "memory in MiB",
			p: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, Target: checkout, Params: &typesv1.RepairProposal_MemoryLimit{
				MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 768 << 20},
			}},
			want: "Raise the memory limit of container app in shop/checkout to 768 MiB",
		},
		{
			name: "memory in GiB",
			p: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, Target: checkout, Params: &typesv1.RepairProposal_MemoryLimit{
				MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 2 << 30},
			}},
			want: "Raise the memory limit of container app in shop/checkout to 2 GiB",
		},
		{
			name: "memory not in whole MiB",
			p: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT, Target: checkout, Params: &typesv1.RepairProposal_MemoryLimit{
				MemoryLimit: &typesv1.MemoryLimitParams{Container: "app", LimitBytes: 1000 * 1000 * 1000},
			}},
			want: "Raise the memory limit of container app in shop/checkout to 953.7 MiB",
		},
		{
			name: "target in a named cluster",
			p:    &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: &typesv1.ResourceRef{Cluster: "eu-1", Namespace: "shop", Name: "checkout"}},
			want: "Restart shop/checkout (cluster eu-1)",
		},
		{name: "unknown action", p: &typesv1.RepairProposal{Action: 99, Target: checkout}, want: "Unknown action 99 on shop/checkout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Equal(t, tt.want, message.Action(tt.p))
		})
	}
}

func analysis() *eventsv1.AnalysisCompleted {
	return &eventsv1.AnalysisCompleted{
		AnalysisId: "01a20237-0000-7000-8000-000000000001", IncidentId: "01a20236-f568-7af1-9546-d3f52f62c45a",
		Summary:    `checkout crash-loops since revision 4 <script>alert("x")</script> & co`,
		RootCause:  "revision 4's image exits 1 at start; revision 3 was healthy",
		Confidence: 0.854, Risk: typesv1.Risk_RISK_MEDIUM,
		BlastRadius: "the 3 pods of shop/checkout restart one by one", BlastRadiusPods: 3,
		ExpectedDowntime: durationpb.New(30 * time.Second),
		Engine:           "llm:openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042,
		App: "shop",
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
			Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}},
		},
	}
}

func TestAnalysis(t *testing.T) {
	t.Parallel()
	got := message.Analysis(analysis(), html)
	require.Equal(t, `🔎 <b>Analysis: checkout crash-loops since revision 4 &lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co</b>
Cause: revision 4's image exits 1 at start; revision 3 was healthy

<b>Proposed action:</b> Roll back shop/checkout to revision 3
Confidence: 85% · Risk: medium
Blast radius: 3 pods, expected downtime 30s
<i>the 3 pods of shop/checkout restart one by one</i>

Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042
App: shop
Incident: <code>01a20236-f568-7af1-9546-d3f52f62c45a</code>
Analysis: <code>01a20237-0000-7000-8000-000000000001</code>`, got)
}

// The rules engine has no model nor cost; an analysis that proposes
// nothing says a person is needed.
func TestAnalysisRulesNone(t *testing.T) {
	t.Parallel()
	e := &eventsv1.AnalysisCompleted{
		AnalysisId: "a1", IncidentId: "i1", Summary: "disk full", RootCause: "disk full",
		Confidence: 1.2, Engine: "rules", Proposal: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_NONE},
		ExpectedDowntime: durationpb.New(0),
	}
	require.Equal(t, `🔎 <b>Analysis: disk full</b>

<b>Proposed action:</b> Nothing to repair automatically: needs a person
Confidence: 100% · Risk: unknown
Blast radius: no downtime expected

Engine: rules
Incident: <code>i1</code>
Analysis: <code>a1</code>`, message.Analysis(e, html))
}

// Long free text (an LLM's) is cut, before escaping, so the message stays
// under Telegram's limit with its action and ids, and is HTML Telegram
// takes.
func TestAnalysisIsBounded(t *testing.T) {
	t.Parallel()
	e := analysis()
	long := strings.Repeat("a&<b> ", 2000)
	e.Summary, e.RootCause, e.BlastRadius, e.Model = long, long, long, long
	e.Proposal.Target.Name = strings.Repeat("x", 500)
	got := message.Analysis(e, html)

	truncated, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
	require.NoError(t, err, "Telegram would refuse the markup")
	require.Equal(t, got, truncated, "the message fits without truncation")
	require.Contains(t, got, "Roll back shop/"+strings.Repeat("x", 99)+"… to revision 3")
	require.Contains(t, got, "Analysis: <code>01a20237-0000-7000-8000-000000000001</code>")
	require.NotContains(t, got, "<b> ")
}
