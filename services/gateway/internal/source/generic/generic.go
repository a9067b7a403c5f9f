package generic

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/chat/webhook"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// How a declared source's sender proves who it is.
const (
	// AuthKey: a Vigil API key (scope ingest) of the source's team, or
	// an admin's, as Authorization Bearer or basic auth password.
	AuthKey = "key"
	// AuthHMAC: X-Vigil-Signature, an HMAC-SHA256 of the timestamp and
	// the raw body with the source's secret: Vigil's own webhook
	// signature (pkg/chat/webhook), so a sender signs as Vigil's
	// outgoing webhooks do and a captured request is refused after
	// webhook.Tolerance.
	AuthHMAC = "hmac"
)

// MinSecret is the shortest HMAC secret a source takes: it is all that
// tells the sender's requests from anyone's.
const MinSecret = 24

// Config is one declared generic source.
type Config struct {
	Name string
	// Team whose alerts it may send; "": anyone's (pkg/subject's
	// ownership rules, applied by ingest).
	Team string
	// Auth is AuthKey or AuthHMAC; Secret the HMAC secret.
	Auth, Secret string
	Mapping      Mapping
}

// New is the source c declares; keys verifies API keys; now is the clock
// signatures are checked against (time.Now when nil).
func New(c Config, keys source.Keys, now func() time.Time) (*source.Source, error) {
	prg, err := Compile(c.Mapping)
	if err != nil {
		return nil, err
	}
	if now == nil {
		now = time.Now
	}
	src := &source.Source{Name: "generic/" + c.Name, Format: Format{Program: prg, Now: now}}
	switch c.Auth {
	case AuthKey:
		src.Verifier = TeamKey{Keys: keys, Name: c.Name, Team: c.Team}
		src.Unauthenticated = "send a Vigil API key with scope ingest of the source's team as Authorization: Bearer <key>"
	case AuthHMAC:
		if len(c.Secret) < MinSecret {
			return nil, fmt.Errorf("source %s: the HMAC secret is shorter than %d characters", c.Name, MinSecret)
		}
		src.Verifier = Signed{Secret: c.Secret, Name: c.Name, Team: c.Team, Now: now}
		src.Unauthenticated = "sign the body with the source's secret: X-Vigil-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of \"<t>.<body>\">"
	default:
		return nil, fmt.Errorf("source %s: unknown auth %q", c.Name, c.Auth)
	}
	return src, nil
}

// Format is a compiled mapping as a source.Format.
type Format struct {
	Program *Program
	Now     func() time.Time
}

// Parse implements source.Format.
func (f Format) Parse(body []byte, h http.Header) (*source.Batch, error) {
	alerts, err := f.Program.Map(body, h, f.Now())
	if err != nil {
		return nil, err
	}
	return &source.Batch{Alerts: alerts}, nil
}

// TeamKey verifies a Vigil API key that may send to source Name: one of
// Team's with scope ingest, or an admin's.
type TeamKey struct {
	Keys       source.Keys
	Name, Team string
}

// Verify implements source.Verifier: the source's own principal, whose
// team the alerts must be of, whatever the key.
func (k TeamKey) Verify(ctx context.Context, r *http.Request, body []byte) (auth.Principal, error) {
	p, err := k.Keys.Verify(ctx, r, body)
	switch {
	case err != nil:
		return p, err
	case !p.Has(auth.Ingest):
		return p, nil // answered 403, naming the missing permission
	case p.Has(auth.Admin):
	case k.Team == "":
		return p, fmt.Errorf("%w: source %s sends every team's alerts: only an admin's key may send to it, not %s", source.ErrForbidden, k.Name, p)
	case !slices.Contains(p.Teams, k.Team):
		return p, fmt.Errorf("%w: source %s is team %s's: %s is not", source.ErrForbidden, k.Name, k.Team, p)
	}
	return source.Principal(k.Name, k.Team), nil
}

// Signed verifies X-Vigil-Signature with Secret.
type Signed struct {
	Secret, Name, Team string
	Now                func() time.Time
}

// Verify implements source.Verifier.
func (s Signed) Verify(_ context.Context, r *http.Request, body []byte) (auth.Principal, error) {
	h := r.Header.Get(webhook.SignatureHeader)
	if h == "" {
		return auth.Principal{}, fmt.Errorf("%w: no %s header", auth.ErrUnauthenticated, webhook.SignatureHeader)
	}
	if err := webhook.Verify(s.Secret, h, body, s.Now()); err != nil {
		if errors.Is(err, webhook.ErrTooOld) {
			return auth.Principal{}, fmt.Errorf("%w: %w (is the sender's clock right? a signature is good for %s)", auth.ErrUnauthenticated, err, webhook.Tolerance)
		}
		return auth.Principal{}, fmt.Errorf("%w: %w", auth.ErrUnauthenticated, err)
	}
	return source.Principal(s.Name, s.Team), nil
}
