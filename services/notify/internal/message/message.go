// Package message is Vigil's message model: what notify tells people
// about each event, rendered in whatever Markup a channel gives it.
// Everything that came from an alert is data: it is escaped, never
// interpreted as markup.
package message

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/approval"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

var severityIcon = map[typesv1.Severity]string{
	typesv1.Severity_SEVERITY_CRITICAL: "🔴",
	typesv1.Severity_SEVERITY_WARNING:  "🟠",
	typesv1.Severity_SEVERITY_INFO:     "🔵",
}

// maxAlertsShown keeps a message readable; the rest are counted.
const maxAlertsShown = 5

// IncidentOpened renders a new incident.
func IncidentOpened(inc *typesv1.Incident, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	icon := severityIcon[inc.GetSeverity()]
	if icon == "" {
		icon = "⚪"
	}
	fmt.Fprintf(&b, "%s %s\n", icon, m.Bold("Incident opened: "+esc(inc.GetTitle())))
	fmt.Fprintf(&b, "Severity: %s · Alerts: %d firing\n", severityName(inc.GetSeverity()), inc.GetFiringCount())
	writeGroup(&b, inc, m)
	writeAlerts(&b, inc, m)
	fmt.Fprintf(&b, "\nID: %s", m.Code(esc(inc.GetId())))
	return b.String()
}

// IncidentResolved renders a resolved incident.
func IncidentResolved(inc *typesv1.Incident, m Markup) string {
	esc := m.Escape
	var b strings.Builder
	fmt.Fprintf(&b, "✅ %s\n", m.Bold("Incident resolved: "+esc(inc.GetTitle())))
	if by := inc.GetResolvedBy(); by != "" {
		fmt.Fprintf(&b, "Resolved by: %s\n", esc(by))
	}
	if o, r := inc.GetOpenedAt(), inc.GetResolvedAt(); o != nil && r != nil {
		fmt.Fprintf(&b, "Duration: %s\n", r.AsTime().Sub(o.AsTime()).Round(1e9))
	}
	writeGroup(&b, inc, m)
	fmt.Fprintf(&b, "\nID: %s", m.Code(esc(inc.GetId())))
	return b.String()
}

func writeGroup(b *strings.Builder, inc *typesv1.Incident, m Markup) {
	esc := m.Escape
	keys := make([]string, 0, len(inc.GetGroupLabels()))
	for k := range inc.GetGroupLabels() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(b, "%s: %s\n", esc(k), m.Code(esc(inc.GetGroupLabels()[k])))
	}
}

func writeAlerts(b *strings.Builder, inc *typesv1.Incident, m Markup) {
	esc := m.Escape
	alerts := inc.GetAlerts()
	for i, a := range alerts {
		if i == maxAlertsShown {
			break
		}
		summary := a.GetAlert().GetAnnotations()["summary"]
		if summary == "" {
			summary = a.GetAlert().GetAnnotations()["description"]
		}
		if summary == "" {
			summary = a.GetAlert().GetLabels()["alertname"]
		}
		line := "• " + esc(summary)
		if inst := a.GetAlert().GetLabels()["instance"]; inst != "" {
			line += " (" + esc(inst) + ")"
		}
		if u := a.GetAlert().GetGeneratorUrl(); strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			line += " " + m.Link(esc(u), "source")
		}
		b.WriteString(line + "\n")
	}
	// Events carry a sample of the alerts; the count is the incident's.
	if more := int(inc.GetAlertCount()) - min(len(alerts), maxAlertsShown); more > 0 {
		fmt.Fprintf(b, "… and %d more\n", more)
	}
}

func severityName(s typesv1.Severity) string {
	switch s {
	case typesv1.Severity_SEVERITY_CRITICAL:
		return "critical"
	case typesv1.Severity_SEVERITY_WARNING:
		return "warning"
	case typesv1.Severity_SEVERITY_INFO:
		return "info"
	}
	return "unknown"
}

// Message is what notify tells people about one event, before a channel
// draws it in its own format: a text, or an approval card, which a channel
// with layout and buttons places part by part.
type Message struct {
	text func(Markup) string
	card *cardEvents
	// Broadcast: a reply that the whole conversation sees too (a failed
	// repair, a resolution), where the channel can show it there (Slack);
	// the others ignore it.
	Broadcast bool
	// About is what the message is about, for a channel that passes it on
	// as data (a webhook) besides drawing it.
	About About
	// Locale is the language and time zone the message is drawn in for
	// its recipient; notify sets it per channel before sending.
	Locale Locale
	// Actions are the buttons of a message that is not a card (an
	// incident's Acknowledge), for a channel that has buttons; the others
	// leave them out.
	Actions []Button
}

// Button is a button of a message: what it asks for (Verb) of what (ID,
// an incident's id for a verb OnIncident), labelled Label. The gateway
// answers it (services/gateway/internal/chat).
type Button struct {
	Verb  approval.Verb
	ID    string
	Label string
}

// IncidentActions are the buttons of an incident's opening message.
func IncidentActions(inc *typesv1.Incident) []Button {
	return []Button{{Verb: approval.Acknowledge, ID: inc.GetId(), Label: "Acknowledge"}}
}

// Locale is a recipient's language and time zone.
type Locale struct {
	// Language is a BCP 47 tag: "en" or "zh-TW" ("": English).
	Language string
	// Zone is where times are shown (nil: UTC).
	Zone *time.Location
}

// About is what a message is about.
type About struct {
	Kind       Kind
	IncidentID string
	RepairID   string
	// Severity and Title are the incident's, on its own messages.
	Severity string
	Title    string
}

// Kind is what kind of event a message tells.
type Kind string

// The kinds of message.
const (
	KindIncidentOpened   Kind = "incident.opened"
	KindIncidentResolved Kind = "incident.resolved"
	KindAnalysis         Kind = "analysis.completed"
	KindApprovalCard     Kind = "repair.approval"
	KindDecided          Kind = "repair.decided"
	KindRepairRequested  Kind = "repair.requested"
	KindRepairSucceeded  Kind = "repair.succeeded"
	KindRepairFailed     Kind = "repair.failed"
	KindRepairBlocked    Kind = "repair.blocked"
)

// IncidentAbout is about inc, as a message of kind k tells it.
func IncidentAbout(k Kind, inc *typesv1.Incident) About {
	return About{Kind: k, IncidentID: inc.GetId(), Severity: severityName(inc.GetSeverity()), Title: inc.GetTitle()}
}

type cardEvents struct {
	req *eventsv1.RepairApprovalRequested
	dec *eventsv1.RepairDecided
}

// Text is a message drawn by draw.
func Text(draw func(Markup) string) Message { return Message{text: draw} }

// ApprovalCard is the approval card of req, decided by dec (nil while it
// waits).
func ApprovalCard(req *eventsv1.RepairApprovalRequested, dec *eventsv1.RepairDecided) Message {
	return Message{card: &cardEvents{req: req, dec: dec}}
}

// Text is the message as one text in m: a card's parts one after another.
func (msg Message) Text(m Markup) string {
	if msg.card != nil {
		return NewCard(msg.card.req, msg.card.dec, m).Text(m)
	}
	return msg.text(m)
}

// Card is the approval card in m, and whether the message is one.
func (msg Message) Card(m Markup) (Card, bool) {
	if msg.card == nil {
		return Card{}, false
	}
	return NewCard(msg.card.req, msg.card.dec, m), true
}
