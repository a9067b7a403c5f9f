package slack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// Headers of a request Slack signed: a slash command, an interaction.
const (
	SignatureHeader = "X-Slack-Signature"
	TimestampHeader = "X-Slack-Request-Timestamp"
)

// MaxSkew is how far a signed request's timestamp may be from now, either
// way: an older one could be a replay.
const MaxSkew = 5 * time.Minute

// Why Verify refuses a request; the messages are short, for a log line's
// reason.
var (
	ErrUnsigned     = errors.New("unsigned")
	ErrBadTimestamp = errors.New("bad timestamp")
	ErrStale        = errors.New("stale")
	ErrBadSignature = errors.New("bad signature")
)

// Sign returns the X-Slack-Signature of body sent at ts (Unix seconds, as
// in X-Slack-Request-Timestamp): v0= and the hex HMAC-SHA256, keyed with
// the app's signing secret, of "v0:" + ts + ":" + body.
func Sign(secret, ts string, body []byte) string {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write([]byte("v0:" + ts + ":"))
	mac.Write(body)
	return "v0=" + hex.EncodeToString(mac.Sum(nil))
}

// Verify checks that Slack sent body with these headers: signed with
// secret, at most MaxSkew from now. The error says why not (ErrUnsigned,
// ErrBadTimestamp, ErrStale, ErrBadSignature); no secret verifies nothing.
func Verify(secret string, h http.Header, body []byte, now time.Time) error {
	ts, sig := h.Get(TimestampHeader), h.Get(SignatureHeader)
	if ts == "" || sig == "" {
		return ErrUnsigned
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return ErrBadTimestamp
	}
	if d := now.Sub(time.Unix(sec, 0)); d > MaxSkew || d < -MaxSkew {
		return ErrStale
	}
	if secret == "" || !hmac.Equal([]byte(sig), []byte(Sign(secret, ts, body))) {
		return ErrBadSignature
	}
	return nil
}
