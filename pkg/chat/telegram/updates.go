package telegram

import (
	"context"
	"encoding/json"
	"time"
)

// Poll asks getUpdates for the bot's updates.
type Poll struct {
	// Offset is the first update wanted: one past the last update handled,
	// which confirms it and those before it (Telegram drops them).
	Offset int64
	// Limit is how many updates at most (1-100); 0 is Telegram's 100.
	Limit int
	// Timeout is how long Telegram holds the poll while it has nothing to
	// say; 0 answers at once. The call's context must outlast it.
	Timeout time.Duration
	// AllowedUpdates are the kinds of update wanted ("message",
	// "callback_query"); empty keeps what was asked last.
	AllowedUpdates []string
}

type getUpdatesRequest struct {
	Offset         int64    `json:"offset,omitempty"`
	Limit          int      `json:"limit,omitempty"`
	Timeout        int      `json:"timeout"`
	AllowedUpdates []string `json:"allowed_updates,omitempty"`
}

// GetUpdates long-polls for the bot's updates. They come undecoded, one
// by one, so that an update the caller cannot read is skipped rather than
// failing the rest. Telegram refuses it (409) while a webhook is set, or
// while another poll of the same bot is held.
func (c *Client) GetUpdates(ctx context.Context, p Poll) ([]json.RawMessage, error) {
	var updates []json.RawMessage
	err := c.Do(ctx, &Call{Method: "getUpdates", Params: getUpdatesRequest{
		Offset: p.Offset, Limit: p.Limit, Timeout: int(p.Timeout / time.Second), AllowedUpdates: p.AllowedUpdates,
	}}, &updates)
	return updates, err
}
