// Package telegram is a client for the Telegram Bot API's sendMessage and
// editMessageText, which is how Vigil puts incidents and approval cards in
// front of people (and a decided card's buttons away).
//
// Errors say what to do next: IsPermanent (the request will never succeed
// as it is), IsRetryable (try again, after RetryAfter when Telegram asked
// for a pause). The bot token is a secret and never appears in an error or
// a log line.
//
// Texts are sent with parse mode HTML: EscapeHTML makes outside text safe
// to embed, and TruncateHTML fits a message into Telegram's limit without
// breaking its markup.
package telegram
