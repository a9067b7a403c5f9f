package message

import (
	"fmt"
	"strings"
	"time"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Bounds of the free text of a repair's messages, in characters, cut
// before escaping (see Analysis): together they keep a card under
// Telegram's 4096 characters with its action, outcome and ids.
const (
	maxCause   = 800
	maxReason  = 200
	maxReasons = 5
	maxTitle   = 200
)

// Fact is one line of a card: a label (Vigil's own words, no escaping
// needed) and a value in the chat's markup.
type Fact struct{ Label, Value string }

// Card is an approval card in a chat's markup, in parts, so that a chat
// with layout (Slack's blocks) can place them and one without (Telegram)
// can write them one after another.
type Card struct {
	// Icon goes before the title where the chat shows text.
	Icon string
	// Title is plain text, not escaped: "Approval needed: Restart
	// shop/checkout" while it waits, "Approved: ..." once decided.
	Title string
	// Facts are about the incident and the repair: incident, app, target,
	// cause, proposed action.
	Facts []Fact
	// Figures are the short numbers: confidence, risk, pods affected,
	// expected downtime.
	Figures []Fact
	// Why is the reasons a person is asked, one line each.
	Why []string
	// Until is when the approval expires.
	Until string
	// Snoozed says who snoozed the approval ("Later") until when; empty
	// when it is not snoozed or is decided.
	Snoozed string
	// Engine is who proposed it: engine, model, tokens, cost.
	Engine string
	// Repair is the repair's id, formatted as code.
	Repair string
	// Outcome says who decided what, where and when; empty while the card
	// waits, and then the card has buttons.
	Outcome string
	// Action is what approving does, plain text, not escaped: for a
	// confirmation dialog.
	Action string
	// RepairID is the repair's id as it is, for the buttons to carry.
	RepairID string
}

// NewCard is the approval card of req, decided by dec (nil while it
// waits).
func NewCard(req *eventsv1.RepairApprovalRequested, dec *eventsv1.RepairDecided, m Markup) Card {
	esc := m.Escape
	short := func(s string) string { return esc(clip(s, maxShort)) }
	id := req.GetRepairId()
	action := Action(req.GetProposal())
	c := Card{Icon: "🛠", Title: clip("Approval needed: "+action, maxTitle), Action: action, Repair: m.Code(short(id)), RepairID: id}
	if dec != nil {
		c.Icon, c.Title = outcomeIcon(dec.GetOutcome()), clip(outcomeWord(dec.GetOutcome())+": "+action, maxTitle)
		c.Outcome = Outcome(dec, m)
	}
	incident := m.Code(short(req.GetIncidentId()))
	if t := req.GetIncidentTitle(); t != "" {
		incident = esc(clip(t, maxTitle)) + " (" + incident + ")"
	}
	c.Facts = append(c.Facts, Fact{"Incident", incident})
	if app := req.GetApp(); app != "" {
		c.Facts = append(c.Facts, Fact{"App", short(app)})
	}
	target := targetName(req.GetProposal().GetTarget())
	if kind := req.GetProposal().GetTarget().GetKind(); kind != "" {
		target = clip(kind, maxShort) + " " + target
	}
	c.Facts = append(c.Facts,
		Fact{"Target", esc(target)},
		Fact{"Cause", esc(clip(oneOf(req.GetSummary(), "not stated"), maxCause))},
		Fact{"Proposed action", m.Bold(esc(action))},
	)
	c.Figures = []Fact{
		{"Confidence", percent(req.GetConfidence())},
		{"Risk", riskName(req.GetRisk())},
		{"Pods affected", fmt.Sprint(req.GetPodsAffected())},
		{"Expected downtime", downtime(req)},
	}
	reasons := req.GetReasons()
	if len(reasons) == 0 && req.GetReason() != "" {
		reasons = []string{req.GetReason()}
	}
	for i, r := range reasons {
		if i == maxReasons {
			c.Why = append(c.Why, fmt.Sprintf("… and %d more", len(reasons)-maxReasons))
			break
		}
		c.Why = append(c.Why, esc(clip(r, maxReason)))
	}
	if len(c.Why) == 0 {
		c.Why = []string{"the guardrails did not say"}
	}
	if t := req.GetExpiresAt(); t != nil {
		c.Until = utc(t.AsTime())
	}
	if t := req.GetSnoozedUntil(); t != nil && dec == nil {
		c.Snoozed = "⏰ Snoozed until " + utc(t.AsTime()) + " by " + esc(clip(req.GetSnoozedBy(), maxShort))
		if req.GetReminder() {
			c.Icon, c.Title = "⏰", clip("Reminder: approval needed: "+action, maxTitle)
		}
	}
	c.Engine = engine(req, m)
	return c
}

// Text is the whole card as one message.
func (c Card) Text(m Markup) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", c.Icon, m.Bold(m.Escape(c.Title)))
	for _, f := range c.Facts {
		fmt.Fprintf(&b, "%s: %s\n", f.Label, f.Value)
	}
	if len(c.Figures) > 0 {
		parts := make([]string, 0, len(c.Figures))
		for _, f := range c.Figures {
			parts = append(parts, f.Label+": "+f.Value)
		}
		b.WriteString(strings.Join(parts, " · ") + "\n")
	}
	if c.Engine != "" {
		b.WriteString(c.Engine + "\n")
	}
	if len(c.Why) > 0 {
		fmt.Fprintf(&b, "\n%s\n", m.Bold("Why a person is asked:"))
		for _, w := range c.Why {
			b.WriteString("• " + w + "\n")
		}
	}
	if c.Until != "" {
		fmt.Fprintf(&b, "Decide by: %s\n", c.Until)
	}
	if c.Snoozed != "" {
		b.WriteString(c.Snoozed + "\n")
	}
	fmt.Fprintf(&b, "Repair: %s", c.Repair)
	if c.Outcome != "" {
		b.WriteString("\n\n" + c.Outcome)
	}
	return b.String()
}

