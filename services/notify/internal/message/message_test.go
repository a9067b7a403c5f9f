package message_test

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/approval"
	tgapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

var (
	html   = telegram.HTML
	mrkdwn = slack.Mrkdwn
)

func taipei(t *testing.T) *time.Location {
	t.Helper()
	z, err := time.LoadLocation("Asia/Taipei")
	require.NoError(t, err)
	return z
}

// Every kind of message, in English (UTC) and Traditional Chinese
// (Asia/Taipei), plain and in Telegram's HTML, is what its golden file
// says (go test -update rewrites them).
func TestGolden(t *testing.T) {
	t.Parallel()
	type sample struct {
		name string
		msg  message.Message
	}
	var samples []sample
	for _, k := range message.Kinds {
		samples = append(samples, sample{string(k), message.Sample(k)})
	}
	for _, o := range []string{"approved", "rejected", "expired"} {
		samples = append(samples, sample{"repair.approval." + o, message.SampleDecidedCard(o)})
	}
	samples = append(samples,
		sample{"repair.approval.snoozed", message.SampleSnoozedCard(false)},
		sample{"repair.approval.reminder", message.SampleSnoozedCard(true)})
	locales := map[string]message.Locale{"en": {Language: "en"}, "zh-TW": {Language: "zh-TW", Zone: taipei(t)}}
	markups := map[string]message.Markup{"plain": message.Plain, "telegram": html}
	for _, s := range samples {
		for lang, loc := range locales {
			for mname, m := range markups {
				msg := s.msg
				msg.Locale = loc
				msg.Links = message.Links{Base: "https://vigil.example.com"}
				got := msg.Text(m) + "\n"
				path := filepath.Join("testdata", "golden", s.name+"."+lang+"."+mname+".txt")
				if *update {
					require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
					require.NoError(t, os.WriteFile(path, []byte(got), 0o600))
					continue
				}
				want, err := os.ReadFile(path)
				require.NoError(t, err, "run go test -update to write it")
				assert.Equal(t, string(want), got, path)
				if mname == "telegram" {
					_, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
					require.NoError(t, err, "HTML Telegram takes: %s", path)
				}
			}
		}
	}
}

// Text from outside -- an alert, an LLM, a person -- is data in every
// markup and language: escaped, never markup.
func TestHostileTextStaysData(t *testing.T) {
	t.Parallel()
	const hostile = "</b><script>alert(1)</script> & <!channel> *bold* <@U1> <a href=\"x\">"
	inc := &typesv1.Incident{
		Id: "i1", Title: hostile, Severity: typesv1.Severity_SEVERITY_CRITICAL, App: hostile, Priority: typesv1.Priority_PRIORITY_P0,
		GroupLabels: map[string]string{"alertname": hostile},
		Alerts: []*typesv1.IncidentAlert{{Alert: &typesv1.Alert{
			Annotations: map[string]string{"summary": hostile}, Labels: map[string]string{"instance": hostile},
			GeneratorUrl: "https://example.com/?a=<b>&c=\"d\"",
		}}},
	}
	proposal := &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: hostile, Name: hostile}}
	msgs := []message.Message{
		message.IncidentOpened(inc),
		message.IncidentEscalated(&eventsv1.IncidentEscalated{Incident: inc, Level: 1, Users: []string{hostile}, Reason: hostile}),
		message.Analysis(&eventsv1.AnalysisCompleted{Summary: hostile, RootCause: hostile + "!", BlastRadius: hostile, Model: hostile, Proposal: proposal}),
		message.ApprovalCard(&eventsv1.RepairApprovalRequested{Summary: hostile, IncidentTitle: hostile, App: hostile, Reasons: []string{hostile}, Proposal: proposal},
			&eventsv1.RepairDecided{Outcome: hostile, DecidedBy: hostile, Reason: hostile, Channel: hostile}),
		message.RepairBlocked(&eventsv1.RepairBlocked{Reasons: []string{hostile}, Summary: hostile, Proposal: proposal}),
		message.DeployFailed(&eventsv1.DeployFailed{App: hostile, Reason: hostile}),
		message.IncidentRepeated(message.Firing{ID: hostile, Title: hostile, OpenedAt: time.Now()}, time.Now()),
		message.ChannelTest(hostile, time.Now()),
		message.ApprovalCard(&eventsv1.RepairApprovalRequested{Proposal: proposal, SnoozedUntil: timestamppb.Now(), SnoozedBy: hostile, Reminder: true}, nil),
	}
	markups := map[string]struct {
		m      message.Markup
		banned []string
	}{
		"telegram": {html, []string{"<script", "</b><", "<a href=\"x\""}},
		"email":    {email.HTML, []string{"<script", "</b><", "<a href=\"x\""}},
		"slack":    {mrkdwn, []string{"<!channel>", "<@U1>", "<script"}},
	}
	for name, mk := range markups {
		for _, lang := range []string{"en", "zh-TW"} {
			for _, msg := range msgs {
				msg.Locale.Language = lang
				got := msg.Text(mk.m)
				for _, b := range mk.banned {
					assert.NotContains(t, got, b, "%s %s %s", name, lang, msg.About.Kind)
				}
				if name == "telegram" {
					_, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
					require.NoError(t, err, "%s %s: Telegram takes it", lang, msg.About.Kind)
				}
			}
		}
	}
	// Plain text shows it as it is: nothing was lost.
	got := message.IncidentOpened(inc).Text(message.Plain)
	assert.Contains(t, got, "Incident opened: "+hostile)
}

