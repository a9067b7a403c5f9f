// Package gateway is Vigil's front door: it authenticates every caller,
// takes alerts in (webhooks, gRPC, REST) and stores them on the bus, and
// serves the public API, forwarding to the services that own the data.
package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/pkg/appteam"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	lineapi "github.com/vigil-ops/vigil/pkg/chat/line"
	botapi "github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/db"
	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/subject"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/line"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/slack"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/telegram"
	"github.com/vigil-ops/vigil/services/gateway/internal/console"
	"github.com/vigil-ops/vigil/services/gateway/internal/emailaction"
	"github.com/vigil-ops/vigil/services/gateway/internal/grpcapi"
	"github.com/vigil-ops/vigil/services/gateway/internal/ingest"
	"github.com/vigil-ops/vigil/services/gateway/internal/lease"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/alertmanager"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/grafana"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/registry"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/sentry"

	"google.golang.org/grpc"
)

// Schema is the gateway's Postgres schema.
const Schema = "gateway"

// DefaultChatSnooze is how long an incident's Snooze button snoozes it
// unless Options.ChatSnooze says otherwise.
const DefaultChatSnooze = chat.DefaultSnooze

// Options configure the gateway.
type Options struct {
	// WebhookMaxBytes bounds a webhook body (default 8 MiB).
	WebhookMaxBytes int64
	// RESTMaxBytes bounds a REST request's body (default 1 MiB,
	// server.DefaultRESTMaxBytes); the webhooks keep their own limits.
	RESTMaxBytes int64
	// AdminToken is the bootstrap credential: an admin of everything, to
	// create the first users and keys, and for recovery.
	AdminToken string
	// AccessTTL and RefreshTTL bound a session's access token (15 min)
	// and the session itself (7 days).
	AccessTTL, RefreshTTL time.Duration
	// DefaultTeam's members reach incidents no app claims and apps
	// without an owner; empty: admins only.
	DefaultTeam string
	// AuditRetention is how long the audit log is kept (365 days).
	AuditRetention time.Duration
	// KeyDefaultTTL is the lifetime of an API key made by anyone but an
	// admin without an expiry (90 days); KeyMaxTTL is the longest such a
	// key may ask for (365 days). Admins' keys are not bound.
	KeyDefaultTTL, KeyMaxTTL time.Duration
	// TelegramWebhookSecret is the secret_token given to the Telegram
	// bot's setWebhook (at least MinTelegramSecret characters): POST
	// /api/v1/webhooks/telegram answers only updates that carry it.
	// Empty: generated (and kept in the database, for every replica)
	// when TelegramWebhookURL is set; otherwise the route answers 404.
	TelegramWebhookSecret string
	// TelegramBotToken is the token of Vigil's bot (the one notify sends
	// with): the gateway answers button presses with it, and receives
	// the bot's updates by webhook (TelegramWebhookURL) or, without one,
	// by long polling getUpdates, on one replica at a time. Empty: only
	// the webhook, if its secret is set, and no buttons.
	TelegramBotToken string
	// TelegramAPIURL is the Bot API (https://api.telegram.org).
	TelegramAPIURL string
	// TelegramWebhookURL is the public URL of POST
	// /api/v1/webhooks/telegram: the gateway registers it (setWebhook,
	// with TelegramWebhookSecret) at start. Empty: it polls.
	TelegramWebhookURL string
	// TelegramPollRetry is how often a replica that does not poll checks
	// whether the one that does is gone (5 s).
	TelegramPollRetry time.Duration
	// SlackSigningSecret is the Slack app's signing secret: POST
	// /api/v1/webhooks/slack/commands and /interactions answer only
	// requests it signed. Empty: the routes answer 404.
	SlackSigningSecret string
	// SlackResponseURLBase is where Slack's response_urls are
	// (https://hooks.slack.com/): the gateway answers a press only
	// through a response_url under it, and refuses the press otherwise.
	SlackResponseURLBase string
	// LineChannelSecret is the LINE channel's secret: POST
	// /api/v1/webhooks/line answers only requests signed with it (and
	// LINE accounts can be linked). Empty: the route answers 404.
	LineChannelSecret string
	// LineChannelToken is the channel's access token, to reply to what
	// LINE brings; LineAPIURL the Messaging API (https://api.line.me).
	LineChannelToken string
	LineAPIURL       string
	// ChatSnooze is how long an incident's Snooze button snoozes it
	// (chat.DefaultSnooze when 0; at most monitor's 24 h).
	ChatSnooze time.Duration
	// EncryptionKey (VIGIL_ENCRYPTION_KEY) is what the email action links
	// are signed under (a key derived from it, pkg/actionlink), and what
	// declared sources' HMAC secrets are sealed with (pkg/seal); nil: the
	// links' routes answer 404 and no source can have a secret.
	EncryptionKey []byte
	// SourcesReload is how often a replica checks whether the declared
	// sources changed (5 s): a source declared through another replica
	// is served here within it.
	SourcesReload time.Duration
	// Login bounds failed logins per user and per client address
	// (access.DefaultLoginLimits where zero).
	Login LoginLimits
	// SentryClientSecret is the Client Secret of the Sentry internal
	// integration that posts to /api/v1/webhooks/sentry: the route
	// answers only requests it signed. Empty: the route answers 404.
	// SentryTeam is the team the Sentry source belongs to ("": every
	// team's alerts, as an admin's key).
	SentryClientSecret, SentryTeam string
	// TrustedProxies are the proxies whose X-Forwarded-For names the
	// client (a load balancer, an ingress); empty: the client is the
	// address a request comes from.
	TrustedProxies []netip.Prefix
}

