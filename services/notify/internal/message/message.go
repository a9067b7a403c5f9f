// Package message is Vigil's message model: what notify tells people
// about each event, drawn from templates (templates/, one per kind of
// message and language, overridable) in the recipient's language and time
// zone, in whatever Markup a channel gives it. Everything that came from
// an alert, an LLM or a person is data: a template sees it already
// escaped for the channel's markup, so it is never interpreted as markup.
package message

import (
	"fmt"
	"strings"
	"text/template"
	"time"

	"github.com/vigil-ops/vigil/pkg/approval"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Message is what notify tells people about one event, before a channel
// draws it in its own format: a text, or an approval card, which a channel
// with layout and buttons places part by part.
type Message struct {
	// data is what the message's template sees, escaped by esc.
	data func(f *format) any
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
	// Templates draw it (nil: DefaultTemplates); notify sets its own.
	Templates *Templates
	// Links are where a message links to (zero: nowhere of Vigil's).
	Links Links
	// Repeat marks a message sent again after an attempt that may have
	// reached its recipient (notify stopped with the request out) on a
	// channel that cannot tell: its text opens with a line saying it may
	// repeat an earlier one (the shared template "repeat").
	Repeat bool
	// Actions are the buttons of a message that is not a card (an
	// incident's Acknowledge), for a channel that has buttons; the others
	// leave them out. Buttons labels them in the recipient's language.
	Actions []Ask
}

// Links are the addresses a message links to.
type Links struct {
	// Base is the URL people reach Vigil's API at ("": no links); an
	// incident links to Base/api/v1/incidents/ID.
	Base string
}

// Ask is what a button asks for (Verb) of what (ID, an incident's id for
// a verb OnIncident). The gateway answers it
// (services/gateway/internal/chat).
type Ask struct {
	Verb approval.Verb
	ID   string
}

// Button is an Ask labelled in the recipient's language.
type Button struct {
	Ask
	Label string
}

// IncidentActions are the buttons of an incident's opening message:
// every verb the gateway answers on an incident (acknowledge, escalate,
// snooze).
func IncidentActions(inc *typesv1.Incident) []Ask {
	verbs := approval.IncidentVerbs()
	out := make([]Ask, 0, len(verbs))
	for _, v := range verbs {
		out = append(out, Ask{Verb: v, ID: inc.GetId()})
	}
	return out
}

// Buttons are the message's Actions labelled in its language (the shared
// templates button.<verb>).
func (msg Message) Buttons() []Button {
	if len(msg.Actions) == 0 {
		return nil
	}
	out, err := msg.buttons()
	if err != nil {
		msg.templates().log.Error("message template failed: buttons labelled in English with Vigil's own", "language", msg.Locale.Language, "error", err)
		msg.Templates, msg.Locale.Language = DefaultTemplates(), English
		if out, err = msg.buttons(); err != nil {
			panic(err) // Vigil's own templates label every verb (tested)
		}
	}
	return out
}

func (msg Message) buttons() ([]Button, error) {
	f := msg.format(Plain)
	out := make([]Button, 0, len(msg.Actions))
	for _, a := range msg.Actions {
		label, err := f.word("button."+string(a.Verb), nil)
		if err != nil {
			return nil, err
		}
		out = append(out, Button{Ask: a, Label: label})
	}
	return out, nil
}

// Defaults are how notify draws every message it sends: with its
// templates, its links, and, for a recipient whose locale leaves the
// language or the zone unset, its own (VIGIL_LANGUAGE, VIGIL_TIME_ZONE).
type Defaults struct {
	Templates *Templates
	// Sets are the named template sets a recipient's locale may ask for
	// (LoadSets).
	Sets   map[string]*Templates
	Links  Links
	Locale Locale
}

// For is msg as it is drawn for a recipient in loc.
func (d Defaults) For(msg Message, loc Locale) Message {
	if loc.Language == "" {
		loc.Language = d.Locale.Language
	}
	if loc.Zone == nil {
		loc.Zone = d.Locale.Zone
	}
	msg.Templates, msg.Links, msg.Locale = d.Templates, d.Links, loc
	// A set is checked when its route or channel is saved; one whose
	// directory went away since (notify restarted without it) draws
	// with the default set rather than not at all.
	if t, ok := d.Sets[loc.Templates]; ok {
		msg.Templates = t
	}
	return msg
}

// Locale is a recipient's language and time zone, and the template set
// its messages are drawn with.
type Locale struct {
	// Language is a BCP 47 tag: "en" or "zh-TW" ("": English).
	Language string
	// Zone is where times are shown (nil: UTC).
	Zone *time.Location
	// Templates names a set of LoadSets ("": the default set).
	Templates string
}

// About is what a message is about.
type About struct {
	Kind       Kind
	IncidentID string
	RepairID   string
	// Severity and Title are the incident's, on its own messages.
	Severity string
	Title    string
	// App is the deployed app, on a deploy's messages.
	App string
}

// Kind is what kind of event a message tells; it names the message's
// template.
type Kind string

// The kinds of message.
const (
	KindIncidentOpened    Kind = "incident.opened"
	KindIncidentResolved  Kind = "incident.resolved"
	KindIncidentEscalated Kind = "incident.escalated"
	KindAnalysis          Kind = "analysis.completed"
	KindApprovalCard      Kind = "repair.approval"
	KindDecided           Kind = "repair.decided"
	KindRepairRequested   Kind = "repair.requested"
	KindRepairSucceeded   Kind = "repair.succeeded"
	KindRepairFailed      Kind = "repair.failed"
	KindRepairBlocked     Kind = "repair.blocked"
	KindDeployStarted     Kind = "deploy.started"
	KindDeploySucceeded   Kind = "deploy.succeeded"
	KindDeployFailed      Kind = "deploy.failed"
	KindDeployRolledBack  Kind = "deploy.rolled_back"
	KindIncidentRepeated  Kind = "incident.repeated"
	KindChannelTest       Kind = "channel.test"
	KindIncidentFlapping  Kind = "incident.flapping"
)

// Kinds are every kind of message, each with a template.
var Kinds = []Kind{
	KindIncidentOpened, KindIncidentResolved, KindIncidentEscalated, KindAnalysis,
	KindApprovalCard, KindDecided, KindRepairRequested, KindRepairSucceeded, KindRepairFailed, KindRepairBlocked,
	KindDeployStarted, KindDeploySucceeded, KindDeployFailed, KindDeployRolledBack,
	KindIncidentRepeated, KindChannelTest, KindIncidentFlapping,
}

func kindNames() []string {
	out := make([]string, len(Kinds))
	for i, k := range Kinds {
		out[i] = string(k)
	}
	return out
}

type cardEvents struct {
	req *eventsv1.RepairApprovalRequested
	dec *eventsv1.RepairDecided
}

// Text is the message as one text in m: a card's parts one after another.
// A template that fails to run (an override that slipped past the check at
// start on data its sample lacked) gives way to Vigil's own English one.
func (msg Message) Text(m Markup) string {
	text, err := msg.draw(m)
	if err == nil {
		return text
	}
	msg.templates().log.Error("message template failed: drawn in English with Vigil's own", "kind", msg.About.Kind, "language", msg.Locale.Language, "error", err)
	msg.Templates, msg.Locale.Language = DefaultTemplates(), English
	text, err = msg.draw(m)
	if err != nil {
		panic(err) // Vigil's own templates are tested against every kind
	}
	return text
}

// Card is the approval card in m, and whether the message is one.
func (msg Message) Card(m Markup) (Card, bool) {
	if msg.card == nil {
		return Card{}, false
	}
	f := msg.format(m)
	c, err := newCard(f, msg.card.req, msg.card.dec)
	if err != nil {
		msg.templates().log.Error("message template failed: card drawn in English with Vigil's own", "language", msg.Locale.Language, "error", err)
		msg.Templates, msg.Locale.Language = DefaultTemplates(), English
		if c, err = newCard(msg.format(m), msg.card.req, msg.card.dec); err != nil {
			panic(err)
		}
	}
	return c, true
}

// TextAndCard is Text and Card in m from one drawing of the card, for a
// channel that sends the text and lays out the card's buttons or parts
// beside it (Telegram, a webhook): Text then Card would draw it twice.
func (msg Message) TextAndCard(m Markup) (string, Card, bool) {
	if msg.card == nil {
		return msg.Text(m), Card{}, false
	}
	if text, c, err := msg.drawCard(msg.format(m)); err == nil {
		return text, c, true
	}
	// A template failed: each falls back on its own, as it would alone.
	c, _ := msg.Card(m)
	return msg.Text(m), c, true
}

// drawCard is the approval card in f and its text (the repair.approval
// template run on it).
func (msg Message) drawCard(f *format) (string, Card, error) {
	c, err := newCard(f, msg.card.req, msg.card.dec)
	if err != nil {
		return "", Card{}, err
	}
	text, err := exec(f.set, string(KindApprovalCard), c)
	if err != nil {
		return "", Card{}, err
	}
	text, err = msg.marked(f, text)
	return text, c, err
}

// marked is text with the repeat line before it when msg is a Repeat.
func (msg Message) marked(f *format, text string) (string, error) {
	if !msg.Repeat {
		return text, nil
	}
	line, err := f.word("repeat", nil)
	if err != nil {
		// Shared words of an older Vigil's, overridden, lack this one:
		// Vigil's own says it in the same language.
		_, set := DefaultTemplates().in(f.lang, f.m)
		if line, err = exec(set, "repeat", nil); err != nil {
			return "", err
		}
	}
	return line + "\n\n" + text, nil
}

func (msg Message) templates() *Templates {
	if msg.Templates == nil {
		return DefaultTemplates()
	}
	return msg.Templates
}

// format is what drawing a message for one recipient in one markup needs.
type format struct {
	m    Markup
	lang string
	zone *time.Location
	set  *template.Template
	base string
	// err is the first shared template that failed while data was built.
	err error
}

func (msg Message) format(m Markup) *format {
	lang, set := msg.templates().in(msg.Locale.Language, m)
	zone := msg.Locale.Zone
	if zone == nil {
		zone = time.UTC
	}
	return &format{m: m, lang: lang, zone: zone, set: set, base: strings.TrimRight(msg.Links.Base, "/")}
}

func (msg Message) draw(m Markup) (string, error) {
	f := msg.format(m)
	if msg.card != nil {
		text, _, err := msg.drawCard(f)
		return text, err
	}
	if msg.data == nil {
		return "", fmt.Errorf("%w: message %q has no data", errExec, msg.About.Kind)
	}
	data := msg.data(f)
	if f.err != nil {
		return "", f.err
	}
	text, err := exec(f.set, string(msg.About.Kind), data)
	if err != nil {
		return "", err
	}
	return msg.marked(f, text)
}

// word is the named template of the shared words, on data.
func (f *format) word(name string, data any) (string, error) {
	return exec(f.set, name, data)
}

// esc escapes outside text for the markup, cut to n characters first.
func (f *format) esc(s string, n int) string { return f.m.Escape(clip(s, n)) }

// time is t in the recipient's zone, with its abbreviation and offset
// ("2026-05-01 20:30:00 CST (UTC+08:00)"), or in UTC as it always was.
func (f *format) time(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	t = t.In(f.zone)
	if f.zone == time.UTC {
		return t.Format("2006-01-02 15:04:05 UTC")
	}
	abbr, _ := t.Zone()
	offset := "UTC" + t.Format("-07:00")
	if abbr == "" || abbr[0] == '+' || abbr[0] == '-' {
		return t.Format("2006-01-02 15:04:05 ") + offset
	}
	return t.Format("2006-01-02 15:04:05 MST") + " (" + offset + ")"
}

func (f *format) incidentURL(id string) string {
	if f.base == "" || id == "" {
		return ""
	}
	return f.m.Escape(f.base + "/api/v1/incidents/" + id)
}

// incidentAbout is about inc, as a message of kind k tells it.
func incidentAbout(k Kind, inc *typesv1.Incident) About {
	return About{Kind: k, IncidentID: inc.GetId(), Severity: severityName(inc.GetSeverity()), Title: inc.GetTitle()}
}

// keep is s, remembering err for draw to report.
func (f *format) keep(s string, err error) string {
	if err != nil && f.err == nil {
		f.err = err
	}
	return s
}