// Outcome says how a repair waiting for a person was decided: what, by
// whom, where and when (UTC).
func Outcome(e *eventsv1.RepairDecided, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	b.WriteString(outcomeIcon(e.GetOutcome()) + " ")
	word := outcomeWord(e.GetOutcome())
	if by := e.GetDecidedBy(); by != "" {
		b.WriteString(m.Bold(word + " by " + esc(clip(by, maxShort))))
	} else {
		b.WriteString(m.Bold(word))
	}
	if via := channelName(e.GetChannel()); via != "" {
		b.WriteString(" " + esc(via))
	}
	if t := e.GetDecidedAt(); t != nil {
		b.WriteString(" at " + utc(t.AsTime()))
	}
	switch {
	case e.GetReason() != "":
		b.WriteString(": " + esc(clip(e.GetReason(), maxReason)))
	case e.GetOutcome() == "expired":
		b.WriteString(": nobody answered in time")
	}
	return b.String()
}

// Decided is a decision told on its own, for when its card is not there
// to show it.
func Decided(e *eventsv1.RepairDecided, m Markup) string {
	return Outcome(e, m) + "\nRepair: " + m.Code(m.Escape(clip(e.GetRepairId(), maxShort)))
}

// RepairRequested says a repair starts to run: approved by a person, or
// automatically, and why no one was asked.
func RepairRequested(e *eventsv1.RepairRequested, m Markup) string {
	esc := m.Escape
	action := Action(e.GetProposal())
	var b strings.Builder
	if e.GetApprovedBy() == "guardrails" {
		fmt.Fprintf(&b, "⚙️ %s\n", m.Bold("Repairing without asking: "+esc(action)))
		b.WriteString("Nobody was asked: the guardrails allow this repair automatically (auto-repair is on for it, and its risk, confidence, pods affected, hourly limits and cooldown are all within policy).\n")
	} else {
		fmt.Fprintf(&b, "⚙️ %s\n", m.Bold("Repairing: "+esc(action)))
		line := "Approved"
		if by := e.GetApprovedBy(); by != "" {
			line += " by " + esc(clip(by, maxShort))
		}
		if via := channelName(e.GetChannel()); via != "" {
			line += " " + esc(via)
		}
		b.WriteString(line + ".\n")
	}
	if e.GetDryRun() {
		b.WriteString(m.Italic("Dry run: the change goes to the cluster as a server-side dry run; nothing will change.") + "\n")
	}
	fmt.Fprintf(&b, "Repair: %s", m.Code(esc(clip(e.GetRepairId(), maxShort))))
	return b.String()
}

