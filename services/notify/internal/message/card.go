package message

import (
	"fmt"
	"time"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// Fact is one line of a card: a label (the template's words) and a
// value in the chat's markup.
type Fact struct{ Label, Value string }

// Card is an approval card in a chat's markup and the recipient's
// language, in parts, so that a chat with layout (Slack's blocks, LINE's
// Flex) can place them and one without (Telegram) can write them one
// after another, as the repair.approval template does. It is also what
// that template sees.
type Card struct {
	// Icon goes before the title where the chat shows text.
	Icon string
	// Priority is the incident's (P0..P3) as the repair service last
	// heard it, "" when not known; it leads the header.
	Priority string
	// Header is the app ("shop"), plain text like Title; "" when not
	// known.
	Header string
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
	// Until is when the approval expires, in the recipient's zone;
	// Expires is that time as it is (zero: no expiry), for what must not
	// outlive the approval (an email's action links).
	Until   string
	Expires time.Time
	// Snoozed says who snoozed the approval ("Later") until when; empty
	// when it is not snoozed or is decided.
	Snoozed string
	// Engine is who proposed it: engine, model, tokens, cost.
	Engine string
	// Repair is the repair's id, formatted as code.
	Repair string
	// URL is the incident in Vigil's API ("" without a public URL).
	URL string
	// Outcome says who decided what, where and when; empty while the card
	// waits, and then the card has buttons.
	Outcome string
	// Action is what approving does, plain text, not escaped: for a
	// confirmation dialog.
	Action string
	// RepairID is the repair's id as it is, for the buttons to carry.
	RepairID string
	// Words are the card's own words in the recipient's language.
	Words CardWords
}

// CardWords are a card's labels and buttons in the recipient's language,
// from the shared templates (card.* and button.*), not escaped.
type CardWords struct {
	Why, Until, Repair, Link                              string
	Approve, Reject, Later, Silence, ConfirmTitle, Cancel string
	// OrCommand is the CLI's way to decide, under a chat's buttons;
	// ApproveWith and RejectWith are the commands to answer by mail.
	OrCommand, ApproveWith, RejectWith string
}

// Heading is the card's first line as plain text: its icon, priority,
// header and title ("🛠 P1 · shop · Approval needed: Restart
// shop/checkout"), for a chat's header or a notification.
func (c Card) Heading() string {
	h := c.Icon + " "
	if c.Priority != "" {
		h += c.Priority + " · "
	}
	if c.Header != "" {
		h += c.Header + " · "
	}
	return h + c.Title
}

// ApprovalCard is the approval card of req, decided by dec (nil while it
// waits).
func ApprovalCard(req *eventsv1.RepairApprovalRequested, dec *eventsv1.RepairDecided) Message {
	return Message{card: &cardEvents{req: req, dec: dec}, About: About{Kind: KindApprovalCard}}
}

// newCard draws the approval card of req, decided by dec (nil while it
// waits).
func newCard(f *format, req *eventsv1.RepairApprovalRequested, dec *eventsv1.RepairDecided) (Card, error) {
	m := f.m
	short := func(s string) string { return f.esc(s, maxShort) }
	id := req.GetRepairId()
	// Action and Title are plain text: drawn with the proposal unescaped.
	plain := *f
	plain.m = Plain
	action, err := plain.action(req.GetProposal())
	if err != nil {
		return Card{}, err
	}
	c := Card{Icon: "🛠", Action: action, Repair: m.Code(short(id)), RepairID: id, URL: f.incidentURL(req.GetIncidentId()), Header: clip(req.GetApp(), maxShort), Priority: priorityName(req.GetPriority())}
	title := cardTitle{Action: action}
	snoozed := req.GetSnoozedUntil() != nil && dec == nil
	if snoozed && req.GetReminder() {
		c.Icon, title.Reminder = "⏰", true
	}
	if dec != nil {
		d := f.decision(dec)
		title.Outcome = clip(dec.GetOutcome(), maxShort)
		c.Icon = outcomeIcon(dec.GetOutcome())
		if c.Outcome, err = f.word("outcome", d); err != nil {
			return Card{}, err
		}
	}
	t, err := plain.word("card.title", title)
	if err != nil {
		return Card{}, err
	}
	c.Title = clip(t, maxTitle)

	label := func(name string) string { return f.keep(f.word(name, nil)) }
	incident := m.Code(short(req.GetIncidentId()))
	if t := req.GetIncidentTitle(); t != "" {
		incident = f.esc(t, maxTitle) + " (" + incident + ")"
	}
	c.Facts = append(c.Facts, Fact{label("label.incident"), incident})
	if app := req.GetApp(); app != "" {
		c.Facts = append(c.Facts, Fact{label("label.app"), short(app)})
	}
	target := targetName(req.GetProposal().GetTarget())
	if kind := req.GetProposal().GetTarget().GetKind(); kind != "" {
		target = clip(kind, maxShort) + " " + target
	}
	cause := f.esc(req.GetSummary(), maxCause)
	if cause == "" {
		cause = label("label.unstated")
	}
	c.Facts = append(c.Facts,
		Fact{label("label.target"), m.Escape(target)},
		Fact{label("label.cause"), cause},
		Fact{label("label.action"), m.Bold(f.keep(f.action(req.GetProposal())))},
	)
	c.Figures = []Fact{
		{label("label.confidence"), percent(req.GetConfidence())},
		{label("label.risk"), f.keep(f.word("risk", riskName(req.GetRisk())))},
		{label("label.pods"), fmt.Sprint(req.GetPodsAffected())},
		{label("label.downtime"), f.keep(f.word("downtime", downtimeOf(req.GetExpectedDowntime())))},
	}
	reasons := req.GetReasons()
	if len(reasons) == 0 && req.GetReason() != "" {
		reasons = []string{req.GetReason()}
	}
	var more int
	c.Why, more = f.reasons(reasons)
	if more > 0 {
		c.Why = append(c.Why, f.keep(f.word("more", more)))
	}
	if len(c.Why) == 0 {
		c.Why = []string{label("card.unsaid")}
	}
	if t := req.GetExpiresAt(); t != nil {
		c.Until, c.Expires = f.time(t.AsTime()), t.AsTime()
	}
	if snoozed {
		c.Snoozed = f.keep(f.word("card.snoozed", cardSnooze{Until: f.time(req.GetSnoozedUntil().AsTime()), By: short(req.GetSnoozedBy())}))
	}
	c.Engine = f.keep(f.word("engine", f.engine(req.GetEngine(), req.GetModel(), req.GetInputTokens(), req.GetOutputTokens(), req.GetCostUsd())))
	c.Words = CardWords{
		Why: label("card.why"), Until: label("card.until"), Repair: label("card.repair"), Link: label("card.link"),
		Approve: label("button.approve"), Reject: label("button.reject"), Later: label("button.later"), Silence: label("button.silence"),
		ConfirmTitle: label("button.confirm"), Cancel: label("button.cancel"),
		ApproveWith: label("card.approve_with"), RejectWith: label("card.reject_with"),
	}
	c.Words.OrCommand = f.keep(plain.word("card.or_command", id))
	return c, f.err
}

// cardTitle is what the shared template card.title sees: the action, the
// outcome key once decided ("" while it waits), and whether the card is a
// reminder asked again after a snooze.
type cardTitle struct {
	Action, Outcome string
	Reminder        bool
}

// cardSnooze is what the shared template card.snoozed sees: until when
// (in the recipient's zone) and by whom (escaped).
type cardSnooze struct{ Until, By string }

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
