package telegram_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

// Telegram links the messages of supergroups and channels, by id or by a
// public one's username; private chats and basic groups have none.
func TestLink(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ chat, id, want string }{
		{"-1001234567890", "42", "https://t.me/c/1234567890/42"},
		{"@vigil_alerts", "42", "https://t.me/vigil_alerts/42"},
		{"123456789", "42", ""},       // a private chat
		{"-987654321", "42", ""},      // a basic group
		{"-1001234567890", "x42", ""}, // not a message id
		{"-100", "42", ""},
	} {
		ep, err := telegram.Options{BotToken: "123:token", ChatID: tc.chat}.Open(channel.Deps{Logger: testkit.Logger(t)})
		require.NoError(t, err)
		l, ok := ep.Channel.(channel.Linker)
		require.True(t, ok)
		assert.Equal(t, tc.want, l.Link(context.Background(), tc.id), "chat %s, message %s", tc.chat, tc.id)
	}
}