// RepairSucceeded says a repair ran and its verification passed.
func RepairSucceeded(e *eventsv1.RepairSucceeded, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	fmt.Fprintf(&b, "✅ %s\n", m.Bold("Repaired: "+esc(Action(e.GetProposal()))))
	if v := e.GetVerification(); v != "" {
		fmt.Fprintf(&b, "Verified: %s\n", esc(clip(v, maxCause)))
	}
	fmt.Fprintf(&b, "Repair: %s", m.Code(esc(clip(e.GetRepairId(), maxShort))))
	return b.String()
}

// RepairFailed says a repair did not work: why, whether it was undone,
// and how long its resource rests.
func RepairFailed(e *eventsv1.RepairFailed, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	fmt.Fprintf(&b, "❌ %s\n", m.Bold("Repair failed: "+esc(Action(e.GetProposal()))))
	fmt.Fprintf(&b, "Why: %s\n", esc(clip(oneOf(e.GetReason(), "not stated"), maxCause)))
	if e.GetUndone() {
		b.WriteString("The change was undone.\n")
	}
	if t := e.GetCooldownUntil(); t != nil {
		fmt.Fprintf(&b, "No automatic repair of %s until %s.\n", esc(targetName(e.GetProposal().GetTarget())), utc(t.AsTime()))
	}
	b.WriteString(m.Bold("A person must look.") + "\n")
	fmt.Fprintf(&b, "Repair: %s", m.Code(esc(clip(e.GetRepairId(), maxShort))))
	return b.String()
}

// RepairBlocked says the guardrails refused a repair, and why.
func RepairBlocked(e *eventsv1.RepairBlocked, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	fmt.Fprintf(&b, "⛔ %s\n", m.Bold("Repair blocked: "+esc(Action(e.GetProposal()))))
	b.WriteString("The guardrails will not run it, even if approved:\n")
	reasons := e.GetReasons()
	for i, r := range reasons {
		if i == maxReasons {
			fmt.Fprintf(&b, "• … and %d more\n", len(reasons)-maxReasons)
			break
		}
		b.WriteString("• " + esc(clip(r, maxReason)) + "\n")
	}
	if s := e.GetSummary(); s != "" {
		fmt.Fprintf(&b, "Cause: %s\n", esc(clip(s, maxCause)))
	}
	b.WriteString(m.Bold("A person must look.") + "\n")
	fmt.Fprintf(&b, "Repair: %s", m.Code(esc(clip(e.GetRepairId(), maxShort))))
	return b.String()
}

func engine(req *eventsv1.RepairApprovalRequested, m Markup) string {
	short := func(s string) string { return m.Escape(clip(s, maxShort)) }
	s := "Engine: " + short(oneOf(req.GetEngine(), "unknown"))
	if model := req.GetModel(); model != "" {
		s += " · model " + short(model)
	}
	if in, out := req.GetInputTokens(), req.GetOutputTokens(); in > 0 || out > 0 {
		s += fmt.Sprintf(" · tokens %d in / %d out", in, out)
	}
	if c := req.GetCostUsd(); c > 0 {
		s += fmt.Sprintf(" · cost $%.4f", c)
	}
	return s
}

func downtime(req *eventsv1.RepairApprovalRequested) string {
	d := req.GetExpectedDowntime()
	switch {
	case d == nil:
		return "unknown"
	case d.AsDuration() <= 0:
		return "none"
	}
	return d.AsDuration().String()
}

func outcomeWord(o string) string {
	switch o {
	case "approved":
		return "Approved"
	case "rejected":
		return "Rejected"
	case "expired":
		return "Expired"
	}
	return "Decided (" + clip(o, maxShort) + ")"
}

func outcomeIcon(o string) string {
	switch o {
	case "approved":
		return "✅"
	case "rejected":
		return "❌"
	case "expired":
		return "⌛"
	}
	return "ℹ️"
}

// channelName says where a person answered, as words after the verb.
func channelName(c string) string {
	switch c {
	case "":
		return ""
	case "telegram":
		return "in Telegram"
	case "slack":
		return "in Slack"
	case "api":
		return "through the API"
	}
	return "via " + clip(c, maxShort)
}

// utc writes a time people in any zone read the same way.
func utc(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") }
