package faketelegram

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// Most cases come from tdlib's own test of parse_html (test/message_entities.cpp),
// adjusted where tdlib has since changed: attributes without a value are
// now allowed, and the missing end tag is quoted.
func TestParseHTML(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{name: "empty", in: "", want: ""},
		{name: "plain", in: "➡️ ➡️", want: "➡️ ➡️"},
		{name: "known references", in: "&lt;&gt;&amp;&quot;&laquo;&raquo;&#12345678;", want: "<>&\"&laquo;&raquo;&#12345678;"},
		{name: "numeric references", in: "&#65;&#x42;&#X43;&#x1F600;", want: "AB&#X43;😀"},
		{name: "semicolon optional", in: "🏟 🏟<i>🏟 &lt🏟</i>", want: "🏟 🏟🏟 <🏟"},
		{name: "bare ampersand", in: "a & b &amp c &ltx", want: "a & b & c &ltx"},
		{name: "nested", in: "🏟 🏟<i>🏟 &gt;<b aba   =   caba>&lt🏟</b></i>", want: "🏟 🏟🏟 ><🏟"},
		{name: "strong em ins strike del", in: "<strong>a</strong><em>b</em><ins>c</ins><strike>d</strike><del>e</del>", want: "abcde"},
		{name: "unquoted attribute", in: "🏟 🏟&lt;<i    aba  =  190azAz-.   >a</i>", want: "🏟 🏟<a"},
		{name: "quoted attribute", in: "🏟 🏟&lt;<i    aba  =  \"&lt;&gt;&quot;\">a</i>", want: "🏟 🏟<a"},
		{name: "single-quoted attribute", in: "🏟 🏟&lt;<i    aba  =  '&lt;&gt;&quot;'>a</i>", want: "🏟 🏟<a"},
		{name: "attribute without value", in: "🏟 🏟&lt;<i    aba>a</i>", want: "🏟 🏟<a"},
		{name: "short end tag", in: "🏟 🏟&lt;<i>🏟 🏟&lt;</>", want: "🏟 🏟<🏟 🏟<"},
		{name: "end tag with spaces", in: "🏟 🏟&lt;<i>a</i   >", want: "🏟 🏟<a"},
		{name: "empty element", in: "🏟 🏟&lt;<b></b>", want: "🏟 🏟<"},
		{name: "gt inside quoted href", in: `<a href="https://x.test/?a>b">link</a>`, want: "link"},
		{name: "link without href", in: "<a>telegram.org</a>", want: "telegram.org"},
		{name: "pre code language", in: `<pre><code class="language-go">x := 1</code></pre>`, want: "x := 1"},
		{name: "spoiler span", in: `<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>`, want: "st"},
		{name: "spoiler class is a name token", in: `<span class=TG-SPOILER>s</span>`, want: "s"},
		{name: "expandable blockquote", in: "<blockquote expandable>q</blockquote>", want: "q"},
		{name: "custom emoji", in: `<tg-emoji emoji-id="5368324170671202286">👍</tg-emoji>`, want: "👍"},
		{name: "uppercase tags", in: "<B>a</b><I>b</I>", want: "ab"},
		{name: "lone gt", in: "a > b", want: "a > b"},

		{name: "invalid surrogate decimal", in: "&#57311;", wantErr: "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units"},
		{name: "invalid surrogate hex", in: "&#xDFDF", wantErr: "Text contains invalid Unicode characters after decoding HTML entities, check for unmatched surrogate code units"},
		{name: "unclosed start tag", in: "🏟 🏟&lt;<abacaba", wantErr: "Unclosed start tag at byte offset 13"},
		{name: "unsupported tag with attribute", in: "🏟 🏟&lt;<abac aba>", wantErr: `Unsupported start tag "abac" at byte offset 13`},
		{name: "unsupported tag", in: "<br>", wantErr: `Unsupported start tag "br" at byte offset 0`},
		{name: "unescaped less-than", in: "a < b", wantErr: `Unsupported start tag "" at byte offset 2`},
		{name: "email in angle brackets", in: "From <Kahn@Inbox.ru>", wantErr: `Unsupported start tag "kahn@inbox.ru" at byte offset 5`},
		{name: "empty attribute name", in: "🏟 🏟&lt;<i   =aba>", wantErr: `Empty attribute name in the tag "i" at byte offset 13`},
		{name: "self-closing", in: "<b/>", wantErr: `Unsupported start tag "b/" at byte offset 0`},
		{name: "self-closing with space", in: "<b />", wantErr: `Empty attribute name in the tag "b" at byte offset 0`},
		{name: "attribute value missing", in: "🏟 🏟&lt;<i    aba  =  ", wantErr: `Unclosed start tag "i" at byte offset 13`},
		{name: "attribute name at end", in: "<a href", wantErr: `Unclosed start tag "a" at byte offset 0`},
		{name: "bad name token", in: "🏟 🏟&lt;<i    aba  =  190azAz-.,", wantErr: "Unexpected end of name token at byte offset 27"},
		{name: "name token before slash", in: "<a href=x/>y</a>", wantErr: "Unexpected end of name token at byte offset 8"},
		{name: "unterminated quote", in: "🏟 🏟&lt;<i    aba  =  \"&lt;&gt;&quot;>", wantErr: "Unclosed start tag at byte offset 13"},
		{name: "quoted value at end", in: `<a href="x"`, wantErr: "Unclosed start tag at byte offset 0"},
		{name: "span without class", in: "<span>x</span>", wantErr: `Tag "span" must have class "tg-spoiler" at byte offset 0`},
		{name: "stray end tag", in: "🏟 🏟&lt;</", wantErr: "Unexpected end tag at byte offset 13"},
		{name: "stray end tag after element", in: "🏟 🏟&lt;<b></b></", wantErr: "Unexpected end tag at byte offset 20"},
		{name: "unclosed end tag", in: "🏟 🏟&lt;<i>a</i   ", wantErr: "Unclosed end tag at byte offset 17"},
		{name: "unmatched end tag", in: "🏟 🏟&lt;<i>a</em   >", wantErr: `Unmatched end tag at byte offset 17, expected "</i>", found "</em>"`},
		{name: "crossed tags", in: "<b><i>x</b></i>", wantErr: `Unmatched end tag at byte offset 7, expected "</i>", found "</b>"`},
		{name: "missing end tag", in: "<b>x", wantErr: `Can't find end tag corresponding to start tag "b"`},
		{name: "tag cut in half", in: "<b>bold</b", wantErr: "Unclosed end tag at byte offset 7"},
		{name: "bad custom emoji id", in: `<tg-emoji emoji-id="x">y</tg-emoji>`, wantErr: "Invalid custom emoji identifier specified"},
		{name: "non-canonical custom emoji id", in: `<tg-emoji emoji-id="+5">y</tg-emoji>`, wantErr: "Invalid custom emoji identifier specified"},
		{name: "NUL ends a tag", in: "<b\x00>x</b>", wantErr: "Unclosed start tag at byte offset 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, _, err := parseHTML(tt.in)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestParseHTMLEntities(t *testing.T) {
	t.Parallel()
	// Offsets are UTF-16 code units: each 🏟 takes two, each ➡️ two (arrow and variation selector).
	_, entities, err := parseHTML("➡️ ➡️<i>➡️ ➡️</i><b>🏟</b><u></u>")
	require.NoError(t, err)
	require.Equal(t, []entity{{tag: "i", offset: 5, length: 5}, {tag: "b", offset: 10, length: 2}}, entities)
}

func FuzzValidateText(f *testing.F) {
	for _, seed := range []string{
		"<b>bold</b> &amp; <i>italic</i>", "<a href=\"https://x.test\">x</a>", "&#x1F600;", "a < b",
		"<pre><code class=\"language-go\">x</code></pre>", "\r\n \t", "<b>\u2028</b>x", "&#xD800;",
		`<blockquote expandable>q</blockquote>`, "<tg-emoji emoji-id=1>e</tg-emoji>",
	} {
		f.Add(seed, "HTML")
	}
	f.Add("plain", "")
	f.Fuzz(func(t *testing.T, text, parseMode string) {
		plain, err := ValidateText(text, parseMode)
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "Bad Request: "), err.Error())
			return
		}
		require.True(t, utf8.ValidString(plain))
		require.NotEmpty(t, plain)
		require.LessOrEqual(t, utf8.RuneCountInString(plain), MaxTextLength)
		require.False(t, strings.HasSuffix(plain, " ") || strings.HasSuffix(plain, "\n"))
		require.NotContains(t, plain, "\r")
		if strings.EqualFold(parseMode, "html") {
			// Parsing never lengthens the text.
			require.LessOrEqual(t, len(plain), len(text))
		}
	})
}
