package slack_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/slack"
)

func TestEscape(t *testing.T) {
	t.Parallel()
	require.Equal(t, "&lt;!channel&gt; &amp;&amp; &lt;@U123&gt; *b* \uFFFD", slack.Escape("<!channel> && <@U123> *b* \xff"))
}

func TestTruncate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		s    string
		n    int
		want string
	}{
		{s: "short", n: 5, want: "short"},
		{s: "abcdef", n: 5, want: "abcd…"},
		{s: "abc&amp;def", n: 6, want: "abc…"},
		{s: "abc&amp;def", n: 10, want: "abc&amp;d…"},
		{s: "abc&amp;def", n: 8, want: "abc…"},
		{s: "ab <https://x.test|link> cd", n: 12, want: "ab …"},
		{s: "ab <https://x.test?a&amp;b|l> cd", n: 24, want: "ab …"},
		{s: "ab <https://x.test|l> &lt;", n: 25, want: "ab <https://x.test|l> …"},
		{s: "ünïcødé", n: 4, want: "ünï…"},
		{s: "x", n: 0, want: ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, slack.Truncate(tt.s, tt.n), "%q to %d", tt.s, tt.n)
	}
}

// Whatever the input, the cut text fits, is UTF-8, and ends no entity
// halfway.
func FuzzTruncate(f *testing.F) {
	f.Add("a &amp; b", 4)
	f.Add("<x|y> &lt;", 7)
	f.Add(strings.Repeat("&gt;", 10), 13)
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 1000 {
			return
		}
		got := slack.Truncate(slack.Escape(s), n)
		require.LessOrEqual(t, utf8.RuneCountInString(got), n)
		require.True(t, utf8.ValidString(got))
		if i := strings.LastIndex(got, "&"); i >= 0 {
			require.Contains(t, got[i:], ";")
		}
	})
}
