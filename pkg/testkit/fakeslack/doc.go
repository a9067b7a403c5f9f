// Package fakeslack is a fake of the Slack Web API and of Slack's
// interactivity for tests: what a bot needs to post threaded messages with
// buttons, update them, and hear which button a person pressed.
//
// It is strict on purpose, like faketelegram: a message Vigil gets past
// the fake is one Slack takes. It serves chat.postMessage, chat.update,
// conversations.history, conversations.replies and auth.test under /api/,
// and enforces:
//
//   - auth: a bot token as "Authorization: Bearer xoxb-..." (or a token
//     form field), else ok:false "not_authed" or "invalid_auth";
//   - bodies: JSON with Content-Type application/json; charset=utf-8 (the
//     charset missing gets the "missing_charset" warning, another one
//     "invalid_charset"), or form encoding; errors come back as HTTP 200
//     with ok:false, as from Slack;
//   - channels configured in Options ("channel_not_found" otherwise); text
//     and/or blocks ("no_text"); text of at most 40,000 characters
//     ("msg_too_long"); thread_ts naming a top-level message of the
//     channel; chat.update's ts naming a message of the channel;
//   - Block Kit for the blocks a message card uses (section, header,
//     divider, context, actions with buttons): types, required fields,
//     lengths, counts, unique block_id and action_id; a violation is
//     ok:false "invalid_blocks" with the reasons in
//     response_metadata.messages, "[ERROR] ... [json-pointer:/blocks/0/...]";
//   - message metadata (chat.postMessage's metadata: an event_type of
//     letters, digits, '_' and '.', and an event_payload object, else
//     "invalid_metadata_format"; another field "invalid_metadata_schema"),
//     returned by the read methods only with include_all_metadata;
//   - the read methods (conversations.history: top-level messages and
//     broadcast replies, newest first; conversations.replies: the parent,
//     then its replies) take a query or a form, not JSON (its arguments
//     are ignored, as by Slack); they need the history scope of the
//     channel's kind (Options.Scopes; "missing_scope" with "needed" and
//     "provided"); oldest, inclusive, limit and cursor page them;
//   - 429 with Retry-After and ok:false "ratelimited" when injected with
//     RateLimitNext (FailNext injects other statuses; GarbleNext handles
//     a call and cuts its answer short).
//
// Press plays a person pressing a button: it posts a signed block_actions
// interaction to the app's interactivity URL, form-encoded as Slack does,
// and records the answer; Slack's rule that the app answers 200 within 3
// seconds is checked. Each interaction carries a response_url served by
// the fake, usable 5 times within 30 minutes, that replaces, deletes or
// adds messages.
//
// Some of Slack's behaviour is stricter in the fake: Slack accepts a
// thread_ts that names no message (and the reply is then lost from view)
// where the fake answers "thread_not_found"; action_id must be unique in
// the whole message, not only in its block, so that Press can name a
// button by it; and only the block types above are accepted. Slack's
// per-channel rate limits are not modelled: tests inject 429s instead.
package fakeslack
