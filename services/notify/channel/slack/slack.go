// Package slack is notify's Slack channel: one channel, written in
// mrkdwn, where a thread is the replies to the incident's message and an
// approval card is laid out in Block Kit.
package slack

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"time"

	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Name is the channel's name in the delivery log.
const Name = "slack"

// Options configure the Slack channel; it is off without a token.
type Options struct {
	// BotToken is the Slack app's bot token (xoxb-...), with the
	// chat:write scope, and channels:history (groups:history for a
	// private channel) to look up a message in doubt after a crash
	// instead of posting it again.
	BotToken string
	// Channel is the id of the channel to post to (C0123ABCD); the bot
	// must be a member.
	Channel string
	// APIURL is the Web API's base URL (default https://slack.com/api).
	APIURL string
}

var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)

// Validate reports options a user must fix.
func (o Options) Validate() error {
	switch {
	case o.BotToken != "" && o.Channel == "":
		return errors.New("VIGIL_SLACK_CHANNEL: missing (VIGIL_SLACK_BOT_TOKEN is set)")
	case o.BotToken == "" && o.Channel != "":
		return errors.New("VIGIL_SLACK_BOT_TOKEN: missing (VIGIL_SLACK_CHANNEL is set)")
	case o.BotToken != "" && !strings.HasPrefix(o.BotToken, "xoxb-"):
		return errors.New("VIGIL_SLACK_BOT_TOKEN: want the Slack app's bot token (xoxb-...; OAuth & Permissions → Bot User OAuth Token)")
	case o.Channel != "" && !channelID.MatchString(o.Channel):
		return fmt.Errorf("VIGIL_SLACK_CHANNEL: %q is not a channel id: want its id (C0123ABCD; in Slack, at the bottom of the channel's details), not its name", o.Channel)
	}
	return nil
}

// Open builds the channel; nil without a token.
func (o Options) Open(deps channel.Deps) (*channel.Endpoint, error) {
	if o.BotToken == "" {
		return nil, nil
	}
	c, err := slackapi.New(slackapi.Options{BaseURL: o.APIURL, Token: o.BotToken, HTTPClient: deps.HTTPClient, Logger: deps.Logger})
	if err != nil {
		return nil, fmt.Errorf("VIGIL_SLACK_BOT_TOKEN or VIGIL_SLACK_API_URL: %w", err)
	}
	return &channel.Endpoint{Name: Name, Target: o.Channel, Channel: &Channel{client: c, channel: o.Channel}}, nil
}

// Channel writes to one Slack channel.
type Channel struct {
	client  *slackapi.Client
	channel string

	// The workspace's URL, for links: asked of Slack once per channel
	// (not per page view), again after a failure only once retryLink has
	// passed.
	mu        sync.Mutex
	workspace string
	failedAt  time.Time
}

const (
	// retryLink is how long a failure to learn the workspace's URL
	// stands: pages show no links meanwhile rather than each ask Slack.
	retryLink = time.Minute
	// linkTimeout bounds the one call, made while a page waits.
	linkTimeout = 5 * time.Second
)

// Link is message ts's permalink,
// https://<workspace>.slack.com/archives/<channel>/p<ts without its dot>.
// The workspace's URL is auth.test's, asked once per channel: cheaper
// than chat.getPermalink, which is a call per message, and its answer
// is the same for every message of the channel.
func (c *Channel) Link(ctx context.Context, ts string) string {
	sec, frac, ok := strings.Cut(ts, ".")
	if !ok || sec == "" || frac == "" {
		return ""
	}
	base := c.workspaceURL(ctx)
	if base == "" {
		return ""
	}
	return strings.TrimSuffix(base, "/") + "/archives/" + url.PathEscape(c.channel) + "/p" + sec + frac
}

