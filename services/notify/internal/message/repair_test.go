package message_test

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	tgapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

var (
	html   = telegram.HTML
	mrkdwn = slack.Mrkdwn
)

const repairID = "01a23898-f34e-77f2-88f0-5551a310d725"

func request() *eventsv1.RepairApprovalRequested {
	return &eventsv1.RepairApprovalRequested{
		RepairId: repairID, IncidentId: "01a20236-f568-7af1-9546-d3f52f62c45a", IncidentTitle: "CrashLoop in <shop>",
		Proposal: &typesv1.RepairProposal{
			Action: typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Kind: "Deployment", Name: "checkout"},
			Params: &typesv1.RepairProposal_Rollback{Rollback: &typesv1.RollbackParams{Revision: 3}},
		},
		Reasons:   []string{"risk MEDIUM is above max_auto_risk LOW", "auto-repair is off for app shop"},
		ExpiresAt: timestamppb.New(time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)),
		App:       "shop", Summary: `revision 4 exits 1 </b><script>alert("x")</script> & co`,
		Confidence: 0.8, Risk: typesv1.Risk_RISK_MEDIUM, PodsAffected: 3, ExpectedDowntime: durationpb.New(30 * time.Second),
		Engine: "llm:openai", Model: "gpt-4o-mini", InputTokens: 1200, OutputTokens: 300, CostUsd: 0.0042,
	}
}

func decided(outcome, by, channel string) *eventsv1.RepairDecided {
	return &eventsv1.RepairDecided{
		RepairId: repairID, Outcome: outcome, DecidedBy: by, Channel: channel,
		DecidedAt: timestamppb.New(time.Date(2026, 5, 1, 12, 5, 3, 0, time.FixedZone("CEST", 2*3600))),
	}
}

func TestCardText(t *testing.T) {
	t.Parallel()
	got := message.NewCard(request(), nil, html).Text(html)
	require.Equal(t, `🛠 <b>Approval needed: Roll back shop/checkout to revision 3</b>
Incident: CrashLoop in &lt;shop&gt; (<code>01a20236-f568-7af1-9546-d3f52f62c45a</code>)
App: shop
Target: Deployment shop/checkout
Cause: revision 4 exits 1 &lt;/b&gt;&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; co
Proposed action: <b>Roll back shop/checkout to revision 3</b>
Confidence: 80% · Risk: medium · Pods affected: 3 · Expected downtime: 30s
Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042

<b>Why a person is asked:</b>
• risk MEDIUM is above max_auto_risk LOW
• auto-repair is off for app shop
Decide by: 2026-05-01 12:30:00 UTC
Repair: <code>01a23898-f34e-77f2-88f0-5551a310d725</code>`, got)
	_, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
	require.NoError(t, err, "HTML Telegram takes")
}

// A decided card says what, who, where and when, in UTC.
func TestCardDecided(t *testing.T) {
	t.Parallel()
	tests := []struct {
		dec        *eventsv1.RepairDecided
		title, out string
	}{
		{
			dec: decided("approved", "user:alice", "telegram"), title: "✅ <b>Approved: Roll back shop/checkout to revision 3</b>",
			out: "✅ <b>Approved by user:alice</b> in Telegram at 2026-05-01 10:05:03 UTC",
		},
		{
			dec: func() *eventsv1.RepairDecided {
				d := decided("rejected", "user:<bob>", "slack")
				d.Reason = "not during the sale & not <now>"
				return d
			}(),
			title: "❌ <b>Rejected: Roll back shop/checkout to revision 3</b>",
			out:   "❌ <b>Rejected by user:&lt;bob&gt;</b> in Slack at 2026-05-01 10:05:03 UTC: not during the sale &amp; not &lt;now&gt;",
		},
		{
			dec: decided("expired", "", ""), title: "⌛ <b>Expired: Roll back shop/checkout to revision 3</b>",
			out: "⌛ <b>Expired</b> at 2026-05-01 10:05:03 UTC: nobody answered in time",
		},
		{
			dec: decided("approved", "user:carol", "api"), title: "✅ <b>Approved: Roll back shop/checkout to revision 3</b>",
			out: "✅ <b>Approved by user:carol</b> through the API at 2026-05-01 10:05:03 UTC",
		},
	}
	for _, tt := range tests {
		c := message.NewCard(request(), tt.dec, html)
		got := c.Text(html)
		assert.True(t, strings.HasPrefix(got, tt.title+"\n"), got)
		assert.True(t, strings.HasSuffix(got, "\n\n"+tt.out), got)
		assert.Contains(t, got, "Cause: revision 4 exits 1 &lt;/b&gt;", "the same fields")
		assert.Equal(t, tt.out+"\nRepair: <code>"+repairID+"</code>", message.Decided(tt.dec, html))
	}
}

