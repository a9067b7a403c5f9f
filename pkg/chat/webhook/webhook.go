// Package webhook is the wire format of Vigil's outgoing webhook: the JSON
// body notify POSTs for every message, and its signature. It lives apart
// from the channel that sends it (services/notify/channel/webhook) so a
// receiver written in Go verifies and decodes with the same definitions,
// without depending on a service.
//
// Every request carries two headers:
//
//	X-Vigil-Delivery: <id>                      the body's id
//	X-Vigil-Signature: t=<unix>,v1=<hex>        HMAC-SHA256(secret, "<t>.<body>")
//
// (Stripe's scheme). A receiver recomputes the HMAC over the raw body
// bytes it received, prefixed with the timestamp and a dot, compares it in
// constant time with each v1 value, and refuses a timestamp more than
// Tolerance away from its clock, so a captured request cannot be replayed
// later. Verify does exactly that.
package webhook

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Headers of every request.
const (
	SignatureHeader = "X-Vigil-Signature"
	DeliveryHeader  = "X-Vigil-Delivery"
)

// Tolerance is how far a signature's timestamp may be from the
// receiver's clock.
const Tolerance = 5 * time.Minute

// Version is the body's format version; it changes only when a field
// changes meaning or goes away (new fields may come without it).
const Version = 1

// Body is the JSON a receiver gets for one message.
type Body struct {
	Version int `json:"version"`
	// ID is the message's id, the same on every attempt to deliver it
	// (derived from notify's delivery key): a receiver that saw it
	// already drops the request.
	ID string `json:"id"`
	// Kind is what the message is about: incident.opened,
	// incident.resolved, incident.escalated, incident.repeated,
	// analysis.completed, repair.approval, repair.decided,
	// repair.requested, repair.succeeded, repair.failed, repair.blocked,
	// deploy.started, deploy.succeeded, deploy.failed,
	// deploy.rolled_back, channel.test, incident.flapping.
	Kind string `json:"kind"`
	// Parent is the id of the message this one replies to (the
	// incident's); empty for a message that starts a conversation.
	Parent string `json:"parent,omitempty"`
	// Edits is the id of the message this one redraws (an approval card,
	// once decided): a receiver replaces that one's content.
	Edits      string `json:"edits,omitempty"`
	IncidentID string `json:"incident_id,omitempty"`
	RepairID   string `json:"repair_id,omitempty"`
	// Severity is critical, warning, info or unknown, on an incident's
	// messages.
	Severity string `json:"severity,omitempty"`
	Title    string `json:"title,omitempty"`
	// Text is the message as a chat shows it, in plain text.
	Text string `json:"text"`
	// Broadcast: a reply everyone should see, not only the thread's
	// readers (a resolution, a failed repair).
	Broadcast bool `json:"broadcast,omitempty"`
	// Card is set on an approval card and its redrawing once decided.
	Card *Card `json:"card,omitempty"`
}

// Card is an approval card's parts, in plain text.
type Card struct {
	Title   string   `json:"title"`
	Facts   []Field  `json:"facts,omitempty"`
	Figures []Field  `json:"figures,omitempty"`
	Why     []string `json:"why,omitempty"`
	Until   string   `json:"until,omitempty"`
	Engine  string   `json:"engine,omitempty"`
	Action  string   `json:"action,omitempty"`
	// Outcome says who decided what; empty while the card waits for a
	// decision.
	Outcome string `json:"outcome,omitempty"`
}

// Field is a labelled value of a card.
type Field struct {
	Label string `json:"label"`
	Value string `json:"value"`
}

// Sign is the X-Vigil-Signature value of body sent at t.
func Sign(secret string, body []byte, t time.Time) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	return "t=" + ts + ",v1=" + hex.EncodeToString(mac(secret, ts, body))
}

func mac(secret, ts string, body []byte) []byte {
	h := hmac.New(sha256.New, []byte(secret))
	h.Write([]byte(ts))
	h.Write([]byte{'.'})
	h.Write(body)
	return h.Sum(nil)
}

// Errors of Verify.
var (
	ErrNoSignature = errors.New("webhook: no valid signature")
	ErrTooOld      = errors.New("webhook: timestamp outside the tolerance")
)

// Verify checks header, an X-Vigil-Signature value, against body as
// received, at now: one v1 signature must match (several are allowed,
// for a secret being rotated) and its timestamp must be within Tolerance
// of now.
func Verify(secret, header string, body []byte, now time.Time) error {
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			if b, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, b)
			}
		}
	}
	unix, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fmt.Errorf("%w: no timestamp", ErrNoSignature)
	}
	if d := now.Sub(time.Unix(unix, 0)); d > Tolerance || d < -Tolerance {
		return fmt.Errorf("%w: %s", ErrTooOld, d.Round(time.Second))
	}
	want := mac(secret, ts, body)
	for _, s := range sigs {
		if hmac.Equal(s, want) {
			return nil
		}
	}
	return ErrNoSignature
}
