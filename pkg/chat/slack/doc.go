// Package slack is Vigil's client of Slack, for every service that talks
// to it: notify posts with the Web API (chat.postMessage: a message, or a
// reply in a thread; chat.update: an approval card once it is decided),
// with the Block Kit blocks a card is made of; the gateway verifies the
// requests Slack signs (slash commands, interactions: Verify, the v0
// signing-secret HMAC within MaxSkew) and answers through their
// response_url (Respond, IsResponseURL).
//
// Errors are one type, APIError, and say what to do next: IsPermanent
// (the request will never succeed as it is), IsRetryable (try again, after
// RetryAfter when Slack asked for a pause with Retry-After). A short 429 of
// the Web API is waited out inside the client; a longer one comes back as
// an error carrying the wait. The bot token never appears in an error or a
// log line, nor does a response_url (a capability).
//
// Everything outside text put in mrkdwn goes through Escape, which also
// keeps it from mentioning people (<!channel>, <@U123>); the block
// constructors cut text to Block Kit's limits without breaking an entity.
package slack
