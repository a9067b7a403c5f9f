// Package line is notify's LINE channel: pushes to one user, group or
// room through the Messaging API, in plain text (LINE has no markup), an
// approval card laid out as a Flex message.
//
// LINE has neither threads nor edits, so the channel does without: a
// reply is pushed like any message (its text already says what it is
// about: the analysis, the repair, the resolution, each naming the
// incident or its repair), and Edit -- an approval card decided --
// pushes the outcome as a short message of its own, which a chat reads
// below the card as the next thing that happened. The card's buttons
// (Approve, Reject, Later) are postbacks, which LINE brings to the
// gateway's verified webhook (/api/v1/webhooks/line) as the LINE account
// that pressed them; their data is the same as a Telegram button's
// (approval.CallbackData), far under LINE's 300 characters.
package line

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/uuid"

	"github.com/vigil-ops/vigil/pkg/approval"
	lineapi "github.com/vigil-ops/vigil/pkg/chat/line"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Name is the channel's name in the delivery log.
const Name = "line"

// Options configure the LINE channel; it is off without a token.
type Options struct {
	// ChannelToken is the Messaging API channel's access token
	// (long-lived, from the LINE Developers Console).
	ChannelToken string
	// To is the user (U...), group (C...) or room (R...) id to push to;
	// the bot must be its friend or a member.
	To string
	// APIURL is the Messaging API's base URL (default
	// https://api.line.me).
	APIURL string
}

var recipient = regexp.MustCompile(`^[UCR][0-9a-f]{32}$`)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	switch {
	case o.ChannelToken != "" && o.To == "":
		return errors.New("VIGIL_LINE_TO: missing (VIGIL_LINE_CHANNEL_TOKEN is set)")
	case o.ChannelToken == "" && o.To != "":
		return errors.New("VIGIL_LINE_CHANNEL_TOKEN: missing (VIGIL_LINE_TO is set)")
	case o.To != "" && !recipient.MatchString(o.To):
		return fmt.Errorf("VIGIL_LINE_TO: %q is not a LINE id: want a user (U...), group (C...) or room (R...) id, 33 characters, as a webhook event's source shows it", o.To)
	}
	return nil
}

// Open builds the channel; nil without a token.
func (o Options) Open(deps channel.Deps) (*channel.Endpoint, error) {
	if o.ChannelToken == "" {
		return nil, nil
	}
	c, err := lineapi.New(lineapi.Options{BaseURL: o.APIURL, Token: o.ChannelToken, HTTPClient: deps.HTTPClient, Logger: deps.Logger})
	if err != nil {
		return nil, fmt.Errorf("VIGIL_LINE_CHANNEL_TOKEN or VIGIL_LINE_API_URL: %w", err)
	}
	// LINE drops a push that repeats an X-Line-Retry-Key it accepted.
	return &channel.Endpoint{Name: Name, Target: o.To, Idempotent: true, Channel: &Channel{client: c, to: o.To}}, nil
}

// Channel pushes to one LINE user, group or room.
type Channel struct {
	client *lineapi.Client
	to     string
}

// Send pushes m. parent is ignored: LINE has no threads.
func (c *Channel) Send(ctx context.Context, m message.Message, _ string) (string, error) {
	return c.push(ctx, draw(m))
}

// Edit pushes m anew, as LINE cannot change a message sent: for an
// approval card decided or snoozed, its outcome or snooze alone, the card
// above it standing as it was.
func (c *Channel) Edit(ctx context.Context, _ string, m message.Message) error {
	card, ok := m.Card(Plain)
	var msg lineapi.Message
	switch {
	case ok && card.Outcome != "":
		msg = lineapi.NewText(card.Outcome + "\n" + card.Action + "\n" + card.Words.Repair + " " + card.Repair)
	case ok && card.Snoozed != "":
		msg = lineapi.NewText(card.Snoozed + "\n" + card.Action + "\n" + card.Words.Repair + " " + card.Repair)
	case ok:
		msg = cardMessage(card)
	default:
		msg = draw(m)
	}
	_, err := c.push(ctx, msg)
	return err
}

// retryKeys namespaces the retry keys made of delivery keys.
var retryKeys = uuid.MustParse("5b1c1a4e-9f3e-4c55-8a43-4c1f0a8e7d21")

