package faketelegram

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateText(t *testing.T) {
	t.Parallel()
	emoji := "😀" // one code point, two UTF-16 code units
	tests := []struct {
		name      string
		text      string
		parseMode string
		want      string
		wantErr   string
	}{
		{name: "plain", text: "disk full on db-1", want: "disk full on db-1"},
		{name: "html", text: "<b>FIRING</b> disk &lt;5%", parseMode: "HTML", want: "FIRING disk <5%"},
		{name: "parse mode is case-insensitive", text: "<b>x</b>", parseMode: "html", want: "x"},
		{name: "markdown is not parsed", text: "*x*", parseMode: "MarkdownV2", want: "*x*"},
		{name: "legacy markdown", text: "*x*", parseMode: "Markdown", want: "*x*"},
		{name: "plain mode keeps markup", text: "<b>x</b>", want: "<b>x</b>"},
		{name: "unsupported parse mode", text: "x", parseMode: "Markdown2", wantErr: "Bad Request: unsupported parse_mode"},
		{name: "null parse mode", text: "x", parseMode: "null", wantErr: "Bad Request: unsupported parse_mode"},
		{name: "empty", text: "", wantErr: "Bad Request: message text is empty"},
		{name: "blank", text: " \n \r\n", wantErr: "Bad Request: text must be non-empty"},
		{name: "empty after parsing", text: "<b></b>", parseMode: "HTML", wantErr: "Bad Request: text must be non-empty"},
		{name: "not UTF-8", text: "a\xffb", wantErr: "Bad Request: strings must be encoded in UTF-8"},
		{name: "parse error", text: "1 < 2", parseMode: "HTML", wantErr: `Bad Request: can't parse entities: Unsupported start tag "" at byte offset 2`},
		{name: "trailing blanks trimmed", text: "x \n\n ", want: "x"},
		{name: "leading blanks trimmed", text: "\n  x", want: "x"},
		{name: "leading blanks before an entity trimmed", text: "  <b>x</b>", parseMode: "HTML", want: "x"},
		{name: "leading blanks inside an entity kept", text: "<b>  x</b>", parseMode: "HTML", want: "  x"},
		{name: "carriage returns dropped", text: "a\r\nb", want: "a\nb"},
		{name: "control characters become spaces", text: "a\tb\x01c", want: "a b c"},
		{name: "line separators dropped", text: "a\u2028b\u202ec", want: "abc"},
		{name: "at the limit", text: strings.Repeat("a", MaxTextLength), want: strings.Repeat("a", MaxTextLength)},
		{name: "over the limit", text: strings.Repeat("a", MaxTextLength+1), wantErr: "Bad Request: message is too long"},
		{name: "astral characters count once", text: strings.Repeat(emoji, MaxTextLength), want: strings.Repeat(emoji, MaxTextLength)},
		{name: "astral characters over the limit", text: strings.Repeat(emoji, MaxTextLength+1), wantErr: "Bad Request: message is too long"},
		{name: "tags do not count", text: "<b>" + strings.Repeat("a", MaxTextLength) + "</b>", parseMode: "HTML", want: strings.Repeat("a", MaxTextLength)},
		{name: "references count once", text: strings.Repeat("&amp;", MaxTextLength), parseMode: "HTML", want: strings.Repeat("&", MaxTextLength)},
		{name: "trimmed blanks do not count", text: strings.Repeat("a", MaxTextLength) + "   \n", want: strings.Repeat("a", MaxTextLength)},
		{name: "dropped characters do not count", text: strings.Repeat("a\r", MaxTextLength), want: strings.Repeat("a", MaxTextLength)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ValidateText(tt.text, tt.parseMode)
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}
