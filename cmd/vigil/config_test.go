package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// VIGIL_RESERVED_NAMESPACES is a comma-separated list; the deploy
// service's options check its entries and name the variable.
func TestReservedNamespacesFromEnv(t *testing.T) {
	t.Setenv("VIGIL_RESERVED_NAMESPACES", " vigil, team-* ,,")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, []string{"vigil", "team-*"}, opts.Deploy.ReservedNamespaces)

	t.Setenv("VIGIL_RESERVED_NAMESPACES", "Team_A")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	opts.Deploy.EncryptionKey = make([]byte, 32)
	require.ErrorContains(t, opts.Deploy.Validate(), `VIGIL_RESERVED_NAMESPACES: "Team_A" is not a namespace name`)
}

// VIGIL_REPAIR_NAMESPACES lists where the repair identity may act besides
// the apps' namespaces; a reserved one (built in, Vigil's own
// VIGIL_NAMESPACE, or the operator's) is refused, naming the variable and
// why. Repair's guardrails get the same reserved namespaces.
func TestRepairNamespacesFromEnv(t *testing.T) {
	t.Setenv("VIGIL_REPAIR_NAMESPACES", "legacy, batch,")
	t.Setenv("VIGIL_NAMESPACE", "ops")
	t.Setenv("VIGIL_RESERVED_NAMESPACES", "team-*")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	opts.Deploy.EncryptionKey = make([]byte, 32)
	require.Equal(t, []string{"legacy", "batch"}, opts.Deploy.RepairNamespaces)
	require.Equal(t, "ops", opts.Deploy.Namespace)
	require.NoError(t, opts.Deploy.Validate())
	require.Equal(t, "ops", opts.Repair.Namespace)
	require.Equal(t, []string{"team-*"}, opts.Repair.ReservedNamespaces)
	require.NoError(t, opts.Repair.Validate())

	for bad, why := range map[string]string{
		"kube-system":  "namespace kube-system is the cluster's own (kube-*): Vigil never repairs there",
		"vigil-system": "namespace vigil-system is Vigil's own",
		"ops":          "namespace ops is the namespace Vigil runs in (VIGIL_NAMESPACE)",
		"team-a":       "namespace team-a is reserved by this Vigil's operator",
		"monitoring":   "namespace monitoring is trusted by every app's NetworkPolicy",
		"Bad_Name":     `"Bad_Name" is not a namespace name`,
	} {
		t.Setenv("VIGIL_REPAIR_NAMESPACES", "legacy,"+bad)
		opts, err = appOptions(&serviceFlags{}, nil, "")
		require.NoError(t, err)
		opts.Deploy.EncryptionKey = make([]byte, 32)
		require.ErrorContains(t, opts.Deploy.Validate(), "VIGIL_REPAIR_NAMESPACES: "+why, bad)
	}
	t.Setenv("VIGIL_NAMESPACE", "Ops")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Repair.Validate(), "VIGIL_NAMESPACE")
}

// The chat webhooks' secrets reach the gateway's options, which check
// them and name the variable.
func TestChatSecretsFromEnv(t *testing.T) {
	const tgSecret = "tg_secret-01_0123456789abcdefghij"
	t.Setenv("VIGIL_TELEGRAM_WEBHOOK_SECRET", tgSecret)
	t.Setenv("VIGIL_SLACK_SIGNING_SECRET", "8f742231b10e8888abcd99yyyzzz85a5")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, tgSecret, opts.Gateway.TelegramWebhookSecret)
	require.Equal(t, "8f742231b10e8888abcd99yyyzzz85a5", opts.Gateway.SlackSigningSecret)
	require.NoError(t, opts.Gateway.Validate())

	for _, bad := range []string{"has space", "dots.are.not.allowed", strings.Repeat("a", 257)} {
		t.Setenv("VIGIL_TELEGRAM_WEBHOOK_SECRET", bad)
		opts, err = appOptions(&serviceFlags{}, nil, "")
		require.NoError(t, err)
		require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_TELEGRAM_WEBHOOK_SECRET: must be 1 to 256 characters", bad)
	}
	// A secret that could be guessed is refused at start.
	t.Setenv("VIGIL_TELEGRAM_WEBHOOK_SECRET", "x")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_TELEGRAM_WEBHOOK_SECRET: is 1 characters, must be at least 32")
	// White space around a secret (a file's last newline) is not part of it.
	t.Setenv("VIGIL_TELEGRAM_WEBHOOK_SECRET", "")
	t.Setenv("VIGIL_SLACK_SIGNING_SECRET", " 8f742231b10e8888abcd99yyyzzz85a5\n")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "8f742231b10e8888abcd99yyyzzz85a5", opts.Gateway.SlackSigningSecret)
	require.NoError(t, opts.Gateway.Validate())
}

