// Package channel is notify's seam to the places it writes to: a Telegram
// chat, a Slack channel, and whatever comes next. A channel is one
// package under this one (as Alertmanager's notifiers are): it draws
// Vigil's messages (services/notify/internal/message) in its own format,
// sends and edits them, and says what its errors mean. Notify decides
// what to send, in which order, and records every attempt; a channel
// knows nothing of events, threads-to-be or retries.
//
// Adding a channel is a package with an Options type that implements
// Config, one line in cmd/vigil that fills it from the environment and
// adds it to notify.Options.Channels, and its kind in
// notify/internal/registry (Config: the Options of a stored channel) and
// notify/internal/grpcapi (what its target and credential must be).
package channel

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Channel is one conversation notify writes to.
type Channel interface {
	// Send posts m and returns the new message's id. With parent set (the
	// id of an earlier message of this conversation, the incident's), m is
	// a reply in its thread; a channel without threads may say so in the
	// text or ignore it. A parent people deleted is no reason to keep the
	// news from them: m then goes out on its own.
	Send(ctx context.Context, m message.Message, parent string) (string, error)
	// Edit redraws message id as m (an approval card, once decided). An
	// edit that changes nothing is no error; a message that is gone is an
	// *Error with Gone set.
	Edit(ctx context.Context, id string, m message.Message) error
}

// Linker is a Channel whose messages people can open in the provider's
// app by a link (an incident's page lists them). A channel without links
// (LINE, email, a webhook) does not implement it.
type Linker interface {
	// Link is where message id can be opened, "" when it cannot (a
	// private chat, a workspace the provider did not name). It must not
	// call the provider on every call: pages are read far more often than
	// channels change.
	Link(ctx context.Context, id string) string
}

// Finder is a Channel that can look up a message it sent by its
// delivery key (DeliveryKey), which Send stores with the message where
// the provider keeps it (Slack's message metadata). A delivery in doubt
// -- its sender died, or gave up waiting, with the request out -- is
// looked up before it is sent again, and adopted when found: one
// message, whatever the crash.
type Finder interface {
	// Find is the id of the message sent with key at since or later,
	// in the thread of parent if that is set (or on its own), "" when
	// there is none.
	Find(ctx context.Context, key string, since time.Time, parent string) (string, error)
}

// Endpoint is an opened channel as notify's delivery log knows it.
type Endpoint struct {
	// Name is the channel's kind ("telegram", "slack"): the delivery
	// log's channel, which says what was already sent where. It must not
	// change, or redelivered events would be sent again.
	Name string
	// Target is the conversation it writes to (a chat id, a channel id):
	// a reply is threaded only under a message of the same target.
	Target string
	// Locale is the language and time zone its messages are drawn in.
	Locale message.Locale
	// Idempotent: the provider drops a request that repeats an earlier
	// one's delivery key (DeliveryKey), so a send in doubt (the sender
	// died with the request out) is sent again as it was. A channel
	// neither idempotent nor a Finder sends it again marked as a
	// possible repeat (message.Message.Repeat): a page missed costs more
	// than one read twice.
	Idempotent bool
	Channel
}

// Config is a channel's options, from its own package: cmd/vigil fills
// them from the environment, notify validates and opens them.
type Config interface {
	// Validate reports what a user must fix, naming the variable. An
	// empty config is valid: the channel is off.
	Validate() error
	// Open builds the channel; nil when the config leaves it off.
	Open(Deps) (*Endpoint, error)
}

// Deps are what a channel runs on.
type Deps struct {
	HTTPClient *http.Client
	Logger     *slog.Logger
	// LinkKey signs the action links a channel without buttons sends
	// (email; actionlink.Key of VIGIL_ENCRYPTION_KEY), and PublicURL is
	// where they lead (VIGIL_PUBLIC_URL): no links without both. Notify
	// gives them to every channel, environment's and stored alike.
	LinkKey   []byte
	PublicURL string
}

type deliveryKey struct{}

// WithDeliveryKey gives Send and Edit the key of the delivery they make:
// the same for every attempt at one event on one conversation, for a
// provider that makes requests idempotent by a key (LINE's
// X-Line-Retry-Key), so that a retry after a lost answer sends nothing
// twice.
func WithDeliveryKey(ctx context.Context, key string) context.Context {
	return context.WithValue(ctx, deliveryKey{}, key)
}

// DeliveryKey is the key WithDeliveryKey set on ctx, "" for none.
func DeliveryKey(ctx context.Context) string {
	k, _ := ctx.Value(deliveryKey{}).(string)
	return k
}

// Progress is where a channel that makes one delivery in parts (an
// email's copy per address) records each part the provider accepted,
// durably, before it moves on: a retry, by this process or another after
// a restart, skips the parts done and sends only the rest.
type Progress interface {
	// Done says whether part was accepted on an earlier attempt.
	Done(part string) bool
	// Accepted records part as accepted.
	Accepted(ctx context.Context, part string) error
}

type progressKey struct{}

// WithProgress gives Send and Edit the progress of the delivery they
// make.
func WithProgress(ctx context.Context, p Progress) context.Context {
	return context.WithValue(ctx, progressKey{}, p)
}

// ProgressOf is the progress WithProgress set on ctx; nil for none (every
// attempt then makes every part).
func ProgressOf(ctx context.Context) Progress {
	p, _ := ctx.Value(progressKey{}).(Progress)
	return p
}

// Error is a failed Send or Edit as its channel judged it. A channel's
// errors are all *Error; anything else is taken as permanent.
type Error struct {
	Err error
	// Status is the HTTP status (an SMTP reply code for email), for the
	// attempt log (0: none). A 4xx that may be retried is the provider
	// throttling: notify pauses the channel.
	Status int
	// Retry: trying again may succeed, after RetryAfter when it is set
	// (the channel's rate limit).
	Retry      bool
	RetryAfter time.Duration
	// Gone: the message to edit is not there any more (people deleted
	// it).
	Gone bool
	// Taken: the provider accepted the message (a 2xx) but its answer
	// could not be read, so its id is unknown. It is not sent again: a
	// Finder looks its id up; elsewhere it stands sent, without an id
	// (its replies go on their own).
	Taken bool
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Judge is what err, from Send or Edit, means: the zero Error for nil, a
// permanent one for an error no channel judged.
func Judge(err error) Error {
	if err == nil {
		return Error{}
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return *e
	}
	return Error{Err: err}
}
