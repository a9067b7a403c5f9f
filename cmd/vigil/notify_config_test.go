package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/notify/channel/slack"
)

// Slack's bot token (or a file holding it), channel and API URL reach
// notify's options, which check them and name the variable.
func TestSlackNotifyFromEnv(t *testing.T) {
	tokenFile := filepath.Join(t.TempDir(), "slack-token")
	require.NoError(t, os.WriteFile(tokenFile, []byte("xoxb-1-2-abc\n"), 0o600))
	t.Setenv("VIGIL_SLACK_BOT_TOKEN_FILE", tokenFile)
	t.Setenv("VIGIL_SLACK_CHANNEL", "C0ALERTS1")
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	sl, ok := notifyChannel[slack.Options](opts.Notify)
	require.True(t, ok)
	require.Equal(t, "xoxb-1-2-abc", sl.BotToken)
	require.Equal(t, "C0ALERTS1", sl.Channel)
	require.Equal(t, "https://slack.com/api", sl.APIURL)
	require.NoError(t, opts.Notify.Validate())

	t.Setenv("VIGIL_SLACK_API_URL", "http://127.0.0.1:9999/api")
	t.Setenv("VIGIL_SLACK_CHANNEL", "#alerts")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	sl, _ = notifyChannel[slack.Options](opts.Notify)
	require.Equal(t, "http://127.0.0.1:9999/api", sl.APIURL)
	require.ErrorContains(t, opts.Notify.Validate(), `VIGIL_SLACK_CHANNEL: "#alerts" is not a channel id`)

	t.Setenv("VIGIL_SLACK_BOT_TOKEN", "xoxb-1-2-abc")
	_, err = appOptions(&serviceFlags{}, nil, "")
	require.ErrorContains(t, err, "VIGIL_SLACK_BOT_TOKEN and VIGIL_SLACK_BOT_TOKEN_FILE: set one of them, not both")
}