// LoginLimits bound failed logins per user and per client address; see
// access.LoginLimits.
type LoginLimits = access.LoginLimits

// DefaultLoginLimits are 5 attempts in a row per user, then locks of 1
// minute doubling to 15; 20 failures a minute per address and replica.
var DefaultLoginLimits = access.DefaultLoginLimits

// telegramTokenRE is what a bot token looks like (123456:ABC-DEF...).
var telegramTokenRE = regexp.MustCompile(`^[0-9]{1,20}:[A-Za-z0-9_-]{20,}$`)

// telegramSecretRE is what setWebhook accepts as secret_token.
var telegramSecretRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,256}$`)

// telegramCallTimeout bounds a Bot API call the gateway makes without a
// deadline of its own: setting or reading the webhook. A long poll has its
// own, longer one.
const telegramCallTimeout = 10 * time.Second

// MinTelegramSecret is the shortest webhook secret the gateway takes: the
// secret is all that tells Telegram's updates from anyone's, so it must
// not be guessable (32 characters of base64url are 192 bits).
const MinTelegramSecret = 32

// chatMaxBytes bounds a chat webhook's body: an update or a slash command
// is a few kilobytes.
const chatMaxBytes = 1 << 20

// outageTTL is how long what the gateway verified with Postgres (a key, a
// session, the owners of a namespace) stands in while Postgres is
// unavailable: alerts are accepted through an outage of up to this long.
const outageTTL = time.Hour

// Validate reports options a user must fix.
func (o Options) Validate() error {
	var errs []error
	if o.WebhookMaxBytes < 0 {
		errs = append(errs, errors.New("VIGIL_WEBHOOK_MAX_BYTES: must not be negative"))
	}
	if o.RESTMaxBytes < 0 {
		errs = append(errs, errors.New("VIGIL_REST_MAX_BYTES: must not be negative"))
	}
	if o.AdminToken != "" && len(o.AdminToken) < 16 {
		errs = append(errs, errors.New("VIGIL_ADMIN_TOKEN: must be at least 16 characters"))
	}
	if o.AccessTTL < 0 || o.RefreshTTL < 0 || o.AuditRetention < 0 {
		errs = append(errs, errors.New("VIGIL_ACCESS_TOKEN_TTL, VIGIL_SESSION_TTL, VIGIL_AUDIT_RETENTION: must not be negative"))
	}
	if o.KeyDefaultTTL < 0 || o.KeyMaxTTL < 0 {
		errs = append(errs, errors.New("VIGIL_KEY_DEFAULT_TTL, VIGIL_KEY_MAX_TTL: must not be negative"))
	}
	keyMax := o.KeyMaxTTL
	if keyMax == 0 {
		keyMax = access.MaxKeyTTL
	}
	if o.KeyDefaultTTL > keyMax {
		errs = append(errs, fmt.Errorf("VIGIL_KEY_DEFAULT_TTL: must not be longer than VIGIL_KEY_MAX_TTL (%s)", keyMax))
	}
	if o.Login.UserFailures < 0 || o.Login.AddressFailures < 0 {
		errs = append(errs, errors.New("VIGIL_LOGIN_FAILURES_PER_USER, VIGIL_LOGIN_FAILURES_PER_ADDRESS: must not be negative"))
	}
	if o.AccessTTL > 0 && o.RefreshTTL > 0 && o.AccessTTL > o.RefreshTTL {
		errs = append(errs, errors.New("VIGIL_ACCESS_TOKEN_TTL: must not be longer than VIGIL_SESSION_TTL"))
	}
	switch {
	case o.TelegramWebhookSecret == "":
	case !telegramSecretRE.MatchString(o.TelegramWebhookSecret):
		errs = append(errs, errors.New("VIGIL_TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (what Telegram's setWebhook accepts as secret_token)"))
	case len(o.TelegramWebhookSecret) < MinTelegramSecret:
		errs = append(errs, fmt.Errorf("VIGIL_TELEGRAM_WEBHOOK_SECRET: is %d characters, must be at least %d (`openssl rand -hex 32` makes one), or unset it and the gateway generates one",
			len(o.TelegramWebhookSecret), MinTelegramSecret))
	}
	if o.TelegramBotToken != "" && !telegramTokenRE.MatchString(o.TelegramBotToken) {
		errs = append(errs, errors.New("VIGIL_TELEGRAM_BOT_TOKEN: not a bot token (the digits, a colon and the rest, as @BotFather gives it)"))
	}
	if o.TelegramAPIURL != "" && !httpURL(o.TelegramAPIURL) {
		errs = append(errs, errors.New("VIGIL_TELEGRAM_API_URL: must be an http(s) URL, like https://api.telegram.org"))
	}
	if o.TelegramWebhookURL != "" {
		if !httpURL(o.TelegramWebhookURL) {
			errs = append(errs, errors.New("VIGIL_TELEGRAM_WEBHOOK_URL: must be the https URL Telegram reaches the gateway's /api/v1/webhooks/telegram at"))
		}
		if o.TelegramBotToken == "" {
			errs = append(errs, errors.New("VIGIL_TELEGRAM_WEBHOOK_URL: needs VIGIL_TELEGRAM_BOT_TOKEN (to call setWebhook)"))
		}
	}
	if o.TelegramPollRetry < 0 {
		errs = append(errs, errors.New("TelegramPollRetry: must not be negative"))
	}
	if o.SlackResponseURLBase != "" && !httpURL(o.SlackResponseURLBase) {
		errs = append(errs, errors.New("VIGIL_SLACK_RESPONSE_URL_BASE: must be an http(s) URL, like https://hooks.slack.com/"))
	}
	if strings.TrimSpace(o.SlackSigningSecret) != o.SlackSigningSecret {
		errs = append(errs, errors.New("VIGIL_SLACK_SIGNING_SECRET: has leading or trailing spaces; copy the signing secret from the Slack app's Basic Information page"))
	}
	if strings.TrimSpace(o.SentryClientSecret) != o.SentryClientSecret {
		errs = append(errs, errors.New("VIGIL_SENTRY_CLIENT_SECRET: has leading or trailing spaces; copy the Client Secret from the Sentry internal integration's page"))
	}
	if o.SentryTeam != "" && o.SentryClientSecret == "" {
		errs = append(errs, errors.New("VIGIL_SENTRY_TEAM: needs VIGIL_SENTRY_CLIENT_SECRET (the Sentry webhook is off without it)"))
	}
	if o.LineChannelSecret != "" && o.LineChannelToken == "" {
		errs = append(errs, errors.New("VIGIL_LINE_CHANNEL_SECRET: needs VIGIL_LINE_CHANNEL_TOKEN too (to answer what LINE brings)"))
	}
	if o.ChatSnooze < 0 || o.ChatSnooze > chat.MaxSnooze {
		errs = append(errs, fmt.Errorf("VIGIL_CHAT_SNOOZE: must not be negative, and at most %s (for longer, silence the alerts)", chat.MaxSnooze))
	}
	return errors.Join(errs...)
}

// newTelegramSecret is a webhook secret of 256 random bits, in the
// characters setWebhook takes (base64url: A-Z a-z 0-9 - _); the REST
// client address's nonce too.
func newTelegramSecret() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != ""
}

// Deps are what the gateway runs on.
type Deps struct {
	// Pool's search_path is the gateway schema: users, sessions, keys,
	// the audit log.
	Pool *pgxpool.Pool
	// Keys sign session tokens.
	Keys      *auth.KeySet
	Publisher *bus.Publisher
	// Incidents serves IncidentService: monitor itself in one process, or
	// a forwarder (NewIncidentForwarder) to a monitor elsewhere.
	Incidents monitorv1.IncidentServiceServer
	// Silences serves SilenceService, like Incidents (NewSilenceForwarder).
	Silences monitorv1.SilenceServiceServer
	// OnCall and Escalation serve monitor's OnCallService and
	// EscalationService, like Incidents (NewOnCallForwarder,
	// NewEscalationForwarder).
	OnCall     monitorv1.OnCallServiceServer
	Escalation monitorv1.EscalationServiceServer
	// Inhibitions serves monitor's InhibitionService, like Incidents
	// (NewInhibitionForwarder).
	Inhibitions monitorv1.InhibitionServiceServer
	// Apps and Clusters serve the deploy service's API: the service itself
	// in one process, or forwarders (NewAppForwarder, NewClusterForwarder).
	Apps     deployv1.AppServiceServer
	Clusters deployv1.ClusterServiceServer
	// Analyses serves AnalysisService: the analysis service in one
	// process, or a forwarder (NewAnalysisForwarder); Unimplemented when
	// nil.
	Analyses analysisv1.AnalysisServiceServer
	// Repairs serves RepairService: the repair service in one process,
	// or a forwarder (NewRepairForwarder); Unimplemented when nil.
	Repairs repairv1.RepairServiceServer
	// Channels serves ChannelService: notify in one process, or a
	// forwarder (NewChannelForwarder); Unimplemented when nil.
	Channels notifyv1.ChannelServiceServer
	// Routes serves RouteService: notify in one process, or a forwarder
	// (NewRouteForwarder); Unimplemented when nil.
	Routes notifyv1.RouteServiceServer
	// JetStream, when set, keeps the gateway's projection of who owns
	// what (apps and namespace mappings, pkg/appteam), by which a team's
	// ingest key is refused another team's alerts. Without it, no alert
	// belongs to a team (tests of other concerns).
	JetStream jetstream.JetStream
	Metrics   *bus.Metrics
	// Registry, when set, gets the gateway's own metrics.
	Registry prometheus.Registerer
	Logger   *slog.Logger
}

// Service is the gateway.
type Service struct {
	opts     Options
	deps     Deps
	ingester *ingest.Ingester
	// owners keeps who owns what (apps, namespaces) for the ingester.
	owners *bus.Consumer
	store  *postgres.Store
	access *access.Service
	// live feeds the console's live incident list from the bus; nil
	// without JetStream.
	live *console.Live
	// bot handles the Telegram bot's updates; background runs Slack
	// interactions after their acknowledgement.
	bot        *telegram.Bot
	background *chat.Background
	// line handles the LINE webhook; nil without a channel secret.
	line *line.Webhook
	// restNonce vouches for the client address REST calls carry (see
	// clientHeader).
	restNonce string
	// actions answers email action links; nil without an encryption key.
	actions *emailaction.Handler
	// sources are the declared webhook sources, sourceStore where they
	// are kept.
	sources     *registry.Registry
	sourceStore *postgres.Sources
}

// Slack interactions being decided at once, and how long each may take.
const (
	interactionsAtOnce = 32
	interactionTimeout = 30 * time.Second
)

// New returns the gateway.
func New(ctx context.Context, opts Options, deps Deps) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if opts.WebhookMaxBytes == 0 {
		opts.WebhookMaxBytes = 8 << 20
	}
	if opts.AuditRetention == 0 {
		opts.AuditRetention = 365 * 24 * time.Hour
	}
	if opts.SourcesReload <= 0 {
		opts.SourcesReload = 5 * time.Second
	}
	if deps.Pool == nil || deps.Keys == nil {
		return nil, errors.New("gateway: a database pool and signing keys are required")
	}
	deps.Logger = deps.Logger.With("service", "gateway")
	if err := db.Migrate(ctx, deps.Pool, Schema, db.Sub(postgres.Migrations, "migrations")); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	// Who owns what (apps, namespace mappings), kept from deploy's events
	// through the inbox.
	if err := outbox.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	if err := appteam.Migrate(ctx, deps.Pool, Schema); err != nil {
		return nil, fmt.Errorf("migrate: %w", err)
	}
	store := postgres.New(deps.Pool)
	// Two argon2id hashes at once: 128 MiB at most, whatever the burst.
	hasher := access.NewHasher(access.DefaultPasswordParams, 2)
	botID, _, _ := strings.Cut(opts.TelegramBotToken, ":")
	if opts.TelegramWebhookURL != "" && opts.TelegramWebhookSecret == "" {
		// The same for every replica: the first one's, from the database.
		secret, err := store.TelegramWebhookSecret(ctx, botID, newTelegramSecret(), time.Now())
		if err != nil {
			return nil, fmt.Errorf("telegram webhook secret: %w", err)
		}
		opts.TelegramWebhookSecret = secret
	}
	var chats []access.ChatProvider
	if opts.TelegramWebhookSecret != "" || opts.TelegramBotToken != "" {
		chats = append(chats, access.Telegram)
	}
	if opts.SlackSigningSecret != "" {
		chats = append(chats, access.Slack)
	}
	if opts.LineChannelSecret != "" {
		chats = append(chats, access.Line)
	}
	acc := access.New(access.Options{
		AccessTTL: opts.AccessTTL, RefreshTTL: opts.RefreshTTL, DefaultTeam: opts.DefaultTeam, ChatProviders: chats,
		KeyDefaultTTL: opts.KeyDefaultTTL, KeyMaxTTL: opts.KeyMaxTTL, Login: opts.Login, OutageTTL: outageTTL,
	},
		store, deps.Keys, hasher, auth.AdminToken(opts.AdminToken), deps.Logger.With("component", "access"))
	owners := &appteam.Memo{TTL: outageTTL}
	s := &Service{
		opts: opts, deps: deps, store: store, access: acc,
		// Concurrent webhooks share one atomic batch, and so one fsync.
		ingester: ingest.New(bus.NewBatcher(deps.Publisher, ingest.Producer), func(ctx context.Context, ls ...map[string]string) (*subject.Index, error) {
			return owners.IndexFor(ctx, deps.Pool, ls...)
		}, deps.Registry),
		background: chat.NewBackground(interactionsAtOnce, interactionTimeout),
		restNonce:  newTelegramSecret(),
	}
	log := deps.Logger.With("component", "chat")
	approvals := &chat.Approvals{
		Principals: acc, Repairs: deps.Repairs, Incidents: deps.Incidents, Silences: deps.Silences,
		Publisher: deps.Publisher, Audit: s.Audit, Log: log, SnoozeFor: opts.ChatSnooze,
	}
	if deps.JetStream != nil {
		s.live = console.NewLive(deps.Logger)
		var err error
		if s.owners, err = appteam.NewConsumer(ctx, deps.JetStream, deps.Pool, "gateway", deps.Logger, deps.Metrics); err != nil {
			return nil, err
		}
	}
	s.bot = &telegram.Bot{
		ID: botID, Updates: store,
		Linker:    &chat.Linker{Redeemer: acc, Audit: s.Audit, Log: log},
		Approvals: approvals, Log: log,
	}
	if opts.TelegramBotToken != "" {
		api, err := botapi.New(botapi.Options{
			BaseURL: opts.TelegramAPIURL, Token: opts.TelegramBotToken,
			Timeout: telegramCallTimeout, Logger: deps.Logger,
		})
		if err != nil {
			return nil, fmt.Errorf("VIGIL_TELEGRAM_BOT_TOKEN or VIGIL_TELEGRAM_API_URL: %w", err)
		}
		s.bot.API = api
	}
	if opts.EncryptionKey != nil {
		key, err := actionlink.Key(opts.EncryptionKey)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_ENCRYPTION_KEY: %w", err)
		}
		s.actions = &emailaction.Handler{Key: key, Links: store, Approvals: approvals, Log: deps.Logger.With("component", "email-actions")}
	}
	var box *seal.Box
	if opts.EncryptionKey != nil {
		var err error
		if box, err = seal.New(opts.EncryptionKey); err != nil {
			return nil, fmt.Errorf("VIGIL_ENCRYPTION_KEY: %w", err)
		}
	}
	s.sourceStore = store.Sources(box)
	s.sources = registry.New(s.sourceStore, source.Keys{Auth: acc}, deps.Logger.With("component", "sources"))
	if err := s.sources.Load(ctx); err != nil {
		return nil, fmt.Errorf("declared sources: %w", err)
	}
	if opts.LineChannelSecret != "" {
		api, err := lineapi.New(lineapi.Options{BaseURL: opts.LineAPIURL, Token: opts.LineChannelToken, Logger: deps.Logger})
		if err != nil {
			return nil, fmt.Errorf("VIGIL_LINE_CHANNEL_TOKEN or VIGIL_LINE_API_URL: %w", err)
		}
		s.line = &line.Webhook{
			Secret: opts.LineChannelSecret, API: api, Events: store, Linker: s.bot.Linker, Approvals: approvals,
			MaxBytes: chatMaxBytes, Log: log,
		}
	}
	return s, nil
}

// Authenticator authenticates API keys, session tokens and the bootstrap
// admin token.
func (s *Service) Authenticator() auth.Authenticator { return s.access }

// Audit writes an audited call to the audit log. A write that fails is
// logged with the entry (the call itself has already been answered).
func (s *Service) Audit(ctx context.Context, e auth.AuditEntry) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	e.Time = e.Time.Truncate(time.Microsecond)
	// A call the gateway relayed (REST, the web console) reaches its
	// gRPC server from the gateway itself: the peer worth keeping is
	// the HTTP client's.
	if addr, ok := s.relayedFor(ctx); ok {
		e.Peer = addr
	}
	if err := s.store.Audit(ctx, e); err != nil {
		s.deps.Logger.ErrorContext(ctx, "audit entry not written", "error", err,
			"actor", e.Actor, "method", e.Method, "target", e.Target, "code", e.Code.String())
	}
}

// NewIncidentForwarder returns an IncidentService that calls monitor over
// conn as the original caller.
func NewIncidentForwarder(conn grpc.ClientConnInterface) monitorv1.IncidentServiceServer {
	return grpcapi.NewIncidentForwarder(conn)
}

// NewSilenceForwarder returns a SilenceService that calls monitor over
// conn as the original caller.
func NewSilenceForwarder(conn grpc.ClientConnInterface) monitorv1.SilenceServiceServer {
	return grpcapi.NewSilenceForwarder(conn)
}

// NewOnCallForwarder returns an OnCallService that calls monitor over
// conn as the original caller.
func NewOnCallForwarder(conn grpc.ClientConnInterface) monitorv1.OnCallServiceServer {
	return grpcapi.NewOnCallForwarder(conn)
}

// NewEscalationForwarder returns an EscalationService that calls monitor
// over conn as the original caller.
func NewEscalationForwarder(conn grpc.ClientConnInterface) monitorv1.EscalationServiceServer {
	return grpcapi.NewEscalationForwarder(conn)
}

// NewInhibitionForwarder returns an InhibitionService that calls monitor
// over conn as the original caller.
func NewInhibitionForwarder(conn grpc.ClientConnInterface) monitorv1.InhibitionServiceServer {
	return grpcapi.NewInhibitionForwarder(conn)
}

// NewAppForwarder returns an AppService that calls the deploy service over
// conn as the original caller.
func NewAppForwarder(conn grpc.ClientConnInterface) deployv1.AppServiceServer {
	return grpcapi.NewAppForwarder(conn)
}

// NewAnalysisForwarder returns an AnalysisService that calls the analysis
// service over conn as the original caller.
func NewAnalysisForwarder(conn grpc.ClientConnInterface) analysisv1.AnalysisServiceServer {
	return grpcapi.NewAnalysisForwarder(conn)
}

// NewChannelForwarder returns a ChannelService that calls notify over
// conn.
func NewChannelForwarder(conn grpc.ClientConnInterface) notifyv1.ChannelServiceServer {
	return grpcapi.NewChannelForwarder(conn)
}

// NewRepairForwarder returns a RepairService that calls the repair
// service over conn as the original caller.
func NewRepairForwarder(conn grpc.ClientConnInterface) repairv1.RepairServiceServer {
	return grpcapi.NewRepairForwarder(conn)
}

// NewRouteForwarder returns a RouteService that calls notify over conn
// as the original caller.
func NewRouteForwarder(conn grpc.ClientConnInterface) notifyv1.RouteServiceServer {
	return grpcapi.NewRouteForwarder(conn)
}

// NewClusterForwarder returns a ClusterService that calls the deploy
// service over conn as the original caller.
func NewClusterForwarder(conn grpc.ClientConnInterface) deployv1.ClusterServiceServer {
	return grpcapi.NewClusterForwarder(conn)
}

// Register adds the public gRPC API to srv, its REST mapping to srv's
// gateway mux (through srv's own gRPC listener, so REST passes the same
// authentication), and the webhooks. Call after srv.Listen.
func (s *Service) Register(ctx context.Context, srv *server.Server) error {
	gatewayv1.RegisterAlertServiceServer(srv.GRPC, grpcapi.NewAlertServer(s.ingester))
	acc := grpcapi.NewAccessServer(s.access, s.store, s.deps.Logger)
	acc.ClientAddr = s.clientAddr
	gatewayv1.RegisterAuthServiceServer(srv.GRPC, acc)
	gatewayv1.RegisterUserServiceServer(srv.GRPC, acc)
	gatewayv1.RegisterKeyServiceServer(srv.GRPC, acc)
	gatewayv1.RegisterAuditServiceServer(srv.GRPC, acc)
	gatewayv1.RegisterSourceServiceServer(srv.GRPC, grpcapi.NewSourceServer(s.sourceStore, s.sources, s.deps.Logger.With("component", "sources")))
	// Services not built yet are registered as unimplemented, so that
	// their calls pass authentication like any other (401 before 501).
	if s.deps.Repairs != nil {
		repairv1.RegisterRepairServiceServer(srv.GRPC, s.deps.Repairs)
	} else {
		repairv1.RegisterRepairServiceServer(srv.GRPC, repairv1.UnimplementedRepairServiceServer{})
	}
	if s.deps.Channels != nil {
		notifyv1.RegisterChannelServiceServer(srv.GRPC, s.deps.Channels)
	} else {
		notifyv1.RegisterChannelServiceServer(srv.GRPC, notifyv1.UnimplementedChannelServiceServer{})
	}
	if s.deps.Routes != nil {
		notifyv1.RegisterRouteServiceServer(srv.GRPC, s.deps.Routes)
	} else {
		notifyv1.RegisterRouteServiceServer(srv.GRPC, notifyv1.UnimplementedRouteServiceServer{})
	}
	if s.deps.Analyses != nil {
		analysisv1.RegisterAnalysisServiceServer(srv.GRPC, s.deps.Analyses)
	} else {
		analysisv1.RegisterAnalysisServiceServer(srv.GRPC, analysisv1.UnimplementedAnalysisServiceServer{})
	}
	if s.deps.Incidents != nil {
		monitorv1.RegisterIncidentServiceServer(srv.GRPC, s.deps.Incidents)
	}
	if s.deps.Silences != nil {
		monitorv1.RegisterSilenceServiceServer(srv.GRPC, s.deps.Silences)
	}
	if s.deps.OnCall != nil {
		monitorv1.RegisterOnCallServiceServer(srv.GRPC, s.deps.OnCall)
	}
	if s.deps.Escalation != nil {
		monitorv1.RegisterEscalationServiceServer(srv.GRPC, s.deps.Escalation)
	}
	if s.deps.Inhibitions != nil {
		monitorv1.RegisterInhibitionServiceServer(srv.GRPC, s.deps.Inhibitions)
	}
	if s.deps.Apps != nil {
		deployv1.RegisterAppServiceServer(srv.GRPC, s.deps.Apps)
	}
	if s.deps.Clusters != nil {
		deployv1.RegisterClusterServiceServer(srv.GRPC, s.deps.Clusters)
	}
	conn, err := srv.SelfConn()
	if err != nil {
		return err
	}
	for _, register := range registerREST {
		if err := register(ctx, srv.Gateway, conn); err != nil {
			return err
		}
	}
	srv.WrapREST(s.requireCredentials)
	srv.LimitREST(s.opts.RESTMaxBytes)
	// Every webhook source of alerts goes through one handler: bounded,
	// verified by its sender's own mechanism, validated, counted.
	sources := source.NewMetrics(s.deps.Registry)
	keys := source.Keys{Auth: s.access}
	srv.Handle("POST /api/v1/webhooks/alertmanager", &source.Handler{
		Source: alertmanager.Source(keys), Ingester: s.ingester, MaxBytes: s.opts.WebhookMaxBytes, Metrics: sources, Log: s.deps.Logger,
	})
	srv.Handle("POST /api/v1/webhooks/grafana", &source.Handler{
		Source: grafana.Source(keys), Ingester: s.ingester, MaxBytes: s.opts.WebhookMaxBytes, Metrics: sources, Log: s.deps.Logger,
	})
	// The sources admins declare (SourceService), each at its own URL.
	srv.Handle("POST "+grpcapi.SourcePath("{name}"), &source.Handler{
		Lookup: s.sources.Lookup, Ingester: s.ingester, MaxBytes: s.opts.WebhookMaxBytes, Metrics: sources, Log: s.deps.Logger,
	})
	sentryHook := notConfigured("Sentry", "VIGIL_SENTRY_CLIENT_SECRET")
	if s.opts.SentryClientSecret != "" {
		sentryHook = &source.Handler{
			Source:   sentry.Source([]byte(s.opts.SentryClientSecret), s.opts.SentryTeam),
			Ingester: s.ingester, MaxBytes: s.opts.WebhookMaxBytes, Metrics: sources, Log: s.deps.Logger,
		}
	}
	srv.Handle("POST /api/v1/webhooks/sentry", sentryHook)
	// The chat webhooks are verified by their senders' own mechanisms, not
	// by API credentials.
	tg := notConfigured("Telegram", "VIGIL_TELEGRAM_WEBHOOK_SECRET")
	slCommands := notConfigured("Slack", "VIGIL_SLACK_SIGNING_SECRET")
	slInteractions := slCommands
	if s.opts.TelegramWebhookSecret != "" {
		tg = &telegram.Webhook{Secret: s.opts.TelegramWebhookSecret, Bot: s.bot, MaxBytes: chatMaxBytes, Log: s.deps.Logger}
	}
	if s.opts.SlackSigningSecret != "" {
		slCommands = &slack.Commands{SigningSecret: s.opts.SlackSigningSecret, Linker: s.bot.Linker, MaxBytes: chatMaxBytes, Log: s.deps.Logger}
		slInteractions = &slack.Interactions{
			SigningSecret: s.opts.SlackSigningSecret, ResponseURLBase: s.opts.SlackResponseURLBase,
			Approvals: s.bot.Approvals, Runner: s.background,
			HTTP: &http.Client{}, MaxBytes: chatMaxBytes, Log: s.deps.Logger,
		}
	}
	ln := notConfigured("LINE", "VIGIL_LINE_CHANNEL_SECRET")
	if s.line != nil {
		ln = s.line
	}
	srv.Handle("POST /api/v1/webhooks/line", ln)
	srv.Handle("POST /api/v1/webhooks/telegram", tg)
	srv.Handle("POST /api/v1/webhooks/slack/commands", slCommands)
	srv.Handle("POST /api/v1/webhooks/slack/interactions", slInteractions)
	actions := notConfigured("Email action links", "VIGIL_ENCRYPTION_KEY")
	if s.actions != nil {
		actions = s.actions
	}
	srv.Handle("GET /api/v1/actions/{token}", actions)
	srv.Handle("POST /api/v1/actions/{token}", actions)
	// The web console has what the routes above leave (/ and below); it
	// calls the API as the signed-in user through the same listener.
	con, err := console.New(console.Options{
		Conn: conn, ClientAddr: s.clientAddrMD, Live: s.live, Authenticate: s.access.Authenticate, ViaTLS: s.viaTLS, Log: s.deps.Logger,
	})
	if err != nil {
		return err
	}
	srv.Handle("/", con)
	return nil
}

// notConfigured answers a webhook that is not set up.
func notConfigured(what, setting string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		server.WriteProblem(w, http.StatusNotFound, what+" is not set up on this Vigil: set "+setting)
	})
}

// Run prunes the audit log and ended sessions every hour and receives
// the Telegram bot's updates (registers its webhook, or polls) until ctx
// ends, then waits for the Slack interactions being decided; the rest of
// the gateway is its listeners.
func (s *Service) Run(ctx context.Context) error {
	g, gctx := errgroup.WithContext(ctx)
	retention := db.Retention{
		What: "audit log, sessions, Telegram updates, LINE events, login failures and used action links",
		Prune: func(ctx context.Context) (int64, error) {
			now := time.Now()
			return s.store.Prune(ctx, now.Add(-s.opts.AuditRetention), now.Add(-24*time.Hour))
		},
		Log: s.deps.Logger,
	}
	g.Go(func() error { return retention.Run(gctx) })
	if s.owners != nil {
		g.Go(func() error { return s.owners.Run(gctx) })
	}
	if s.live != nil {
		g.Go(func() error { return s.live.Run(gctx, s.deps.JetStream.Conn()) })
	}
	g.Go(func() error { return s.sources.Run(gctx, s.opts.SourcesReload) })
	if s.bot.API != nil {
		g.Go(func() error { return s.telegramUpdates(gctx) })
	}
	err := g.Wait()
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.background.Stop(sctx)
	return err
}

// telegramUpdates brings the bot's updates in: it registers the webhook
// (retrying until Telegram takes it), or polls under a lease so that one
// replica at a time does.
func (s *Service) telegramUpdates(ctx context.Context) error {
	log := s.deps.Logger.With("component", "telegram")
	if s.opts.TelegramWebhookURL != "" {
		url := s.opts.TelegramWebhookURL
		if telegram.Persist(ctx, func(ctx context.Context) error {
			return s.bot.SetWebhook(ctx, url, s.opts.TelegramWebhookSecret)
		}, func(err error, retryIn time.Duration) {
			log.ErrorContext(ctx, "telegram webhook not set", "url", url, "error", err, "retry_in", retryIn)
		}) {
			log.InfoContext(ctx, "telegram webhook set", "url", url)
		}
		return nil
	}
	l := &lease.Lease{
		Pool: s.deps.Pool, Key: lease.Key("vigil/gateway/telegram-getUpdates/" + s.bot.ID),
		Retry: s.opts.TelegramPollRetry, Log: log,
	}
	p := &telegram.Poller{API: s.bot.API, Bot: s.bot, Log: log}
	return l.Run(ctx, p.Run)
}

// publicREST are the REST routes of the RPCs auth.Policy declares public.
var publicREST = map[string]bool{
	"POST /api/v1/auth/login":   true,
	"POST /api/v1/auth/refresh": true,
	"POST /api/v1/auth/logout":  true,
}

// requireCredentials answers 401 to a REST call without valid credentials
// before grpc-gateway routes it or reads its body, so that a stranger
// learns nothing from a 404 or a 400. The guard then checks the route's
// RPC permission before the body is read (server.AuthorizeREST), and
// the gRPC call as any other (both authenticate from the cache).
func (s *Service) requireCredentials(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if publicREST[r.Method+" "+r.URL.Path] {
			// Login throttles by the client's address: only these read it.
			s.withClientAddr(r)
			next.ServeHTTP(w, r)
			return
		}
		_, err := s.access.Authenticate(r.Context(), auth.HTTPSecret(r))
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			server.WriteProblem(w, http.StatusUnauthorized, "missing or invalid credentials: send \"Authorization: Bearer <token>\" (an API key, a session token from `vigil login`, or the bootstrap admin token)")
			return
		case err != nil:
			s.deps.Logger.WarnContext(r.Context(), "credentials not checked", "error", err)
			w.Header().Set("Retry-After", "5")
			server.WriteProblem(w, http.StatusServiceUnavailable, "credentials could not be checked; try again")
			return
		}
		next.ServeHTTP(w, r)
	})
}