func (c *Channel) workspaceURL(ctx context.Context) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.workspace != "" || time.Since(c.failedAt) < retryLink {
		return c.workspace
	}
	ctx, cancel := context.WithTimeout(ctx, linkTimeout)
	defer cancel()
	u, err := c.client.WorkspaceURL(ctx)
	if err != nil {
		c.failedAt = time.Now()
		return ""
	}
	if p, err := url.Parse(u); err != nil || p.Scheme != "https" || p.Host == "" {
		// Only Slack's own https URL becomes a link a browser opens.
		c.failedAt = time.Now()
		return ""
	}
	c.workspace = u
	return u
}

// Send posts m, as a reply in the thread of message parent when that is
// set (and then in the channel too when m is a broadcast).
func (c *Channel) Send(ctx context.Context, m message.Message, parent string) (string, error) {
	text, blocks := draw(m)
	msg := slackapi.Message{Channel: c.channel, Text: text, Blocks: blocks, ThreadTS: parent, Broadcast: m.Broadcast && parent != ""}
	if k := channel.DeliveryKey(ctx); k != "" {
		msg.Metadata = &slackapi.Metadata{EventType: metadataType, EventPayload: map[string]string{"delivery_key": k}}
	}
	ts, err := c.client.PostMessage(ctx, msg)
	if parent != "" && slackapi.IsNotFound(err) {
		// The incident's message was deleted: the news goes out on its own.
		msg.ThreadTS, msg.Broadcast = "", false
		ts, err = c.client.PostMessage(ctx, msg)
	}
	if err != nil {
		return "", judge(err)
	}
	return ts, nil
}

// metadataType is the event type of the metadata every message carries:
// its delivery key, by which Find looks it up.
const metadataType = "vigil_delivery"

// maxFindPages bounds the pages of history Find reads: a delivery in
// doubt is looked up minutes after it was claimed, and a channel that
// had more than this many messages of 200 since is one where a repeat
// hardly shows.
const maxFindPages = 5

// Find is the ts of the message posted with delivery key at since or
// later: among the replies to parent, when that is set, then in the
// channel (where a reply goes when its parent was deleted, and a
// broadcast reply shows too). It needs the channels:history scope
// (groups:history for a private channel).
func (c *Channel) Find(ctx context.Context, key string, since time.Time, parent string) (string, error) {
	threads := []string{""}
	if parent != "" {
		threads = []string{parent, ""}
	}
	for _, thread := range threads {
		q := slackapi.HistoryQuery{Channel: c.channel, Thread: thread, Oldest: since}
		for range maxFindPages {
			page, err := c.client.History(ctx, q)
			if thread != "" && slackapi.IsNotFound(err) {
				break // the parent was deleted: the message went on its own
			}
			if errors.Is(err, slackapi.ErrUnreadableAnswer) {
				// Nothing was written: a look to try again.
				return "", &channel.Error{Err: err, Retry: true}
			}
			if err != nil {
				return "", judge(err)
			}
			for _, m := range page.Messages {
				if m.Metadata != nil && m.Metadata.EventType == metadataType && m.Metadata.EventPayload["delivery_key"] == key {
					return m.TS, nil
				}
			}
			if page.Next == "" {
				break
			}
			q.Cursor = page.Next
		}
	}
	return "", nil
}

// Edit redraws message ts as m.
func (c *Channel) Edit(ctx context.Context, ts string, m message.Message) error {
	text, blocks := draw(m)
	if err := c.client.Update(ctx, c.channel, ts, text, blocks); err != nil {
		return judge(err)
	}
	return nil
}

func judge(err error) error {
	e := &channel.Error{
		Err: err, Retry: slackapi.IsRetryable(err), RetryAfter: slackapi.RetryAfter(err), Gone: slackapi.IsNotFound(err),
		Taken: errors.Is(err, slackapi.ErrUnreadableAnswer),
	}
	if apiErr, ok := errors.AsType[*slackapi.APIError](err); ok {
		e.Status = apiErr.StatusCode
	}
	return e
}