// An incident's Acknowledge button is labelled in the recipient's
// language, and carries the incident's id whatever the language.
func TestButtonsLabelled(t *testing.T) {
	t.Parallel()
	inc := &typesv1.Incident{Id: "01a20236-f568-7af1-9546-d3f52f62c45a", Title: "DiskFull"}
	tests := []struct {
		language string
		want     []string
	}{
		{"en", []string{"Acknowledge", "Escalate", "Snooze"}},
		{"zh-TW", []string{"確認", "升級處理", "暫停提醒"}},
		{"ja", []string{"Acknowledge", "Escalate", "Snooze"}}, // a language without templates speaks English
	}
	for _, tt := range tests {
		msg := message.IncidentOpened(inc)
		msg.Actions = message.IncidentActions(inc)
		msg.Locale.Language = tt.language
		got := msg.Buttons()
		require.Len(t, got, len(tt.want), tt.language)
		for i, verb := range []approval.Verb{approval.Acknowledge, approval.Escalate, approval.Snooze} {
			assert.Equal(t, tt.want[i], got[i].Label, tt.language)
			assert.Equal(t, verb, got[i].Verb)
			assert.Equal(t, inc.GetId(), got[i].ID)
		}
	}
	assert.Empty(t, message.IncidentOpened(inc).Buttons(), "no actions, no buttons")
}

// Each action in words, in English.
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
			got := message.RepairSucceeded(&eventsv1.RepairSucceeded{RepairId: "r1", Proposal: tt.p}).Text(message.Plain)
			first, _, _ := strings.Cut(got, "\n")
			require.Equal(t, "✅ Repaired: "+tt.want, first)
		})
	}
}

// Times are shown in the recipient's zone with its abbreviation and
// offset; durations in words of the language.
func TestZoneAndDuration(t *testing.T) {
	t.Parallel()
	msg := message.Sample(message.KindIncidentResolved)
	assert.Contains(t, msg.Text(message.Plain), "Duration: 42 minutes 10 seconds (resolved at 2026-05-01 12:42:10 UTC)")
	msg.Locale = message.Locale{Language: "zh-TW", Zone: taipei(t)}
	assert.Contains(t, msg.Text(message.Plain), "持續時間：42 分鐘 10 秒（解決於 2026-05-01 20:42:10 CST (UTC+08:00)）")
	ny, err := time.LoadLocation("America/New_York")
	require.NoError(t, err)
	msg.Locale = message.Locale{Language: "en-US", Zone: ny}
	assert.Contains(t, msg.Text(message.Plain), "resolved at 2026-05-01 08:42:10 EDT (UTC-04:00)")
}