// VIGIL_CHAT_SNOOZE reaches the gateway (1h unset), which refuses longer
// than monitor snoozes (24h); the encryption key reaches it too, for the
// email action links.
func TestChatSnoozeFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, time.Hour, opts.Gateway.ChatSnooze)
	t.Setenv("VIGIL_CHAT_SNOOZE", "30m")
	t.Setenv("VIGIL_ENCRYPTION_KEY", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, 30*time.Minute, opts.Gateway.ChatSnooze)
	require.Equal(t, []byte("0123456789abcdef0123456789abcdef"), opts.Gateway.EncryptionKey)
	require.NoError(t, opts.Gateway.Validate())
	t.Setenv("VIGIL_CHAT_SNOOZE", "25h")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_CHAT_SNOOZE: must not be negative, and at most 24h0m0s")
}

// VIGIL_PROMETHEUS_URL and its token (or a file holding it) reach the
// analysis options, which check the URL and name the variable.
func TestPrometheusFromEnv(t *testing.T) {
	t.Setenv("VIGIL_PROMETHEUS_URL", "http://prometheus.monitoring:9090")
	tokenFile := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("s3cret\n"), 0o600))
	t.Setenv("VIGIL_PROMETHEUS_TOKEN_FILE", tokenFile)
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "http://prometheus.monitoring:9090", opts.Analysis.PrometheusURL)
	require.Equal(t, "s3cret", opts.Analysis.PrometheusToken)
	require.NoError(t, opts.Analysis.Validate())

	t.Setenv("VIGIL_PROMETHEUS_URL", "prometheus:9090")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Analysis.Validate(), `VIGIL_PROMETHEUS_URL: "prometheus:9090" is not an http(s) URL`)
}

// The bot's token reaches the gateway as well as notify, and the webhook
// URL chooses the gateway's way of receiving updates.
func TestTelegramUpdatesFromEnv(t *testing.T) {
	t.Setenv("VIGIL_TELEGRAM_BOT_TOKEN", "123456789:AAFakeTokenForVigilTests_0123456789")
	t.Setenv("VIGIL_TELEGRAM_API_URL", "http://127.0.0.1:8081")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "123456789:AAFakeTokenForVigilTests_0123456789", opts.Gateway.TelegramBotToken)
	require.Equal(t, "http://127.0.0.1:8081", opts.Gateway.TelegramAPIURL)
	require.Empty(t, opts.Gateway.TelegramWebhookURL, "polling by default")
	require.NoError(t, opts.Gateway.Validate())

	// A webhook without a secret: the gateway generates one.
	t.Setenv("VIGIL_TELEGRAM_WEBHOOK_URL", "https://vigil.example.com/api/v1/webhooks/telegram")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.NoError(t, opts.Gateway.Validate())
	t.Setenv("VIGIL_TELEGRAM_WEBHOOK_SECRET", "tg_secret-01_0123456789abcdefghij")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.NoError(t, opts.Gateway.Validate())

	t.Setenv("VIGIL_TELEGRAM_BOT_TOKEN", "not-a-token")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_TELEGRAM_BOT_TOKEN: not a bot token")
	require.NotContains(t, opts.Gateway.Validate().Error(), "not-a-token")
}

// VIGIL_NAMESPACE reaches the deploy service (a reserved app name);
// VIGIL_REST_MAX_BYTES the gateway, 1 MiB unless set.
func TestBoundsFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Empty(t, opts.Deploy.Namespace)
	require.EqualValues(t, 1<<20, opts.Gateway.RESTMaxBytes)

	t.Setenv("VIGIL_NAMESPACE", "platform")
	t.Setenv("VIGIL_REST_MAX_BYTES", "65536")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "platform", opts.Deploy.Namespace)
	require.EqualValues(t, 65536, opts.Gateway.RESTMaxBytes)

	t.Setenv("VIGIL_REST_MAX_BYTES", "-1")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_REST_MAX_BYTES")
	t.Setenv("VIGIL_REST_MAX_BYTES", "lots")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, "VIGIL_REST_MAX_BYTES")
}

// Slack's response_urls are on hooks.slack.com, unless the Web API is
// elsewhere (a stand-in), or VIGIL_SLACK_RESPONSE_URL_BASE says.
func TestSlackResponseURLBaseFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "https://hooks.slack.com/", opts.Gateway.SlackResponseURLBase)

	t.Setenv("VIGIL_SLACK_API_URL", "http://127.0.0.1:4000/api/")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "http://127.0.0.1:4000/", opts.Gateway.SlackResponseURLBase)

	t.Setenv("VIGIL_SLACK_RESPONSE_URL_BASE", "https://hooks.slack-gov.com/")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, "https://hooks.slack-gov.com/", opts.Gateway.SlackResponseURLBase)
}