// In Slack's mrkdwn, outside text can neither format nor mention anyone.
func TestCardMrkdwn(t *testing.T) {
	t.Parallel()
	req := request()
	req.Summary = "<!channel> & <@U123> </b>"
	c := message.NewCard(req, decided("approved", "user:alice", "slack"), mrkdwn)
	assert.Equal(t, "Approved: Roll back shop/checkout to revision 3", c.Title, "plain text, for a header")
	assert.Equal(t, message.Fact{Label: "Cause", Value: "&lt;!channel&gt; &amp; &lt;@U123&gt; &lt;/b&gt;"}, c.Facts[3])
	assert.Equal(t, message.Fact{Label: "Incident", Value: "CrashLoop in &lt;shop&gt; (`01a20236-f568-7af1-9546-d3f52f62c45a`)"}, c.Facts[0])
	assert.Equal(t, "✅ *Approved by user:alice* in Slack at 2026-05-01 10:05:03 UTC", c.Outcome)
	assert.Equal(t, "Roll back shop/checkout to revision 3", c.Action)
}

// A card of an LLM that runs on stays within Telegram's length with its
// ids, and is cut before escaping.
func TestCardIsBounded(t *testing.T) {
	t.Parallel()
	req := request()
	long := strings.Repeat("a&<b> ", 2000)
	req.Summary, req.IncidentTitle, req.Model = long, long, long
	req.Reasons = make([]string, 30)
	for i := range req.Reasons {
		req.Reasons[i] = long
	}
	got := message.NewCard(req, decided("rejected", long, "slack"), html).Text(html)
	truncated, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
	require.NoError(t, err)
	require.Len(t, truncated, len(got), "fits without truncation")
	require.Contains(t, got, "• … and 25 more")
	require.Contains(t, got, "Repair: <code>"+repairID+"</code>")
	require.Contains(t, got, "❌ <b>Rejected by ")
}

func TestRepairProgress(t *testing.T) {
	t.Parallel()
	p := request().GetProposal()
	auto := message.RepairRequested(&eventsv1.RepairRequested{RepairId: repairID, Proposal: p, ApprovedBy: "guardrails", DryRun: true}, html)
	assert.Equal(t, `⚙️ <b>Repairing without asking: Roll back shop/checkout to revision 3</b>
Nobody was asked: the guardrails allow this repair automatically (auto-repair is on for it, and its risk, confidence, pods affected, hourly limits and cooldown are all within policy).
<i>Dry run: the change goes to the cluster as a server-side dry run; nothing will change.</i>
Repair: <code>`+repairID+`</code>`, auto)

	approved := message.RepairRequested(&eventsv1.RepairRequested{RepairId: repairID, Proposal: p, ApprovedBy: "user:alice", Channel: "slack"}, mrkdwn)
	assert.Equal(t, "⚙️ *Repairing: Roll back shop/checkout to revision 3*\nApproved by user:alice in Slack.\nRepair: `"+repairID+"`", approved)

	ok := message.RepairSucceeded(&eventsv1.RepairSucceeded{RepairId: repairID, Proposal: p, Verification: "3/3 replicas <ready> & no restarts"}, html)
	assert.Equal(t, "✅ <b>Repaired: Roll back shop/checkout to revision 3</b>\nVerified: 3/3 replicas &lt;ready&gt; &amp; no restarts\nRepair: <code>"+repairID+"</code>", ok)

	failed := message.RepairFailed(&eventsv1.RepairFailed{
		RepairId: repairID, Proposal: p, Reason: "pods restart <again>", Undone: true,
		CooldownUntil: timestamppb.New(time.Date(2026, 5, 1, 12, 40, 0, 0, time.UTC)),
	}, html)
	assert.Equal(t, `❌ <b>Repair failed: Roll back shop/checkout to revision 3</b>
Why: pods restart &lt;again&gt;
The change was undone.
No automatic repair of shop/checkout until 2026-05-01 12:40:00 UTC.
<b>A person must look.</b>
Repair: <code>`+repairID+`</code>`, failed)

	blocked := message.RepairBlocked(&eventsv1.RepairBlocked{
		RepairId: repairID, Proposal: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: p.GetTarget()},
		Reasons: []string{"shop/checkout cools down until 12:40", "namespace <shop> not allowed"}, Summary: "crash loop",
	}, mrkdwn)
	assert.Equal(t, "⛔ *Repair blocked: Restart shop/checkout*\nThe guardrails will not run it, even if approved:\n• shop/checkout cools down until 12:40\n• namespace &lt;shop&gt; not allowed\nCause: crash loop\n*A person must look.*\nRepair: `"+repairID+"`", blocked)
}
