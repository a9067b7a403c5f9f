package faketelegram

import (
	"strings"
	"unicode/utf8"
)

// MaxTextLength is the most Unicode code points a bot's message may hold
// after entity parsing, cleaning and trimming (tdlib's message_text_length_max,
// checked with utf8_length, so an emoji outside the BMP counts once even
// though it takes two UTF-16 code units).
const MaxTextLength = 4096

// ValidateText applies the rules sendMessage applies to text sent with
// parseMode ("", "HTML", "MarkdownV2" or "Markdown", in any case). It
// returns the text recipients see, or an error whose message is the
// description Telegram answers with, for example
// `Bad Request: can't parse entities: Unsupported start tag "br" at byte offset 0`.
// Tests can use it to check rendered templates without a server.
func ValidateText(text, parseMode string) (string, error) {
	plain, entities, err := parseText(text, parseMode)
	if err != nil {
		return "", err
	}
	return finishText(plain, entities)
}

// parseText does what the Bot API server does before it hands the text to
// tdlib: it refuses an empty text and parses entities.
func parseText(text, parseMode string) (string, []entity, error) {
	if text == "" {
		return "", nil, badRequest("message text is empty")
	}
	if !utf8.ValidString(text) {
		return "", nil, badRequest("strings must be encoded in UTF-8")
	}
	switch toLower(parseMode) {
	case "":
		return text, nil, nil
	case "html":
		plain, entities, err := parseHTML(text)
		if err != nil {
			return "", nil, badRequest("can't parse entities: " + err.Error())
		}
		return plain, entities, nil
	case "markdown", "markdownv2":
		// Accepted but not parsed: Vigil sends HTML.
		return text, nil, nil
	default:
		return "", nil, badRequest("unsupported parse_mode")
	}
}

// finishText is tdlib's fix_formatted_text followed by the length check
// for bots: control characters become spaces, '\r', U+2028-U+202E and three
// combining marks are dropped, trailing spaces and newlines are trimmed, and
// so are leading ones that come before the first entity.
func finishText(text string, entities []entity) (string, error) {
	// newOffset maps a UTF-16 offset in text to one in the cleaned text.
	newOffset := make([]int, 0, len(text)+1)
	var b strings.Builder
	b.Grow(len(text))
	cleaned := 0
	for _, r := range text {
		width := 1
		if r > 0xffff {
			width = 2
		}
		for range width {
			newOffset = append(newOffset, cleaned)
		}
		switch {
		case r == '\r', r >= 0x2028 && r <= 0x202e, r == 0x0333, r == 0x033f, r == 0x030a:
			continue
		case r < ' ' && r != '\n':
			r = ' '
		}
		b.WriteRune(r)
		cleaned += width
	}
	newOffset = append(newOffset, cleaned)
	result := b.String()

	firstEntity := -1
	for _, e := range entities {
		start, end := newOffset[e.offset], newOffset[e.offset+e.length]
		if end > start && (firstEntity < 0 || start < firstEntity) {
			firstEntity = start
		}
	}

	trimmed := strings.TrimRight(result, " \n")
	if trimmed == "" {
		return "", badRequest("text must be non-empty")
	}
	// Leading blanks are ASCII, so byte and UTF-16 offsets agree while
	// skipping them; trimmed ends with a non-blank, so lead stays in range.
	lead := 0
	for (firstEntity < 0 || lead < firstEntity) && (trimmed[lead] == ' ' || trimmed[lead] == '\n') {
		lead++
	}
	trimmed = trimmed[lead:]

	if utf8.RuneCountInString(trimmed) > MaxTextLength {
		return "", badRequest("message is too long")
	}
	return trimmed, nil
}

// wireError is an error whose message is a description as Telegram words it.
type wireError string

func (e wireError) Error() string { return string(e) }

func badRequest(description string) error { return wireError("Bad Request: " + description) }
