package notify

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// chat is one conversation notify writes to: a Telegram chat, a Slack
// channel. Its messages are written in its markup; a message can answer
// another (a reply in its thread) and be edited.
type chat interface {
	// name is the chat's kind in the delivery log: "telegram", "slack".
	name() string
	// target is the conversation there: a chat id, a channel id.
	target() string
	markup() message.Markup
	// card draws an approval card: with its buttons while it waits.
	card(c message.Card, repairID string) content
	// post sends c, as a reply in the thread of message thread when that
	// is not "", and returns the new message's id.
	post(ctx context.Context, thread string, c content) (string, error)
	// edit replaces the content of message id.
	edit(ctx context.Context, id string, c content) error
	// judge says what an error of post or edit means.
	judge(err error) verdict
}

// content is a message as one chat shows it.
type content struct {
	// text is in the chat's markup.
	text string
	// keyboard is Telegram's buttons, blocks Slack's layout.
	keyboard telegram.InlineKeyboard
	blocks   []slack.Block
	// broadcast shows a reply in the channel as well (Slack).
	broadcast bool
}

// verdict is what an error from a chat means.
type verdict struct {
	// status is the HTTP status, for the attempt log (0: none).
	status int
	// retry: trying again may succeed, after retryAfter if set.
	retry      bool
	retryAfter time.Duration
	// notModified: an edit found the message already as asked.
	notModified bool
	// gone: the message to edit or answer is not there any more.
	gone bool
}

// note is one message about an event, for every chat.
type note struct {
	eventID, subject, incidentID, repairID string
	// thread: a reply in the thread of the incident's message.
	thread bool
	// broadcast: a reply that the channel sees too.
	broadcast bool
	// render draws the message for a chat.
	render func(chat) content
}

// text is a note's render for a message that is text alone.
func text(draw func(message.Markup) string) func(chat) content {
	return func(c chat) content { return content{text: draw(c.markup())} }
}

// openingWaits is how many deliveries of an event wait for its incident's
// message (in flight, or being retried) to reply to, openingWait apart,
// before the reply goes out on its own: an analysis or a repair can
// overtake incident.opened, which another consumer sends.
const (
	openingWaits = 3
	openingWait  = 2 * time.Second
)

var errOpeningPending = errors.New("the incident's message is not sent yet")

// deliver sends n to every chat, each once: a chat that already has it
// (a redelivered event) is skipped.
func (s *Service) deliver(ctx context.Context, attempt int, n note) error {
	errs := make([]error, 0, len(s.chats))
	for _, c := range s.chats {
		errs = append(errs, s.deliverTo(ctx, attempt, c, n))
	}
	return combine(errs)
}

func (s *Service) deliverTo(ctx context.Context, attempt int, c chat, n note) error {
	if done, err := s.done(ctx, c, n.eventID); done || err != nil {
		return err
	}
	return s.send(ctx, attempt, c, n)
}

// send posts n on c (in its incident's thread when n.thread) and records
// it; the caller has found it not done yet.
func (s *Service) send(ctx context.Context, attempt int, c chat, n note) error {
	var thread string
	if n.thread {
		var err error
		if thread, err = s.thread(ctx, attempt, c, n.incidentID); err != nil {
			return err
		}
	}
	ct := n.render(c)
	ct.broadcast = n.broadcast && thread != ""
	id, err := c.post(ctx, thread, ct)
	return s.record(ctx, c, n, id, err)
}

// done reports whether the event needs nothing more on c: sent, or given
// up for good.
func (s *Service) done(ctx context.Context, c chat, eventID string) (bool, error) {
	status, err := s.deliveries.Status(ctx, eventID, c.name())
	return status == "sent" || status == "failed", err
}

// thread is the message of c that announced the incident, to reply to;
// "" to send on its own when there is none (never sent: notify was off,
// the event too old, its record pruned; or given up). While it is on its
// way, the reply waits a few deliveries.
func (s *Service) thread(ctx context.Context, attempt int, c chat, incidentID string) (string, error) {
	if incidentID == "" {
		return "", nil
	}
	o, err := s.deliveries.Opening(ctx, incidentID, bus.SubjectIncidentOpened, c.name(), c.target())
	switch {
	case err != nil:
		return "", err
	case o.Status == "sent":
		return o.MessageID, nil
	case o.Status != "failed" && attempt < min(openingWaits, s.opts.MaxDeliver):
		return "", retryIn(errOpeningPending, openingWait)
	}
	s.log.InfoContext(ctx, "sent without its incident's message", "channel", c.name(), "incident_id", incidentID, "opening", o.Status)
	return "", nil
}

// record logs an attempt at n on c, and says what the bus should do: a
// rate limit is honoured through the bus's redelivery delay.
func (s *Service) record(ctx context.Context, c chat, n note, id string, sendErr error) error {
	a := postgres.Attempt{
		EventID: n.eventID, Channel: c.name(), Subject: n.subject, Target: c.target(),
		IncidentID: n.incidentID, RepairID: n.repairID,
	}
	v := c.judge(sendErr)
	a.HTTPStatus, a.RetryAfter = v.status, v.retryAfter
	switch {
	case sendErr == nil:
		a.Outcome, a.MessageID, a.HTTPStatus = postgres.OutcomeSent, id, http.StatusOK
	case v.retry:
		a.Outcome, a.Error = postgres.OutcomeRetry, sendErr.Error()
	default:
		a.Outcome, a.Error = postgres.OutcomeFailed, sendErr.Error()
	}
	if err := s.deliveries.Record(ctx, a); err != nil {
		if sendErr == nil {
			// Sent but not recorded: a redelivery would send it again, which
			// beats losing the record of what people were told.
			s.log.ErrorContext(ctx, "sent but not recorded", "channel", c.name(), "event_id", n.eventID, "error", err)
		}
		return err
	}
	switch a.Outcome {
	case postgres.OutcomeSent:
		s.log.InfoContext(ctx, "notification sent", "channel", c.name(), "event_id", n.eventID, "subject", n.subject)
		return nil
	case postgres.OutcomeRetry:
		return retryIn(sendErr, a.RetryAfter)
	}
	return bus.Permanent(fmt.Errorf("%s: %w", c.name(), sendErr))
}

// retryError asks for the event again, after delay if it is set.
type retryError struct {
	err   error
	delay time.Duration
}

func (e *retryError) Error() string { return e.err.Error() }
func (e *retryError) Unwrap() error { return e.err }

func retryIn(err error, delay time.Duration) error { return &retryError{err: err, delay: delay} }

// combine is what the bus should do with an event after every chat had
// its go: redeliver it while any chat may still take it (after the
// longest delay a chat asked for), give it up when every chat that failed
// failed for good (the chats that have it are not sent it again).
func combine(errs []error) error {
	var (
		retry, permanent []error
		delay            time.Duration
	)
	for _, err := range errs {
		switch {
		case err == nil:
		case bus.IsPermanent(err):
			permanent = append(permanent, err)
		default:
			retry = append(retry, err)
			if r, ok := errors.AsType[*retryError](err); ok {
				delay = max(delay, r.delay)
			}
		}
	}
	switch {
	case len(retry) > 0 && delay > 0:
		return bus.RetryAfter(errors.Join(retry...), delay)
	case len(retry) > 0:
		return errors.Join(retry...)
	case len(permanent) > 0:
		return errors.Join(permanent...)
	}
	return nil
}
