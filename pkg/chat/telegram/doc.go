// Package telegram is Vigil's client of the Telegram Bot API, for every
// service that talks to Telegram: notify sends incidents and approval
// cards (sendMessage, editMessageText), the gateway receives the bot's
// updates (setWebhook and the webhook's secret, or getUpdates) and answers
// them (answerCallbackQuery, sendMessage). A Call is a method with its
// parameters, made with Client.Do or handed back as a webhook's answer.
//
// Errors are one type, APIError, and say what to do next: IsPermanent
// (the request will never succeed as it is), IsRetryable (try again, after
// RetryAfter when Telegram asked for a pause with retry_after). The bot
// token is in every request's URL; it never appears in an error or a log
// line.
//
// Texts are sent with parse mode HTML: EscapeHTML makes outside text safe
// to embed, and TruncateHTML fits a message into Telegram's limit without
// breaking its markup. VerifySecret tells a webhook's updates from
// anyone's.
package telegram