// push sends msg with a retry key made of the delivery's key: the same
// for every attempt at an event, so LINE sends it once. It returns the
// message's id, or on a repeat the request's LINE accepted first.
func (c *Channel) push(ctx context.Context, msg lineapi.Message) (string, error) {
	key := uuid.NewString()
	if k := channel.DeliveryKey(ctx); k != "" {
		key = uuid.NewSHA1(retryKeys, []byte(k)).String()
	}
	sent, err := c.client.Push(ctx, lineapi.Push{To: c.to, Messages: []lineapi.Message{msg}, RetryKey: key})
	if err != nil {
		return "", judge(err)
	}
	if len(sent.MessageIDs) > 0 {
		return sent.MessageIDs[0], nil
	}
	return "request/" + sent.RequestID, nil
}

// draw is m as LINE shows it: an approval card as a Flex bubble, with
// its whole text as the alternative (notifications, the chat list); a
// message with buttons (an incident's Acknowledge) as a bubble of its
// text and the buttons; anything else as text.
func draw(m message.Message) lineapi.Message {
	card, ok := m.Card(Plain)
	if !ok {
		text := m.Text(Plain)
		bs := m.Buttons()
		if len(bs) == 0 {
			return lineapi.NewText(text)
		}
		// A text message has no buttons: a bubble of the text has.
		buttons := make([]lineapi.Component, 0, len(bs))
		for _, a := range bs {
			buttons = append(buttons, lineapi.Button(a.Label, approval.CallbackData(a.Verb, a.ID), "primary"))
		}
		first, _, _ := strings.Cut(text, "\n")
		return lineapi.NewFlex(first, lineapi.Bubble{Body: lineapi.VBox(lineapi.Text(text)), Footer: lineapi.VBox(buttons...)})
	}
	return cardMessage(card)
}

// cardMessage is a card as a Flex bubble, its heading the alternative.
func cardMessage(c message.Card) lineapi.Message { return lineapi.NewFlex(c.Heading(), bubble(c)) }

// bubble lays a card out: the title in the header, the facts, the
// figures, why a person is asked and by when in the body, the engine and
// repair in small print -- and in the footer where to decide, or the
// outcome once decided.
func bubble(c message.Card) lineapi.Bubble {
	body := []lineapi.Component{}
	for _, f := range c.Facts {
		body = append(body, field(f.Label, f.Value))
	}
	if len(c.Figures) > 0 {
		body = append(body, lineapi.Separator())
		for _, f := range c.Figures {
			body = append(body, field(f.Label, f.Value))
		}
	}
	if len(c.Why) > 0 {
		body = append(body, lineapi.Separator(), bold(c.Words.Why))
		for _, w := range c.Why {
			body = append(body, lineapi.Text("• "+w))
		}
	}
	if c.Until != "" {
		body = append(body, field(strings.TrimRight(c.Words.Until, ":："), c.Until))
	}
	if c.Snoozed != "" {
		body = append(body, lineapi.Text(c.Snoozed))
	}
	var small []lineapi.Component
	if c.Engine != "" {
		small = append(small, note(c.Engine))
	}
	small = append(small, note(c.Words.Repair+" "+c.Repair))
	if c.URL != "" {
		small = append(small, note(c.URL))
	}
	body = append(body, lineapi.Separator(), *lineapi.VBox(small...))

	footer := lineapi.VBox(lineapi.Text(c.Outcome))
	if c.Outcome == "" {
		w := c.Words
		footer = lineapi.VBox(
			*lineapi.HBox(
				lineapi.Button(w.Approve, approval.CallbackData(approval.Approve, c.RepairID), "primary"),
				lineapi.Button(w.Reject, approval.CallbackData(approval.Reject, c.RepairID), "secondary"),
				lineapi.Button(w.Later, approval.CallbackData(approval.Later, c.RepairID), "secondary"),
			),
			note(w.OrCommand),
		)
	}
	header := bold(c.Heading())
	header.Size = "lg"
	return lineapi.Bubble{Header: lineapi.VBox(header), Body: lineapi.VBox(body...), Footer: footer}
}

// field is a label and its value side by side.
func field(label, value string) lineapi.Component {
	l, v := bold(label), lineapi.Text(value)
	one, two := 1, 3
	l.Flex, v.Flex = &one, &two
	return *lineapi.HBox(l, v)
}

func bold(s string) lineapi.Component {
	t := lineapi.Text(s)
	t.Weight = "bold"
	return t
}

func note(s string) lineapi.Component {
	t := lineapi.Text(s)
	t.Size, t.Color = "xs", "#888888"
	return t
}

func judge(err error) error {
	e := &channel.Error{Err: err, Retry: lineapi.IsRetryable(err), RetryAfter: lineapi.RetryAfter(err)}
	if apiErr, ok := errors.AsType[*lineapi.APIError](err); ok {
		e.Status = apiErr.StatusCode
	}
	return e
}

// Plain is the markup of LINE's text, which has none.
var Plain = message.Plain
