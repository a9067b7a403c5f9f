package telegram_test

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/telegram"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
)

func TestEscapeHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want string
	}{
		{name: "empty", in: "", want: ""},
		{name: "plain", in: "disk usage 93% on db-1", want: "disk usage 93% on db-1"},
		{name: "markup characters", in: `<b>"x" & 'y'</b>`, want: "&lt;b&gt;&quot;x&quot; &amp; 'y'&lt;/b&gt;"},
		{name: "existing references are escaped again", in: "&amp; &#65;", want: "&amp;amp; &amp;#65;"},
		{name: "unicode kept", in: "🔥 Ошибка — 错误", want: "🔥 Ошибка — 错误"},
		{name: "invalid UTF-8 replaced", in: "a\xffb", want: "a\uFFFDb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := telegram.EscapeHTML(tt.in)
			require.Equal(t, tt.want, got)
			_, err := faketelegram.ValidateText("x"+got, telegram.ParseModeHTML)
			require.NoError(t, err)
		})
	}
}

func TestEscapeHTMLInAttribute(t *testing.T) {
	t.Parallel()
	link := `https://grafana.test/d?var="a"&to=<now>`
	msg := `<a href="` + telegram.EscapeHTML(link) + `">dashboard</a>`
	plain, err := faketelegram.ValidateText(msg, telegram.ParseModeHTML)
	require.NoError(t, err)
	require.Equal(t, "dashboard", plain)
}

func TestTruncateHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		in    string
		limit int
		want  string
	}{
		{name: "fits", in: "<b>abcd</b>", limit: 4, want: "<b>abcd</b>"},
		{name: "plain cut", in: "abcdef", limit: 4, want: "abc…"},
		{name: "open tag closed", in: "<b>abcdef</b>", limit: 4, want: "<b>abc…</b>"},
		{name: "nested tags closed", in: `<a href="https://x.test/?a>b"><i>abcdef</i></a>`, limit: 3, want: `<a href="https://x.test/?a>b"><i>ab…</i></a>`},
		{name: "code block closed", in: `<pre><code class="language-go">abcdef</code></pre>`, limit: 3, want: `<pre><code class="language-go">ab…</code></pre>`},
		{name: "reference kept whole", in: "&amp;&lt;&#x1F600;&gt;", limit: 3, want: "&amp;&lt;…"},
		{name: "astral character counts once", in: "😀😀😀😀", limit: 3, want: "😀😀…"},
		{name: "tags do not count", in: "<b>ab</b><i>cd</i>", limit: 4, want: "<b>ab</b><i>cd</i>"},
		{name: "trailing blanks do not count", in: "abcd \n \n", limit: 4, want: "abcd \n \n"},
		{name: "carriage returns do not count", in: "a\r\nb\r\nc", limit: 5, want: "a\r\nb\r\nc"},
		{name: "cut after carriage return", in: "a\r\nb\r\nc", limit: 4, want: "a\r\nb\r…"},
		{name: "cut after a start tag", in: "x<b>yz</b>", limit: 2, want: "x<b>…</b>"},
		{name: "short end tag", in: "<b>ab</>cd", limit: 3, want: "<b>ab</>…"},
		{name: "limit of one", in: "abc", limit: 1, want: "…"},
		{name: "empty", in: "", limit: 1, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := telegram.TruncateHTML(tt.in, tt.limit)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestTruncateHTMLErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		limit   int
		wantErr string
	}{
		{name: "limit below one", in: "abc", limit: 0, wantErr: "telegram: truncate HTML to 0 characters: want at least 1"},
		{name: "unclosed tag", in: "<b>x", limit: 10, wantErr: `telegram: truncate HTML: can't find end tag corresponding to start tag "b"`},
		{name: "unescaped less-than", in: "1 < 2", limit: 10, wantErr: `telegram: truncate HTML: unsupported start tag "" at byte offset 2`},
		{name: "crossed tags", in: "<b><i>x</b></i>", limit: 10, wantErr: `telegram: truncate HTML: unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{name: "not UTF-8", in: "\xff", limit: 10, wantErr: "telegram: truncate HTML: not UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := telegram.TruncateHTML(tt.in, tt.limit)
			require.EqualError(t, err, tt.wantErr)
		})
	}
}

// A long alert is cut to exactly the limit and Telegram accepts it.
func TestTruncateHTMLToMaxMessageLength(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
	}{
		{name: "ascii", body: strings.Repeat("log line <with> & \"quotes\"\n", 500)},
		{name: "emoji", body: strings.Repeat("🔥🚨 ", 3000)},
		{name: "cyrillic", body: strings.Repeat("Диск заполнен на 93%. ", 500)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			msg := "<b>FIRING</b> DiskFull\n<pre>" + telegram.EscapeHTML(tt.body) + "</pre>"
			out, err := telegram.TruncateHTML(msg, telegram.MaxMessageLength)
			require.NoError(t, err)
			require.True(t, strings.HasSuffix(out, "…</pre>"), out[len(out)-20:])
			plain, err := faketelegram.ValidateText(out, telegram.ParseModeHTML)
			require.NoError(t, err)
			require.Equal(t, telegram.MaxMessageLength, utf8.RuneCountInString(plain))
		})
	}
}

// telegramAlters reports whether Telegram would change s beyond parsing
// it: drop or replace characters, or trim it.
func telegramAlters(s string) bool {
	for _, r := range s {
		if r < ' ' || r == 0x7f || (r >= 0x2028 && r <= 0x202e) || r == 0x0333 || r == 0x033f || r == 0x030a {
			return true
		}
	}
	return !utf8.ValidString(s)
}

func FuzzEscapeHTML(f *testing.F) {
	for _, seed := range []string{"", "a < b && c > d", `"quoted"`, "&amp;", "<b>not a tag</b>", "🔥", "\xff\xfe", "&#xD800;", strings.Repeat("&", 5000)} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		escaped := telegram.EscapeHTML(s)
		msg, err := telegram.TruncateHTML("<b>"+escaped+"</b>.", telegram.MaxMessageLength)
		require.NoError(t, err)
		plain, err := faketelegram.ValidateText(msg, telegram.ParseModeHTML)
		require.NoError(t, err)
		require.LessOrEqual(t, utf8.RuneCountInString(plain), telegram.MaxMessageLength)
		if msg == "<b>"+escaped+"</b>." && !telegramAlters(s) {
			require.Equal(t, s+".", plain, "the text round-trips")
		}
	})
}

// FuzzTruncateHTML checks TruncateHTML against the fake's port of
// Telegram's parser: both refuse the same input, and what TruncateHTML
// returns is accepted and no longer than the limit.
func FuzzTruncateHTML(f *testing.F) {
	for _, seed := range []string{
		"<b>bold</b> <i>it</i>", `<a href="https://x.test/?q=1&amp;r=<2>">link</a> tail`, "&lt;&#128512;&gt;",
		"<pre><code class=\"language-go\">x := 1</code></pre>", "a\r\nb", "<b>x", "1 < 2", "<tg-emoji emoji-id=5>e</tg-emoji>",
		"<blockquote expandable>q</blockquote>", `<span class="tg-spoiler">s</span>`, "<b>ab</>cd", "  <i> x </i>  ",
	} {
		f.Add(seed, 5)
	}
	f.Fuzz(func(t *testing.T, s string, limit int) {
		if limit < 0 {
			limit = -limit
		}
		limit = 1 + limit%(2*telegram.MaxMessageLength)

		_, telegramErr := faketelegram.ValidateText(s, telegram.ParseModeHTML)
		refused := telegramErr != nil && (strings.Contains(telegramErr.Error(), "can't parse entities") ||
			strings.Contains(telegramErr.Error(), "UTF-8"))

		out, err := telegram.TruncateHTML(s, limit)
		if refused {
			require.Error(t, err, "Telegram refuses it: %v", telegramErr)
			return
		}
		require.NoError(t, err, "Telegram accepts it (%v)", telegramErr)

		plain, err := faketelegram.ValidateText(out, telegram.ParseModeHTML)
		if err != nil {
			// Only a text that was not cut can fail now: because it is blank,
			// or too long for Telegram but not for a limit above Telegram's.
			require.Equal(t, s, out, "%v", err)
			switch err.Error() {
			case "Bad Request: message text is empty", "Bad Request: text must be non-empty":
			case "Bad Request: message is too long":
				require.Greater(t, limit, telegram.MaxMessageLength)
			default:
				require.Fail(t, "unexpected refusal", "%v", err)
			}
			return
		}
		require.LessOrEqual(t, utf8.RuneCountInString(plain), limit)
	})
}
