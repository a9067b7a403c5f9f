package telegram

import (
	"context"
	"crypto/subtle"
	"net/http"
)

// SecretHeader carries, with every update Telegram posts to a webhook,
// the secret_token given to setWebhook.
const SecretHeader = "X-Telegram-Bot-Api-Secret-Token"

// VerifySecret reports whether an update's request headers carry secret,
// the webhook's secret_token: whether Telegram sent it. The comparison
// takes the same time whatever the header holds; no secret verifies
// nothing.
func VerifySecret(h http.Header, secret string) bool {
	got := h.Get(SecretHeader)
	return secret != "" && got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(secret)) == 1
}

type setWebhookRequest struct {
	URL            string   `json:"url"`
	SecretToken    string   `json:"secret_token,omitempty"`
	AllowedUpdates []string `json:"allowed_updates,omitempty"`
}

// SetWebhook has Telegram post the bot's updates to url (the kinds in
// allowed; empty keeps what was asked last), each with secret in
// SecretHeader. getUpdates is refused while a webhook is set.
func (c *Client) SetWebhook(ctx context.Context, url, secret string, allowed []string) error {
	return c.Do(ctx, &Call{Method: "setWebhook", Params: setWebhookRequest{URL: url, SecretToken: secret, AllowedUpdates: allowed}}, nil)
}

// WebhookInfo is the bot's webhook as Telegram has it.
type WebhookInfo struct {
	// URL is the webhook's; empty when there is none (the bot polls).
	URL string `json:"url"`
	// PendingUpdateCount is how many updates wait to be delivered or
	// confirmed.
	PendingUpdateCount int `json:"pending_update_count"`
}

// WebhookInfo asks Telegram for the bot's webhook.
func (c *Client) WebhookInfo(ctx context.Context) (WebhookInfo, error) {
	var info WebhookInfo
	err := c.Do(ctx, &Call{Method: "getWebhookInfo"}, &info)
	return info, err
}

// DeleteWebhook removes the bot's webhook, so that it may poll.
func (c *Client) DeleteWebhook(ctx context.Context) error {
	return c.Do(ctx, &Call{Method: "deleteWebhook"}, nil)
}
