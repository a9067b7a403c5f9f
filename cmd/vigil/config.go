package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/telemetry"
	"github.com/vigil-ops/vigil/services/analysis"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/monitor"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
	"github.com/vigil-ops/vigil/services/repair"
)

// env returns the environment variable key, or def when unset or empty.
func env(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// serviceFlags are the flags and VIGIL_* variables shared by up and serve.
type serviceFlags struct {
	httpAddr, grpcAddr string
	logLevel, logFmt   string
}

func (f *serviceFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.httpAddr, "http-addr", env("VIGIL_HTTP_ADDR", "127.0.0.1:8080"), "REST, webhooks, /healthz, /readyz, /metrics (VIGIL_HTTP_ADDR)")
	cmd.Flags().StringVar(&f.grpcAddr, "grpc-addr", env("VIGIL_GRPC_ADDR", "127.0.0.1:9090"), "gRPC API (VIGIL_GRPC_ADDR)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", env("VIGIL_LOG_LEVEL", "info"), "debug, info, warn or error (VIGIL_LOG_LEVEL)")
	cmd.Flags().StringVar(&f.logFmt, "log-format", env("VIGIL_LOG_FORMAT", "json"), "json or text (VIGIL_LOG_FORMAT)")
}

func (f *serviceFlags) logger() (*slog.Logger, error) {
	var level slog.Level
	if err := level.UnmarshalText([]byte(f.logLevel)); err != nil {
		return nil, fmt.Errorf("VIGIL_LOG_LEVEL: %q is not debug, info, warn or error", f.logLevel)
	}
	return telemetry.NewLogger(os.Stderr, f.logFmt, level)
}

