package telegram

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"

	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
)

// Poller long-polls getUpdates for a bot that has no public URL, and
// hands each update to Bot, as the webhook does. Only one poller per bot
// may run at a time (Telegram ends the other's poll with 409): run it
// under a lease.
type Poller struct {
	API *botapi.Client
	Bot *Bot
	Log *slog.Logger
	// Timeout is how long getUpdates holds a poll with nothing to say
	// (30 s).
	Timeout time.Duration
}

// Backoff after a failed poll: doubling from minBackoff to maxBackoff.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// confirmTimeout bounds confirming the updates handled, on the way out.
const confirmTimeout = 3 * time.Second

// Run removes the bot's webhook (getUpdates is refused while one is set)
// and polls until ctx ends. An update is confirmed (the next poll's
// offset) once handled, so that one the process dies handling comes
// again, to the next poller. Ending ctx ends the poll at once.
func (p *Poller) Run(ctx context.Context) error {
	timeout := p.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	if !Persist(ctx, p.deleteWebhook, func(err error, _ time.Duration) {
		p.Log.WarnContext(ctx, "telegram webhook not deleted", "error", err)
	}) {
		return nil
	}
	p.Log.InfoContext(ctx, "polling telegram for updates")
	backoff := minBackoff
	var offset int64
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, timeout+10*time.Second)
		updates, err := p.API.GetUpdates(pctx, botapi.Poll{Offset: offset, Timeout: timeout, AllowedUpdates: updateTypes})
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			d := wait(err, &backoff)
			p.Log.WarnContext(ctx, "telegram getUpdates failed", "error", err, "retry_in", d)
			if !sleep(ctx, d) {
				break
			}
			continue
		}
		var failed error
		for _, raw := range updates {
			if ctx.Err() != nil {
				// Not confirmed: the next poller handles it.
				break
			}
			var u Update
			if err := json.Unmarshal(raw, &u); err != nil {
				var id struct {
					UpdateID int64 `json:"update_id"`
				}
				_ = json.Unmarshal(raw, &id)
				p.Log.WarnContext(ctx, "telegram update not understood", "update_id", id.UpdateID, "error", err)
				offset = max(offset, id.UpdateID+1)
				continue
			}
			call, err := p.Bot.Handle(ctx, u)
			if err != nil && !errors.Is(err, ErrUpdateID) {
				// Not handled, nor confirmed: the next poll brings it again.
				failed = err
				break
			}
			if call != nil {
				if err := p.API.Do(ctx, call, nil); err != nil {
					p.Log.WarnContext(ctx, "telegram reply not sent", "update_id", u.UpdateID, "method", call.Method, "error", err)
				}
			}
			offset = max(offset, u.UpdateID+1)
		}
		if failed == nil {
			backoff = minBackoff
		} else {
			d := wait(failed, &backoff)
			p.Log.ErrorContext(ctx, "telegram update not handled", "error", failed, "retry_in", d)
			if !sleep(ctx, d) {
				break
			}
		}
	}
	if offset > 0 {
		// Confirm what was handled, or the next poller handles it again.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), confirmTimeout)
		defer cancel()
		if _, err := p.API.GetUpdates(cctx, botapi.Poll{Offset: offset, Limit: 1}); err != nil {
			p.Log.WarnContext(ctx, "telegram updates not confirmed", "offset", offset, "error", err)
		}
	}
	p.Log.InfoContext(ctx, "stopped polling telegram")
	return nil
}

func (p *Poller) deleteWebhook(ctx context.Context) error {
	info, err := p.API.WebhookInfo(ctx)
	if err != nil {
		return err
	}
	if info.URL == "" {
		return nil
	}
	p.Log.WarnContext(ctx, "deleting the telegram bot's webhook to poll instead: set VIGIL_TELEGRAM_WEBHOOK_URL to keep a webhook", "url", info.URL)
	return p.API.DeleteWebhook(ctx)
}

// Persist calls f until it succeeds (true) or ctx ends (false), waiting
// between tries what a 429 asks for, else a backoff that doubles; failed
// hears of each failure and the wait before the next try.
func Persist(ctx context.Context, f func(context.Context) error, failed func(err error, retryIn time.Duration)) bool {
	backoff := minBackoff
	for {
		err := f(ctx)
		if err == nil {
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		d := wait(err, &backoff)
		failed(err, d)
		if !sleep(ctx, d) {
			return false
		}
	}
}

// wait is how long to wait after err: what a 429 asks for, else the
// backoff, which doubles.
func wait(err error, backoff *time.Duration) time.Duration {
	if d := botapi.RetryAfter(err); d > 0 {
		return d
	}
	d := *backoff
	*backoff = min(2**backoff, maxBackoff)
	return d
}

// sleep waits d, and reports false when ctx ended first.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
