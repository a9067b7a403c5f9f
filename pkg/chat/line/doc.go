// Package line is Vigil's client of the LINE Messaging API, for every
// service that talks to LINE: notify pushes messages to a user, group or
// room (Push: text, and Flex messages for an incident and an approval
// card); the gateway will verify the webhook events LINE signs (Verify,
// X-Line-Signature: the channel secret's HMAC-SHA256 of the body).
//
// A push carries an X-Line-Retry-Key: sent again with the same key (a
// redelivered event), LINE answers 409 with the request id it accepted
// the first time, which Push takes as sent -- so a message goes out once
// however often it is retried within LINE's 24 hours.
//
// Errors are one type, APIError, and say what to do next: IsPermanent
// (the request will never succeed as it is: a 4xx), IsRetryable (a 429
// or a 5xx, or LINE could not be reached), after RetryAfter. LINE's 429
// has no Retry-After header, so the client suggests a backoff of its own;
// a 429 for the month's message quota is permanent (retrying cannot help
// before the month ends). The channel access token travels in a header
// and never appears in an error or a log line.
package line
