package line

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// The Messaging API's limits on a push. Lengths are counted as LINE
// counts them, in UTF-16 code units (an emoji outside the BMP is two).
const (
	// MaxMessages is the most messages one push carries.
	MaxMessages = 5
	// MaxTextLength is the most characters of a text message.
	MaxTextLength = 5000
	// MaxAltTextLength is the most characters of a Flex message's
	// alternative text (notifications, the chat list). LINE has since
	// allowed 1,500; 400, its older and template messages' limit, is what
	// every LINE version shows whole.
	MaxAltTextLength = 400
	// MaxBubbleSize is the most bytes of a bubble as JSON.
	MaxBubbleSize = 30 << 10
)

const ellipsis = "…"

// Message is one message of a push: text (Text) or Flex (AltText and
// Contents). Build them with NewText and NewFlex, which cut to LINE's
// limits.
type Message struct {
	Type     string  `json:"type"`
	Text     string  `json:"text,omitempty"`
	AltText  string  `json:"altText,omitempty"`
	Contents *Bubble `json:"contents,omitempty"`
}

// NewText is a text message of s, cut to MaxTextLength.
func NewText(s string) Message { return Message{Type: "text", Text: Truncate(s, MaxTextLength)} }

// NewFlex is a Flex message of one bubble, shown as altText where Flex is
// not (notifications, the chat list); altText is cut to
// MaxAltTextLength.
func NewFlex(altText string, b Bubble) Message {
	b.Type = "bubble"
	return Message{Type: "flex", AltText: Truncate(altText, MaxAltTextLength), Contents: &b}
}

// Bubble is a Flex message's one card: a header, a body and a footer,
// each a box.
type Bubble struct {
	Type   string `json:"type"`
	Header *Box   `json:"header,omitempty"`
	Body   *Box   `json:"body,omitempty"`
	Footer *Box   `json:"footer,omitempty"`
}

// Box lays out components, vertically or side by side; a Box is itself
// a component of its parent.
type Box = Component

// Component is a Flex box, text or separator; only the fields of its
// type are set. Build them with VBox, HBox, Text and Separator.
type Component struct {
	Type            string      `json:"type"`
	Layout          string      `json:"layout,omitempty"`
	Contents        []Component `json:"contents,omitempty"`
	Spacing         string      `json:"spacing,omitempty"`
	BackgroundColor string      `json:"backgroundColor,omitempty"`
	Text            string      `json:"text,omitempty"`
	Wrap            bool        `json:"wrap,omitempty"`
	Weight          string      `json:"weight,omitempty"`
	Size            string      `json:"size,omitempty"`
	Color           string      `json:"color,omitempty"`
	Flex            *int        `json:"flex,omitempty"`
	Margin          string      `json:"margin,omitempty"`
	Style           string      `json:"style,omitempty"`
	Height          string      `json:"height,omitempty"`
	Action          *Action     `json:"action,omitempty"`
}

// Action is what a button does: a postback, which LINE sends back to the
// bot's webhook as a postback event carrying Data, on behalf of whoever
// pressed it.
type Action struct {
	Type  string `json:"type"`
	Label string `json:"label"`
	Data  string `json:"data"`
	// DisplayText is said in the chat as the presser when pressed.
	DisplayText string `json:"displayText,omitempty"`
}

// LINE's limits on a postback action.
const (
	// MaxPostbackData is the most characters of a postback's data.
	MaxPostbackData = 300
	// MaxActionLabel is the most characters of a button's label.
	MaxActionLabel = 40
)

// Button is a button that posts data back to the bot's webhook, labelled
// label; style is "primary", "secondary" or "link". Data longer than
// MaxPostbackData is refused by LINE: Button panics on it, as it is
// always Vigil's own.
func Button(label, data, style string) Component {
	if Length(data) > MaxPostbackData {
		panic(fmt.Sprintf("line: postback data of %d characters, at most %d", Length(data), MaxPostbackData))
	}
	return Component{
		Type: "button", Style: style, Height: "sm",
		Action: &Action{Type: "postback", Label: Truncate(label, MaxActionLabel), Data: data, DisplayText: Truncate(label, MaxActionLabel)},
	}
}

// maxComponentText bounds one text component: LINE sets no limit of its
// own but the bubble's 30 KB, which a few long fields would take.
const maxComponentText = 2000

// VBox is a box laying cs out vertically.
func VBox(cs ...Component) *Box {
	return &Box{Type: "box", Layout: "vertical", Contents: cs, Spacing: "sm"}
}

// HBox is a box laying cs out side by side.
func HBox(cs ...Component) *Box {
	return &Box{Type: "box", Layout: "horizontal", Contents: cs, Spacing: "sm"}
}

// Text is a wrapping text component of s, cut to 2,000 characters; an
// empty s is a space, as LINE refuses an empty text.
func Text(s string) Component {
	if s == "" {
		s = " "
	}
	return Component{Type: "text", Text: Truncate(s, maxComponentText), Wrap: true}
}

// Separator is a line between components.
func Separator() Component { return Component{Type: "separator", Margin: "md"} }

// Truncate cuts s to at most n UTF-16 code units, ending it with "…"
// when cut; invalid UTF-8 is replaced, never cut inside a character.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if Length(s) <= n {
		return s
	}
	if n < 1 {
		return ""
	}
	used, end := 0, 0
	for i, r := range s {
		w := utf16.RuneLen(r)
		if used+w > n-1 { // room for the ellipsis
			end = i
			break
		}
		used += w
		end = i + utf8.RuneLen(r)
	}
	return s[:end] + ellipsis
}

// Length is s's length as LINE counts it, in UTF-16 code units.
func Length(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func (m Message) validate() error {
	switch m.Type {
	case "text":
		if m.Text == "" {
			return fmt.Errorf("%w: text: missing", ErrInvalidMessage)
		}
		if Length(m.Text) > MaxTextLength {
			return fmt.Errorf("%w: text: %d characters, at most %d", ErrInvalidMessage, Length(m.Text), MaxTextLength)
		}
	case "flex":
		if m.AltText == "" || Length(m.AltText) > MaxAltTextLength {
			return fmt.Errorf("%w: altText: want 1 to %d characters", ErrInvalidMessage, MaxAltTextLength)
		}
		if m.Contents == nil || m.Contents.Type != "bubble" {
			return fmt.Errorf("%w: contents: want a bubble", ErrInvalidMessage)
		}
		b, err := json.Marshal(m.Contents)
		if err != nil {
			return fmt.Errorf("%w: contents: %w", ErrInvalidMessage, err)
		}
		if len(b) > MaxBubbleSize {
			return fmt.Errorf("%w: contents: %d bytes, at most %d", ErrInvalidMessage, len(b), MaxBubbleSize)
		}
	default:
		return fmt.Errorf("%w: type %q: want text or flex", ErrInvalidMessage, m.Type)
	}
	return nil
}
