package chat_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
)

func TestLinkCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text, code string
		ok         bool
	}{
		{"/link ABCD2345", "ABCD2345", true},
		{"  /link   abcd-2345 ", "abcd-2345", true},
		{"/start ABCD2345", "ABCD2345", true},
		{"/link@VigilBot ABCD2345", "ABCD2345", true},
		{"/link", "", true},
		{"/start", "", true},
		{"/linkABCD2345", "", false},
		{"link ABCD2345", "", false},
		{"please /link ABCD2345", "", false},
		{"", "", false},
	} {
		code, ok := chat.LinkCommand(tt.text)
		require.Equal(t, tt.ok, ok, tt.text)
		require.Equal(t, tt.code, code, tt.text)
	}
}

// FuzzLinkCommand: whatever a chat sends, only a message that starts with
// the verb is a command, and its code has no surrounding space.
func FuzzLinkCommand(f *testing.F) {
	for _, s := range []string{"/link ABCD2345", "/start@bot x", "hello", "/link\u00a0x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		code, ok := chat.LinkCommand(text)
		trimmed := strings.TrimSpace(text)
		if ok {
			require.True(t, strings.HasPrefix(trimmed, "/link") || strings.HasPrefix(trimmed, "/start"), text)
		} else {
			require.Empty(t, code)
		}
		require.Equal(t, strings.TrimSpace(code), code)
	})
}