// A card in Slack's mrkdwn: outside text can neither format nor mention
// anyone; its title and action are plain text; its words follow its
// language.
func TestCardParts(t *testing.T) {
	t.Parallel()
	msg := message.SampleDecidedCard("approved")
	c, ok := msg.Card(mrkdwn)
	require.True(t, ok)
	assert.Equal(t, "Approved: Roll back shop/checkout to revision 3", c.Title)
	assert.Equal(t, "Roll back shop/checkout to revision 3", c.Action)
	assert.Equal(t, "✅ *Approved by user:alice* in Telegram at 2026-05-01 12:05:00 UTC", c.Outcome)
	assert.Equal(t, message.Fact{Label: "Cause", Value: "revision 4's image exits 1 at start; revision 3 was healthy"}, c.Facts[3])
	assert.Equal(t, "Approve", c.Words.Approve)
	assert.Equal(t, "P1", c.Priority, "the incident's priority leads the header")
	assert.Equal(t, "✅ P1 · shop · Approved: Roll back shop/checkout to revision 3", c.Heading())
	unknown, _ := message.ApprovalCard(&eventsv1.RepairApprovalRequested{RepairId: "r1", App: "shop"}, nil).Card(mrkdwn)
	assert.Empty(t, unknown.Priority, "a priority the repair service never heard")
	assert.True(t, strings.HasPrefix(unknown.Heading(), "🛠 shop · "), "%q", unknown.Heading())

	msg.Locale.Language = "zh_tw"
	c, _ = msg.Card(mrkdwn)
	assert.Equal(t, "已核准：將 shop/checkout 回滾到版本 3", c.Title)
	assert.Equal(t, "核准", c.Words.Approve)
	assert.Equal(t, message.Fact{Label: "原因", Value: "revision 4's image exits 1 at start; revision 3 was healthy"}, c.Facts[3])

	_, ok = message.Sample(message.KindAnalysis).Card(mrkdwn)
	assert.False(t, ok, "only an approval card is a card")
}

// A card of an LLM that runs on stays within Telegram's length with its
// ids, in both languages, and is cut before escaping.
func TestCardIsBounded(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a&<b> ", 2000)
	reasons := make([]string, 30)
	for i := range reasons {
		reasons[i] = long
	}
	req := &eventsv1.RepairApprovalRequested{
		RepairId: "r1", Summary: long, IncidentTitle: long, Model: long, Reasons: reasons,
		Proposal: &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT, Target: &typesv1.ResourceRef{Namespace: "shop", Name: strings.Repeat("x", 500)}},
	}
	for _, lang := range []string{"en", "zh-TW"} {
		msg := message.ApprovalCard(req, &eventsv1.RepairDecided{Outcome: "rejected", DecidedBy: long, DecidedAt: timestamppb.Now()})
		msg.Locale.Language = lang
		got := msg.Text(html)
		truncated, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
		require.NoError(t, err)
		require.Len(t, truncated, len(got), "fits without truncation")
		require.Contains(t, got, "<code>r1</code>")
		require.NotContains(t, got, "<b> ")
	}
	a := message.Analysis(&eventsv1.AnalysisCompleted{AnalysisId: "a1", Summary: long, RootCause: long, BlastRadius: long, Model: long, Proposal: req.GetProposal()})
	got := a.Text(html)
	truncated, err := tgapi.TruncateHTML(got, tgapi.MaxMessageLength)
	require.NoError(t, err)
	require.Equal(t, got, truncated)
	require.Contains(t, got, "Restart shop/"+strings.Repeat("x", 99)+"…")
}

// The resolution, an escalation and a failed or blocked repair ask the
// whole conversation to look; the rest stay in the thread.
func TestBroadcast(t *testing.T) {
	t.Parallel()
	want := map[message.Kind]bool{
		message.KindIncidentResolved: true, message.KindIncidentEscalated: true,
		message.KindRepairFailed: true, message.KindRepairBlocked: true,
	}
	for _, k := range message.Kinds {
		assert.Equal(t, want[k], message.Sample(k).Broadcast, k)
	}
}
