package slack

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestLinkCommand(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		text, code string
		ok         bool
	}{
		{"link ABCD2345", "ABCD2345", true},
		{"  Link   abcd-2345 ", "abcd-2345", true},
		{"link", "", true},
		{"linkABCD2345", "", false},
		{"/link ABCD2345", "", false},
		{"approve 42", "", false},
		{"", "", false},
	} {
		code, ok := linkCommand(tt.text)
		require.Equal(t, tt.ok, ok, tt.text)
		require.Equal(t, tt.code, code, tt.text)
	}
}

// FuzzLinkCommand: whatever follows /vigil, only "link" is a verb, and its
// code has no surrounding space.
func FuzzLinkCommand(f *testing.F) {
	for _, s := range []string{"link ABCD2345", "LINK x", "approve", "link\u00a0x", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		code, ok := linkCommand(text)
		if ok {
			require.True(t, strings.HasPrefix(strings.ToLower(strings.TrimSpace(text)), "link"), text)
		} else {
			require.Empty(t, code)
		}
		require.Equal(t, strings.TrimSpace(code), code)
	})
}
