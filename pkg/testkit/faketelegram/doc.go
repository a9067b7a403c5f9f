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
//
// Only the methods Vigil uses are served (sendMessage, getMe); others get
// 404 Not Found as they would with a typo in the method name. Markdown and
// MarkdownV2 are accepted as parse modes but not parsed.
package faketelegram
