// Package fakeline is a fake of the LINE Messaging API for tests: what a
// bot needs to push text and Flex messages to a user, group or room, and
// a way to send it signed webhook events.
//
// It is strict on purpose, like faketelegram and fakeslack: a push Vigil
// gets past the fake is one LINE takes. It serves POST
// /v2/bot/message/push and enforces:
//
//   - auth: the channel access token as "Authorization: Bearer ...",
//     else 401 "Authentication failed...";
//   - the body: JSON (Content-Type application/json), "to" a recipient
//     configured in Options (400 "The property, 'to', in the request body
//     is invalid" otherwise), 1 to 5 messages;
//   - messages: text of 1 to 5,000 characters; flex with an altText of 1
//     to 400 characters and contents a bubble (header, body, footer boxes
//     of box, text, separator and button components; a box has a layout
//     and contents, a text a non-empty text), at most 30 KB; errors come
//     back as 400 with LINE's message and details naming the property;
//   - X-Line-Retry-Key: a UUID; a key accepted before is answered 409
//     with X-Line-Accepted-Request-Id and nothing is sent again;
//   - 429 {"message":"The API rate limit has been exceeded. Try again
//     later."} without Retry-After, when injected with RateLimitNext
//     (FailNext injects other statuses).
//
// It also serves POST /v2/bot/message/reply: a reply token is one of an
// event the fake made (Text, Postback), works once and within
// ReplyTokenTTL (AgeReplyTokens moves its clock), else 400 "Invalid reply
// token". Send (to a handler) and Post (to a URL) deliver webhook events
// signed with X-Line-Signature as LINE does; Redelivered is an event
// sent again with its webhookEventId.
//
// Some of LINE's behaviour is simpler here: every recipient id in
// Options is a friend who has not blocked the bot, the monthly quota is
// not counted (QuotaExceededNext plays it), and only the Flex components
// Vigil draws are accepted.
package fakeline