// Login limits, key lifetimes and trusted proxies reach the gateway's
// options; a bad proxy entry names the variable.
func TestAccessLimitsFromEnv(t *testing.T) {
	t.Setenv("VIGIL_LOGIN_FAILURES_PER_USER", "3")
	t.Setenv("VIGIL_LOGIN_FAILURES_PER_ADDRESS", "50")
	t.Setenv("VIGIL_KEY_DEFAULT_TTL", "720h")
	t.Setenv("VIGIL_KEY_MAX_TTL", "2160h")
	t.Setenv("VIGIL_TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.7 ,fd00::/8")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	g := opts.Gateway
	require.Equal(t, 3, g.Login.UserFailures)
	require.Equal(t, 50, g.Login.AddressFailures)
	require.Equal(t, 720*time.Hour, g.KeyDefaultTTL)
	require.Equal(t, 2160*time.Hour, g.KeyMaxTTL)
	require.Equal(t, []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("fd00::/8")}, g.TrustedProxies)
	require.NoError(t, g.Validate())

	t.Setenv("VIGIL_KEY_DEFAULT_TTL", "4000h")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Gateway.Validate(), "VIGIL_KEY_DEFAULT_TTL: must not be longer than VIGIL_KEY_MAX_TTL")

	t.Setenv("VIGIL_TRUSTED_PROXIES", "10.0.0.0/8,load-balancer")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, `VIGIL_TRUSTED_PROXIES: "load-balancer" is not an address`)
}

// Deploy quiet holds for 5 minutes after a rollout unless
// VIGIL_DEPLOY_QUIET says otherwise; 0 turns it off, a negative or
// unreadable value is refused, naming the variable.
func TestDeployQuietFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, 5*time.Minute, opts.Monitor.DeployQuiet)

	t.Setenv("VIGIL_DEPLOY_QUIET", "0")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Zero(t, opts.Monitor.DeployQuiet)
	require.NoError(t, opts.Monitor.Validate())

	t.Setenv("VIGIL_DEPLOY_QUIET", "-1m")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.ErrorContains(t, opts.Monitor.Validate(), "VIGIL_DEPLOY_QUIET")
	t.Setenv("VIGIL_DEPLOY_QUIET", "soon")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, "VIGIL_DEPLOY_QUIET")
}

// VIGIL_FLAP_THRESHOLD and VIGIL_FLAP_WINDOW reach monitor: 4 cycles in
// 15 minutes unless set, 0 turns flapping detection off, a negative
// threshold or window is refused naming the variable.
func TestFlappingFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, 4, opts.Monitor.FlapThreshold)
	require.Equal(t, 15*time.Minute, opts.Monitor.FlapWindow)

	t.Setenv("VIGIL_FLAP_THRESHOLD", "0")
	t.Setenv("VIGIL_FLAP_WINDOW", "1h")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Negative(t, opts.Monitor.FlapThreshold, "off")
	require.Equal(t, time.Hour, opts.Monitor.FlapWindow)
	require.NoError(t, opts.Monitor.Validate())

	t.Setenv("VIGIL_FLAP_THRESHOLD", "-1")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, "VIGIL_FLAP_THRESHOLD: must not be negative")

	t.Setenv("VIGIL_FLAP_THRESHOLD", "3")
	t.Setenv("VIGIL_FLAP_WINDOW", "-5m")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.EqualError(t, opts.Monitor.Validate(), "VIGIL_FLAP_WINDOW: must not be negative")
}

// VIGIL_ANALYSIS_LANGUAGES gives teams their own analysis language over
// VIGIL_LANGUAGE; a pair that is not team=language, or a team twice, is
// refused naming the variable.
func TestAnalysisLanguagesFromEnv(t *testing.T) {
	o, err := llmOptions()
	require.NoError(t, err)
	require.Empty(t, o.Languages)

	t.Setenv("VIGIL_LANGUAGE", "en")
	t.Setenv("VIGIL_ANALYSIS_LANGUAGES", " payments=zh-TW, web = en ,")
	o, err = llmOptions()
	require.NoError(t, err)
	require.Equal(t, "en", o.Language)
	require.Equal(t, map[string]string{"payments": "zh-TW", "web": "en"}, o.Languages)

	for _, bad := range []string{"payments", "payments=", "=zh-TW", "payments=zh-TW,payments=en"} {
		t.Setenv("VIGIL_ANALYSIS_LANGUAGES", bad)
		_, err = llmOptions()
		require.ErrorContains(t, err, "VIGIL_ANALYSIS_LANGUAGES", bad)
	}
}

// VIGIL_STREAM_REPLICAS gives every stream copies in a JetStream cluster;
// out of 1 to 5 it is refused, naming the variable.
func TestStreamReplicasFromEnv(t *testing.T) {
	opts, err := streamOptions()
	require.NoError(t, err)
	require.Equal(t, 1, opts.Replicas)

	t.Setenv("VIGIL_STREAM_REPLICAS", "3")
	opts, err = streamOptions()
	require.NoError(t, err)
	require.Equal(t, 3, opts.Replicas)

	for _, bad := range []string{"0", "7", "three"} {
		t.Setenv("VIGIL_STREAM_REPLICAS", bad)
		_, err = streamOptions()
		require.ErrorContains(t, err, `VIGIL_STREAM_REPLICAS: "`+bad+`": want 1 to 5`)
	}
}
