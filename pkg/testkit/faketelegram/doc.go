// Package faketelegram is a fake Telegram Bot API server for tests.
//
// It is strict on purpose: it answers the way api.telegram.org does,
// including the status codes and the exact wording of error descriptions,
// so that a message Vigil can get past the fake is a message Telegram will
// accept. Its HTML parser is a port of the one in tdlib (which the Bot API
// server runs), and its text checks follow tdlib's: text is cleaned and
// trimmed after entity parsing and must then hold 1-4096 Unicode code
// points. A reply (reply_parameters, or the older reply_to_message_id)
// must name a message the fake accepted in that chat, or the message is
// refused with "message to be replied not found" unless
// allow_sending_without_reply is set; Message.ReplyToMessageID records it.
// Inline keyboards need a non-empty text and one action per button, and
// callback_data of 1-64 bytes.
//
// Beyond sending, it serves what a bot with inline buttons needs:
//
//   - editMessageText and editMessageReplyMarkup, checked like sendMessage,
//     refused with "message is not modified" when nothing changes and
//     "message to edit not found" for an unknown message; Message keeps
//     the current text and keyboard and Message.Edits the history.
//   - Press, the test's hand on a button: it makes a callback query and
//     delivers it, to the webhook if one is set (with the secret token
//     header, retrying a non-2xx answer) or to getUpdates.
//   - answerCallbackQuery, once per query, within
//     Options.CallbackQueryTimeout, text of at most 200 characters.
//   - getUpdates with offset, limit and long polling, 409 Conflict for two
//     overlapping long polls and while a webhook is set; setWebhook,
//     deleteWebhook and getWebhookInfo with Telegram's URL and secret
//     token rules (see Options.StrictWebhookURL for loopback test servers).
//
// Other methods get 404 Not Found, as they would with a typo in the method
// name. Markdown and MarkdownV2 are accepted as parse modes but not parsed.
// Timing rules that would make tests slow or flaky are left out: the 3 s
// delay Telegram adds to repeated conflicts and to back-to-back short
// polls, the once-a-second limit on setWebhook, and the expiry of pending
// updates; faults and 429s are injected with FailNext and RateLimitNext.
package faketelegram