// appOptions reads the service options from the environment; errors name
// the variable to fix.
func appOptions(f *serviceFlags, services []string, adminToken string) (app.Options, error) {
	secrets := map[string]string{}
	for _, k := range []string{"VIGIL_TELEGRAM_WEBHOOK_SECRET", "VIGIL_SLACK_SIGNING_SECRET", "VIGIL_TELEGRAM_BOT_TOKEN", "VIGIL_SLACK_BOT_TOKEN", "VIGIL_LINE_CHANNEL_TOKEN", "VIGIL_WEBHOOK_SECRET", "VIGIL_LINE_CHANNEL_SECRET", "VIGIL_SENTRY_CLIENT_SECRET"} {
		v, err := secretEnv(k)
		if err != nil {
			return app.Options{}, err
		}
		secrets[k] = v
	}
	dedup, err := envDuration("VIGIL_DEDUP_WINDOW", 10*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	slackAPI := env("VIGIL_SLACK_API_URL", "https://slack.com/api")
	// The LINE API both sides call: notify pushes, the gateway replies.
	lineAPI := env("VIGIL_LINE_API_URL", "https://api.line.me")
	silenceMax, err := envDuration("VIGIL_SILENCE_MAX_DURATION", 30*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	// Deploy quiet: an app's warning alerts wait out its rollout and this
	// long after (0: off).
	deployQuiet, err := envDuration("VIGIL_DEPLOY_QUIET", 5*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	maxBytes, err := envInt("VIGIL_WEBHOOK_MAX_BYTES", 8<<20)
	if err != nil {
		return app.Options{}, err
	}
	restMaxBytes, err := envInt("VIGIL_REST_MAX_BYTES", 1<<20)
	if err != nil {
		return app.Options{}, err
	}
	rollout, err := envDuration("VIGIL_ROLLOUT_TIMEOUT", 5*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	key, err := encryptionKey()
	if err != nil {
		return app.Options{}, err
	}
	streams, err := streamOptions()
	if err != nil {
		return app.Options{}, err
	}
	updateInterval, err := envDuration("VIGIL_INCIDENT_UPDATE_INTERVAL", 5*time.Second)
	if err != nil {
		return app.Options{}, err
	}
	chunk, err := envInt("VIGIL_MONITOR_CHUNK", 2000)
	if err != nil {
		return app.Options{}, err
	}
	workers, err := envInt("VIGIL_MONITOR_WORKERS", 1)
	if err != nil {
		return app.Options{}, err
	}
	startWithin, err := envDuration("VIGIL_MONITOR_START_WITHIN", time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	retention, err := envDuration("VIGIL_RETENTION", 30*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	flapThreshold, err := envInt("VIGIL_FLAP_THRESHOLD", 4)
	if err != nil {
		return app.Options{}, err
	}
	switch {
	case flapThreshold < 0:
		return app.Options{}, errors.New("VIGIL_FLAP_THRESHOLD: must not be negative (0 turns flapping detection off)")
	case flapThreshold == 0:
		flapThreshold = -1 // monitor's "never"
	}
	flapWindow, err := envDuration("VIGIL_FLAP_WINDOW", 15*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	notifyMaxAge, err := envDuration("VIGIL_NOTIFY_MAX_EVENT_AGE", time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	zone, err := time.LoadLocation(env("VIGIL_TIME_ZONE", "UTC"))
	if err != nil {
		return app.Options{}, fmt.Errorf("VIGIL_TIME_ZONE: %w (want an IANA zone like Asia/Taipei)", err)
	}
	mail, err := emailOptions()
	if err != nil {
		return app.Options{}, err
	}
	analysisMaxAge, err := envDuration("VIGIL_ANALYSIS_MAX_EVENT_AGE", time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	reanalyze, err := envDuration("VIGIL_ANALYSIS_REANALYZE_INTERVAL", 10*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	llmOpts, err := llmOptions()
	if err != nil {
		return app.Options{}, err
	}
	promToken, err := secretEnv("VIGIL_PROMETHEUS_TOKEN")
	if err != nil {
		return app.Options{}, err
	}
	accessTTL, err := envDuration("VIGIL_ACCESS_TOKEN_TTL", 15*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	sessionTTL, err := envDuration("VIGIL_SESSION_TTL", 7*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	auditRetention, err := envDuration("VIGIL_AUDIT_RETENTION", 365*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	chatSnooze, err := envDuration("VIGIL_CHAT_SNOOZE", gateway.DefaultChatSnooze)
	if err != nil {
		return app.Options{}, err
	}
	keyDefaultTTL, err := envDuration("VIGIL_KEY_DEFAULT_TTL", 90*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	keyMaxTTL, err := envDuration("VIGIL_KEY_MAX_TTL", 365*24*time.Hour)
	if err != nil {
		return app.Options{}, err
	}
	loginPerUser, err := envInt("VIGIL_LOGIN_FAILURES_PER_USER", gateway.DefaultLoginLimits.UserFailures)
	if err != nil {
		return app.Options{}, err
	}
	loginPerAddress, err := envInt("VIGIL_LOGIN_FAILURES_PER_ADDRESS", gateway.DefaultLoginLimits.AddressFailures)
	if err != nil {
		return app.Options{}, err
	}
	proxies, err := trustedProxies()
	if err != nil {
		return app.Options{}, err
	}
	repairMaxAge, err := envDuration("VIGIL_REPAIR_MAX_EVENT_AGE", 10*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	approvalSnooze, err := envDuration("VIGIL_APPROVAL_SNOOZE", 30*time.Minute)
	if err != nil {
		return app.Options{}, err
	}
	statementTimeout, err := envDuration("VIGIL_DB_STATEMENT_TIMEOUT", db.DefaultStatementTimeout)
	if err != nil {
		return app.Options{}, err
	}
	if statementTimeout <= 0 {
		return app.Options{}, fmt.Errorf("VIGIL_DB_STATEMENT_TIMEOUT: %s: must be positive (default %s)", statementTimeout, db.DefaultStatementTimeout)
	}
	shutdownTimeout, err := envDuration("VIGIL_SHUTDOWN_TIMEOUT", app.DefaultShutdownTimeout)
	if err != nil {
		return app.Options{}, err
	}
	if shutdownTimeout <= 0 {
		return app.Options{}, fmt.Errorf("VIGIL_SHUTDOWN_TIMEOUT: %s: must be positive (default %s)", shutdownTimeout, app.DefaultShutdownTimeout)
	}
	acceptAdminToken, err := envBool("VIGIL_ACCEPT_ADMIN_TOKEN")
	if err != nil {
		return app.Options{}, err
	}
	return app.Options{
		Services:         services,
		GRPCAddr:         f.grpcAddr,
		HTTPAddr:         f.httpAddr,
		AdminToken:       adminToken,
		AcceptAdminToken: acceptAdminToken,
		StatementTimeout: statementTimeout,
		ShutdownTimeout:  shutdownTimeout,
		MonitorAddr:      os.Getenv("VIGIL_MONITOR_ADDR"),
		DeployAddr:       os.Getenv("VIGIL_DEPLOY_ADDR"),
		// VIGIL_ANALYSIS_ADDR: the analysis service, for a gateway without
		// it in its process.
		AnalysisAddr: os.Getenv("VIGIL_ANALYSIS_ADDR"),
		RepairAddr:   os.Getenv("VIGIL_REPAIR_ADDR"),
		// VIGIL_NOTIFY_ADDR: notify, for a gateway without it in its
		// process (ChannelService, RouteService).
		NotifyAddr: os.Getenv("VIGIL_NOTIFY_ADDR"),
		Repair: repair.Options{
			MaxEventAge:    repairMaxAge,
			ApprovalSnooze: approvalSnooze,
			// Checked by repair.Options.Validate, which names the variable.
			Namespace:          os.Getenv("VIGIL_NAMESPACE"),
			ReservedNamespaces: envList("VIGIL_RESERVED_NAMESPACES"),
			// Read and checked by repair.New, which names the file.
			GuardrailsFile: os.Getenv("VIGIL_REPAIR_GUARDRAILS_FILE"),
		},
		Analysis: analysis.Options{
			MaxEventAge:       analysisMaxAge,
			Retention:         retention,
			ReanalyzeInterval: reanalyze,
			// VIGIL_PROMETHEUS_URL: checked by analysis.Options.Validate.
			PrometheusURL:   os.Getenv("VIGIL_PROMETHEUS_URL"),
			PrometheusToken: promToken,
			// Checked by analysis.Options.Validate, which names the variable.
			Namespace:          os.Getenv("VIGIL_NAMESPACE"),
			ReservedNamespaces: envList("VIGIL_RESERVED_NAMESPACES"),
		},
		LLM: llmOpts,
		Deploy: deploy.Options{
			EncryptionKey:  key,
			DefaultCluster: os.Getenv("VIGIL_DEFAULT_CLUSTER"),
			RolloutTimeout: rollout,
			IngressClass:   os.Getenv("VIGIL_INGRESS_CLASS"),
			ClusterIssuer:  env("VIGIL_CLUSTER_ISSUER", "letsencrypt"),
			// Checked by deploy.Options.Validate, which names the variable.
			ReservedNamespaces: envList("VIGIL_RESERVED_NAMESPACES"),
			// Checked by deploy.Options.Validate too.
			Namespace:        os.Getenv("VIGIL_NAMESPACE"),
			RepairNamespaces: envList("VIGIL_REPAIR_NAMESPACES"),
		},
		Gateway: gateway.Options{
			WebhookMaxBytes: int64(maxBytes),
			RESTMaxBytes:    int64(restMaxBytes),
			AccessTTL:       accessTTL,
			RefreshTTL:      sessionTTL,
			DefaultTeam:     os.Getenv("VIGIL_DEFAULT_TEAM"),
			AuditRetention:  auditRetention,
			KeyDefaultTTL:   keyDefaultTTL,
			KeyMaxTTL:       keyMaxTTL,
			// The rest of the limits are the gateway's defaults.
			Login:          gateway.LoginLimits{UserFailures: loginPerUser, AddressFailures: loginPerAddress},
			TrustedProxies: proxies,
			// Secrets: checked by gateway.Options.Validate, never logged.
			TelegramWebhookSecret: secrets["VIGIL_TELEGRAM_WEBHOOK_SECRET"],
			SlackSigningSecret:    secrets["VIGIL_SLACK_SIGNING_SECRET"],
			// The bot notify sends with: the gateway answers its buttons,
			// by webhook when VIGIL_TELEGRAM_WEBHOOK_URL is set, else by
			// polling getUpdates.
			TelegramBotToken:   secrets["VIGIL_TELEGRAM_BOT_TOKEN"],
			TelegramAPIURL:     env("VIGIL_TELEGRAM_API_URL", "https://api.telegram.org"),
			TelegramWebhookURL: os.Getenv("VIGIL_TELEGRAM_WEBHOOK_URL"),
			SlackResponseURLBase: env("VIGIL_SLACK_RESPONSE_URL_BASE",
				slackResponseURLBase(slackAPI)),
			// The LINE channel notify pushes with: the gateway takes its
			// webhook (links, button presses) when the secret is set.
			LineChannelSecret: secrets["VIGIL_LINE_CHANNEL_SECRET"],
			LineChannelToken:  secrets["VIGIL_LINE_CHANNEL_TOKEN"],
			LineAPIURL:        lineAPI,
			// Sentry's internal integration: its webhooks are signed with
			// the client secret; the source belongs to VIGIL_SENTRY_TEAM.
			SentryClientSecret: secrets["VIGIL_SENTRY_CLIENT_SECRET"],
			SentryTeam:         os.Getenv("VIGIL_SENTRY_TEAM"),
			// An incident's Snooze button in a chat; the email action
			// links' signing key is derived from the encryption key.
			ChatSnooze: chatSnooze, EncryptionKey: key,
		},
		Monitor: monitor.Options{
			GroupBy:        strings.Split(env("VIGIL_GROUP_BY", "alertname,namespace"), ","),
			DedupWindow:    dedup,
			Retention:      retention,
			UpdateInterval: updateInterval,
			ChunkSize:      chunk,
			StartWithin:    startWithin,
			Workers:        workers,
			// One-off silences end (maintenance windows may span a year).
			SilenceMaxDuration: silenceMax,
			// Priority rules, policies, schedules kept in Git.
			EscalationFile: os.Getenv("VIGIL_ESCALATION_FILE"),
			DeployQuiet:    deployQuiet,
			// Alerts that fire and resolve over and over (docs/noise.md).
			FlapThreshold: flapThreshold, FlapWindow: flapWindow,
			// Alertmanager's inhibit_rules, reloaded on SIGHUP.
			InhibitFile: os.Getenv("VIGIL_INHIBIT_FILE"),
		},
		Notify: notify.Options{
			// One line per channel; each checks its own options, naming
			// the variables.
			Channels: []channel.Config{
				telegram.Options{
					BotToken: secrets["VIGIL_TELEGRAM_BOT_TOKEN"],
					ChatID:   os.Getenv("VIGIL_TELEGRAM_CHAT_ID"),
					APIURL:   env("VIGIL_TELEGRAM_API_URL", "https://api.telegram.org"),
				},
				slack.Options{
					BotToken: secrets["VIGIL_SLACK_BOT_TOKEN"],
					Channel:  os.Getenv("VIGIL_SLACK_CHANNEL"),
					APIURL:   slackAPI,
				},
				mail,
				line.Options{
					ChannelToken: secrets["VIGIL_LINE_CHANNEL_TOKEN"],
					To:           os.Getenv("VIGIL_LINE_TO"),
					APIURL:       lineAPI,
				},
				webhook.Options{URL: os.Getenv("VIGIL_WEBHOOK_URL"), Secret: secrets["VIGIL_WEBHOOK_SECRET"]},
			},
			MaxEventAge: notifyMaxAge,
			Retention:   retention,
			// The language and zone of channels that name none; checked by
			// notify.
			Language:     env("VIGIL_LANGUAGE", "en"),
			TimeZone:     zone,
			TemplatesDir: os.Getenv("VIGIL_NOTIFY_TEMPLATES_DIR"),
			PublicURL:    os.Getenv("VIGIL_PUBLIC_URL"),
			// Seals the credentials of channels managed through the API.
			EncryptionKey: key,
			// Read and checked by notify.New, which names the file.
			RoutesFile: os.Getenv("VIGIL_ROUTES_FILE"),
		},
		Streams: streams,
	}, nil
}

// emailOptions are the email channel's, from VIGIL_SMTP_* and
// VIGIL_EMAIL_*; off without VIGIL_SMTP_HOST.
func emailOptions() (email.Options, error) {
	port, err := envInt("VIGIL_SMTP_PORT", 0)
	if err != nil {
		return email.Options{}, err
	}
	password, err := secretEnv("VIGIL_SMTP_PASSWORD")
	if err != nil {
		return email.Options{}, err
	}
	return email.Options{
		Host: os.Getenv("VIGIL_SMTP_HOST"), Port: port, TLS: env("VIGIL_SMTP_TLS", email.TLSStartTLS),
		Username: os.Getenv("VIGIL_SMTP_USERNAME"), Password: password, CAFile: os.Getenv("VIGIL_SMTP_CA_FILE"),
		From: os.Getenv("VIGIL_EMAIL_FROM"), To: envList("VIGIL_EMAIL_TO"),
	}, nil
}

// notifyChannel is notify's channel configured by options of type O, if
// it has one.
func notifyChannel[O channel.Config](opts notify.Options) (O, bool) {
	for _, c := range opts.Channels {
		if o, ok := c.(O); ok {
			return o, true
		}
	}
	var zero O
	return zero, false
}

// trustedProxies are VIGIL_TRUSTED_PROXIES: addresses or CIDR prefixes,
// comma-separated, of the proxies whose X-Forwarded-For the gateway
// believes.
func trustedProxies() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, v := range envList("VIGIL_TRUSTED_PROXIES") {
		p, err := netip.ParsePrefix(v)
		if err != nil {
			a, aerr := netip.ParseAddr(v)
			if aerr != nil {
				return nil, fmt.Errorf("VIGIL_TRUSTED_PROXIES: %q is not an address or a CIDR prefix like 10.0.0.0/8", v)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// slackResponseURLBase is where response_urls come from for the Slack
// Web API at apiURL: Slack's own hooks host for slack.com, otherwise the
// API's own origin (a Slack stand-in such as a test fake serves both).
func slackResponseURLBase(apiURL string) string {
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" || strings.EqualFold(u.Hostname(), "slack.com") {
		return "https://hooks.slack.com/"
	}
	return u.Scheme + "://" + u.Host + "/"
}

// natsCredentials are the NATS login from VIGIL_NATS_USER (default user)
// and VIGIL_NATS_PASSWORD (or VIGIL_NATS_PASSWORD_FILE).
func natsCredentials(user string) (bus.Credentials, error) {
	pw, err := secretEnv("VIGIL_NATS_PASSWORD")
	if err != nil {
		return bus.Credentials{}, err
	}
	c := bus.Credentials{User: env("VIGIL_NATS_USER", user), Password: pw}
	if c.Password == "" {
		return bus.Credentials{}, fmt.Errorf("VIGIL_NATS_PASSWORD: missing (or VIGIL_NATS_PASSWORD_FILE): the password of NATS user %s", c.User)
	}
	return c, nil
}

// secretEnv is the secret in the variable key, or in the file named by
// key_FILE (a Kubernetes or Docker secret mounted as a file), trimmed of
// white space; "" when neither is set. Both set is an error.
func secretEnv(key string) (string, error) {
	v, file := os.Getenv(key), os.Getenv(key+"_FILE")
	if file == "" {
		return strings.TrimSpace(v), nil
	}
	if v != "" {
		return "", fmt.Errorf("%s and %s_FILE: set one of them, not both", key, key)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("%s_FILE: %w", key, err)
	}
	return strings.TrimSpace(string(b)), nil
}

// streamOptions are the JetStream stream limits from VIGIL_STREAM_MAX_AGE
// and VIGIL_STREAM_MAX_BYTES; unset, each stream keeps its own default
// (see bus.StreamOptions).
func streamOptions() (bus.StreamOptions, error) {
	maxAge, err := envDuration("VIGIL_STREAM_MAX_AGE", 0)
	if err != nil {
		return bus.StreamOptions{}, err
	}
	if maxAge < 0 {
		return bus.StreamOptions{}, errors.New("VIGIL_STREAM_MAX_AGE: must not be negative")
	}
	var maxBytes int64
	if v := os.Getenv("VIGIL_STREAM_MAX_BYTES"); v != "" {
		if maxBytes, err = strconv.ParseInt(v, 10, 64); err != nil || maxBytes < 0 {
			return bus.StreamOptions{}, fmt.Errorf("VIGIL_STREAM_MAX_BYTES: %q is not a number of bytes, like 1073741824", v)
		}
	}
	replicas := 1
	if v := os.Getenv("VIGIL_STREAM_REPLICAS"); v != "" {
		if replicas, err = strconv.Atoi(v); err != nil || replicas < 1 || replicas > 5 {
			return bus.StreamOptions{}, fmt.Errorf("VIGIL_STREAM_REPLICAS: %q: want 1 to 5 (3 for a three-node JetStream cluster)", v)
		}
	}
	return bus.StreamOptions{MaxAge: maxAge, MaxBytes: maxBytes, Replicas: replicas}, nil
}

// encryptionKey is VIGIL_ENCRYPTION_KEY, or the key in
// VIGIL_ENCRYPTION_KEY_FILE; nil when neither is set.
func encryptionKey() ([]byte, error) {
	if v := os.Getenv("VIGIL_ENCRYPTION_KEY"); v != "" {
		k, err := seal.ParseKey(v)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_ENCRYPTION_KEY: %w", err)
		}
		return k, nil
	}
	if path := os.Getenv("VIGIL_ENCRYPTION_KEY_FILE"); path != "" {
		k, err := seal.ReadKeyFile(path)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_ENCRYPTION_KEY_FILE: %w", err)
		}
		return k, nil
	}
	return nil, nil
}

// envList splits a comma-separated variable, leaving out empty entries
// (a trailing comma) and the spaces around entries.
func envList(key string) []string {
	var out []string
	for v := range strings.SplitSeq(os.Getenv(key), ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envDuration(key string, def time.Duration) (time.Duration, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a duration like 10m", key, v)
	}
	return d, nil
}

// envBool is a true/false variable, false when unset.
func envBool(key string) (bool, error) {
	v := os.Getenv(key)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s: %q is not true or false", key, v)
	}
	return b, nil
}

func envInt(key string, def int) (int, error) {
	v := os.Getenv(key)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a number", key, v)
	}
	return n, nil
}

// llmOptions are the LLM engines from VIGIL_ANALYSIS_ENGINES (their order,
// e.g. "ollama,openai") and each provider's VIGIL_<PROVIDER>_URL, _MODEL,
// _API_KEY (or _API_KEY_FILE), _PRICE_INPUT and _PRICE_OUTPUT (US dollars
// per million tokens); VIGIL_LLM_TIMEOUT, VIGIL_LLM_DAILY_TOKENS,
// VIGIL_LLM_DAILY_COST and VIGIL_LLM_PSEUDONYMISE.
func llmOptions() (analysis.LLMOptions, error) {
	o := analysis.LLMOptions{Providers: map[string]analysis.Provider{}}
	for _, name := range strings.Split(os.Getenv("VIGIL_ANALYSIS_ENGINES"), ",") {
		if name = strings.TrimSpace(strings.ToLower(name)); name != "" && name != "rules" {
			o.Order = append(o.Order, name)
		}
	}
	for _, name := range analysis.Providers {
		key, err := secretEnv(providerVar(name, "API_KEY"))
		if err != nil {
			return o, err
		}
		p := analysis.Provider{URL: os.Getenv(providerVar(name, "URL")), APIKey: key, Model: os.Getenv(providerVar(name, "MODEL"))}
		for _, price := range []struct {
			name string
			to   *float64
		}{{"PRICE_INPUT", &p.InputPrice}, {"PRICE_OUTPUT", &p.OutputPrice}} {
			if v := os.Getenv(providerVar(name, price.name)); v != "" {
				f, err := strconv.ParseFloat(v, 64)
				if err != nil || f < 0 {
					return o, fmt.Errorf("%s: %q is not a price in US dollars per million tokens, like 0.15", providerVar(name, price.name), v)
				}
				*price.to = f
			}
		}
		o.Providers[name] = p
	}
	var err error
	if o.Timeout, err = envDuration("VIGIL_LLM_TIMEOUT", time.Minute); err != nil {
		return o, err
	}
	if o.DailyTokens, err = envInt("VIGIL_LLM_DAILY_TOKENS", 0); err != nil {
		return o, err
	}
	if v := os.Getenv("VIGIL_LLM_DAILY_COST"); v != "" {
		if o.DailyCost, err = strconv.ParseFloat(v, 64); err != nil {
			return o, fmt.Errorf("VIGIL_LLM_DAILY_COST: %q is not an amount in US dollars", v)
		}
	}
	o.Pseudonymise = env("VIGIL_LLM_PSEUDONYMISE", "false") == "true"
	o.Language = env("VIGIL_LANGUAGE", "en")
	if o.Languages, err = teamLanguages(os.Getenv("VIGIL_ANALYSIS_LANGUAGES")); err != nil {
		return o, err
	}
	return o, o.Validate()
}

// teamLanguages parses VIGIL_ANALYSIS_LANGUAGES: team=language pairs,
// comma-separated (payments=zh-TW,web=en).
func teamLanguages(v string) (map[string]string, error) {
	out := map[string]string{}
	for _, pair := range strings.Split(v, ",") {
		if pair = strings.TrimSpace(pair); pair == "" {
			continue
		}
		team, lang, ok := strings.Cut(pair, "=")
		team, lang = strings.TrimSpace(team), strings.TrimSpace(lang)
		switch {
		case !ok || team == "" || lang == "":
			return nil, fmt.Errorf("VIGIL_ANALYSIS_LANGUAGES: %q: want team=language, as payments=zh-TW", pair)
		case out[team] != "":
			return nil, fmt.Errorf("VIGIL_ANALYSIS_LANGUAGES: team %s is listed twice", team)
		}
		out[team] = lang
	}
	return out, nil
}

// providerVar is the variable holding an LLM provider's setting:
// VIGIL_<PROVIDER>_<SETTING>.
func providerVar(provider, setting string) string {
	return "VIGIL_" + strings.ToUpper(provider) + "_" + setting
}
