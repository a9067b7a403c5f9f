// Package sentry takes Sentry's integration-platform webhooks (an
// internal integration's) as a source of alerts: a Sentry issue becomes
// one alert that fires while the issue is unresolved and resolves with
// it; a metric alert becomes one alert per severity. Requests are
// verified by Sentry's own mechanism: Sentry-Hook-Signature, the hex
// HMAC-SHA256 of the raw body under the integration's client secret.
//
// An alert's labels are the Sentry issue's identity, the same from every
// resource that names it (issue, error, event_alert): Sentry's issue
// webhooks carry no event, so nothing event-level (tags, environment,
// release) may be a label, or an issue fired by an alert rule's event
// would never be resolved by the issue's own webhook. Event-level values
// and whatever changes between events are annotations.
package sentry

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// Name is the source's name in metrics and logs.
const Name = "sentry"

// The headers Sentry signs its requests with.
const (
	HeaderResource  = "Sentry-Hook-Resource"
	HeaderSignature = "Sentry-Hook-Signature"
	HeaderTimestamp = "Sentry-Hook-Timestamp"
)

// MaxSkew bounds how far Sentry-Hook-Timestamp may be from the gateway's
// clock. Sentry stamps a request when it sends it and a new delivery gets
// a new stamp, so the window only needs to cover clock skew and a slow
// hop: 5 minutes, as Slack's signed requests use. The header is not under
// the signature (Sentry signs the body alone), so the window stops a
// request replayed as captured, not one whose header was rewritten. Such
// a replay can only say again what Sentry said of that issue: the
// alerts' times come from the signed body, so an old resolution replayed
// after the issue fired again starts before that firing, and the
// monitor ignores it; an old firing replayed fires the alert
// again until Sentry resolves it.
const MaxSkew = 5 * time.Minute

// Verifier checks Sentry-Hook-Signature with the integration's client
// secret, and the timestamp when Sentry sent one.
type Verifier struct {
	// Secret is the internal integration's client secret.
	Secret []byte
	// Team the Sentry source belongs to; "" for an admin's source of
	// every team's alerts.
	Team string
	// Now is the clock the timestamp is checked against; nil: time.Now.
	Now func() time.Time
}

// Verify implements source.Verifier.
func (v Verifier) Verify(_ context.Context, r *http.Request, body []byte) (auth.Principal, error) {
	sig := r.Header.Get(HeaderSignature)
	if sig == "" {
		return auth.Principal{}, fmt.Errorf("%w: no %s header", auth.ErrUnauthenticated, HeaderSignature)
	}
	got, err := hex.DecodeString(strings.TrimSpace(sig))
	if err != nil {
		return auth.Principal{}, fmt.Errorf("%w: %s is not hexadecimal", auth.ErrUnauthenticated, HeaderSignature)
	}
	mac := hmac.New(sha256.New, v.Secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return auth.Principal{}, fmt.Errorf("%w: %s does not match the body", auth.ErrUnauthenticated, HeaderSignature)
	}
	if ts := r.Header.Get(HeaderTimestamp); ts != "" {
		at, ok := parseUnix(ts)
		if !ok {
			return auth.Principal{}, fmt.Errorf("%w: %s is not a Unix time", auth.ErrUnauthenticated, HeaderTimestamp)
		}
		now := time.Now
		if v.Now != nil {
			now = v.Now
		}
		if skew := now().Sub(at).Abs(); skew > MaxSkew {
			return auth.Principal{}, fmt.Errorf("%w: %s is %s away from this server's clock (at most %s): a replayed request, or a clock to fix",
				auth.ErrUnauthenticated, HeaderTimestamp, skew.Round(time.Second), MaxSkew)
		}
	}
	return source.Principal(Name, v.Team), nil
}

// parseUnix reads Unix seconds, with or without a fraction.
func parseUnix(s string) (time.Time, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f <= 0 || f > 1<<40 {
		return time.Time{}, false
	}
	sec := int64(f)
	return time.Unix(sec, int64((f-float64(sec))*1e9)), true
}

// Source is Sentry's integration-platform webhook, verified by the
// internal integration's client secret, for team ("": every team).
func Source(secret []byte, team string) *source.Source {
	return &source.Source{
		Name: Name, Verifier: Verifier{Secret: secret, Team: team}, Format: Format{},
		Unauthenticated: "set VIGIL_SENTRY_CLIENT_SECRET to the Client Secret of the Sentry internal integration that sends to this URL",
	}
}
