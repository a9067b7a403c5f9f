// Package slack is a client for the two Slack Web API methods Vigil posts
// with: chat.postMessage (a message, or a reply in a thread) and
// chat.update (an approval card once it is decided), with the Block Kit
// blocks an approval card is made of.
//
// Errors say what to do next: IsPermanent (the request will never succeed
// as it is), IsRetryable (try again, after RetryAfter when Slack asked for
// a pause). A short 429 is waited out inside the client; a longer one comes
// back as an error carrying the wait. The bot token never appears in an
// error or a log line.
//
// Everything outside text put in mrkdwn goes through Escape, which also
// keeps it from mentioning people (<!channel>, <@U123>); the block
// constructors cut text to Block Kit's limits without breaking an entity.
package slack
