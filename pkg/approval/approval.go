// Package approval is the contract between the buttons notify sends
// (Telegram inline keyboards, Slack buttons, LINE postbacks) on approval
// cards and incident messages, and the answers the gateway receives when
// a person presses one: what a button carries.
// Telegram's callback_data is at most 64 bytes and comes back from the
// chat unauthenticated, so it carries an opaque verb and the repair's id,
// never JSON and never anything the gateway trusts beyond "which button":
// who pressed is the chat's own, verified identity.
package approval

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/google/uuid"
)

// Verb is what a button asks for.
type Verb string

// The buttons of an approval card.
const (
	Approve Verb = "approve"
	Reject  Verb = "reject"
	// Later leaves the repair waiting (it expires on its own).
	Later Verb = "later"
	// Silence silences the incident's alerts (through monitor's
	// silences) and leaves the repair waiting.
	Silence Verb = "silence"
)

// The buttons of an incident's message; they carry the incident's id.
const (
	// Acknowledge acknowledges the incident.
	Acknowledge Verb = "acknowledge"
	// Escalate takes the incident's escalation to its next step now.
	Escalate Verb = "escalate"
	// Snooze pauses the incident's escalation for a while.
	Snooze Verb = "snooze"
)

// Verbs are the card's buttons, in order.
var Verbs = []Verb{Approve, Reject, Later, Silence}

// incidentVerbs are the incident message's buttons.
var incidentVerbs = []Verb{Acknowledge, Escalate, Snooze}

// IncidentVerbs are the incident message's buttons, in order.
func IncidentVerbs() []Verb { return slices.Clone(incidentVerbs) }

// OnIncident reports whether v's button is on an incident's message, and
// carries the incident's id (not a repair's).
func (v Verb) OnIncident() bool { return slices.Contains(incidentVerbs, v) }

var short = map[Verb]string{Approve: "a", Reject: "r", Later: "l", Silence: "s", Acknowledge: "k", Escalate: "e", Snooze: "z"}

// prefix versions the format: a card sent by an older Vigil still parses
// or is refused clearly.
const prefix = "v1:"

// ErrInvalid refuses callback data or a button value Vigil did not make.
var ErrInvalid = errors.New("not an approval button")

// CallbackData is a Telegram button's callback_data: "v1:a:<uuid>", 41
// bytes.
func CallbackData(v Verb, repairID string) string {
	return prefix + short[v] + ":" + repairID
}

// ParseCallbackData reads what CallbackData made.
func ParseCallbackData(s string) (Verb, string, error) {
	rest, ok := strings.CutPrefix(s, prefix)
	if !ok {
		return "", "", fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	code, id, ok := strings.Cut(rest, ":")
	if !ok || uuid.Validate(id) != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalid, s)
	}
	for v, c := range short {
		if c == code {
			return v, id, nil
		}
	}
	return "", "", fmt.Errorf("%w: %q", ErrInvalid, s)
}

// SlackActionID is a Slack button's action_id ("vigil_repair_approve");
// its value is the repair's id, or the incident's for a verb OnIncident.
func SlackActionID(v Verb) string { return "vigil_repair_" + string(v) }

// ParseSlackAction reads a pressed Slack button: its action_id and value.
func ParseSlackAction(actionID, value string) (Verb, string, error) {
	name, ok := strings.CutPrefix(actionID, "vigil_repair_")
	if !ok || uuid.Validate(value) != nil {
		return "", "", fmt.Errorf("%w: %q", ErrInvalid, actionID)
	}
	// short holds every verb, the card's and the incident message's.
	if _, ok := short[Verb(name)]; !ok {
		return "", "", fmt.Errorf("%w: %q", ErrInvalid, actionID)
	}
	return Verb(name), value, nil
}
