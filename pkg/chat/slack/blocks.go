package slack

import (
	"encoding/json"
	"fmt"
	"slices"
)

// Block Kit's limits, in characters, for the blocks Vigil uses.
const (
	maxBlocks         = 50
	maxHeaderText     = 150
	maxSectionText    = 3000
	maxSectionFields  = 10
	maxFieldText      = 2000
	maxContextItems   = 10
	maxContextText    = 3000
	maxActionElements = 25
	maxButtonText     = 75
	maxActionID       = 255
	maxButtonValue    = 2000
	maxConfirmTitle   = 100
	maxConfirmText    = 300
	maxConfirmButton  = 30
)

// Text is a Block Kit text object: mrkdwn (escaped by the caller, see
// Escape) or plain text.
type Text struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

// Mrkdwn is a mrkdwn text object; s must already be escaped.
func Mrkdwn(s string) Text { return Text{Type: "mrkdwn", Text: s} }

// Plain is a plain text object; it needs no escaping.
func Plain(s string) Text { return Text{Type: "plain_text", Text: s} }

// truncate cuts t to limit characters the way its type allows.
func (t Text) truncate(limit int) Text {
	if t.Type == "mrkdwn" {
		t.Text = Truncate(t.Text, limit)
	} else {
		t.Text = truncateRunes(t.Text, limit)
	}
	return t
}

// Button is a button of an actions block; pressing it sends ActionID and
// Value to the app's interactivity URL.
type Button struct {
	ActionID string
	Text     string
	Value    string
	// Style is "primary" (green), "danger" (red) or "" (default).
	Style string
	// Confirm, if not nil, asks "are you sure?" before the press counts.
	Confirm *Confirm
}

// Confirm is a button's confirmation dialog, in plain text.
type Confirm struct {
	Title, Text, Confirm, Deny string
	// Style is the confirm button's: "primary" or "danger".
	Style string
}

// Block is one Block Kit block. Its constructors cut text to Block Kit's
// limits; identifiers (action ids, values) that do not fit are refused
// when the message is sent.
type Block struct {
	typ      string
	text     *Text
	fields   []Text
	texts    []Text // a context block's elements
	buttons  []Button
	problems []string
}

// Header is a header block: large plain text.
func Header(text string) Block {
	t := Plain(text).truncate(maxHeaderText)
	return Block{typ: "header", text: &t}
}

// Section is a section block of text.
func Section(text Text) Block {
	t := text.truncate(maxSectionText)
	return Block{typ: "section", text: &t}
}

// Fields is a section block of fields, shown two by two; past ten, the
// rest are dropped.
func Fields(fields ...Text) Block {
	b := Block{typ: "section"}
	for _, f := range fields[:min(len(fields), maxSectionFields)] {
		b.fields = append(b.fields, f.truncate(maxFieldText))
	}
	return b
}

// Context is a context block: small print; past ten elements, the rest
// are dropped.
func Context(elements ...Text) Block {
	b := Block{typ: "context"}
	for _, e := range elements[:min(len(elements), maxContextItems)] {
		b.texts = append(b.texts, e.truncate(maxContextText))
	}
	return b
}

// Divider is a divider block.
func Divider() Block { return Block{typ: "divider"} }

// Actions is an actions block of buttons.
func Actions(buttons ...Button) Block {
	b := Block{typ: "actions"}
	if len(buttons) > maxActionElements {
		b.problems = append(b.problems, fmt.Sprintf("%d buttons: at most %d", len(buttons), maxActionElements))
	}
	for i, btn := range buttons {
		switch {
		case btn.ActionID == "" || len([]rune(btn.ActionID)) > maxActionID:
			b.problems = append(b.problems, fmt.Sprintf("button %d: action id: want 1-%d characters", i, maxActionID))
		case len([]rune(btn.Value)) > maxButtonValue:
			b.problems = append(b.problems, fmt.Sprintf("button %d: value: at most %d characters", i, maxButtonValue))
		case btn.Text == "":
			b.problems = append(b.problems, fmt.Sprintf("button %d: text: missing", i))
		case btn.Style != "" && btn.Style != "primary" && btn.Style != "danger":
			b.problems = append(b.problems, fmt.Sprintf("button %d: style %q: want primary, danger or none", i, btn.Style))
		}
	}
	b.buttons = buttons
	return b
}

// validate reports what Slack would refuse that the constructor could not
// cut to size.
func (b Block) validate() error {
	if b.typ == "" {
		return fmt.Errorf("%w: a block made without a constructor", ErrInvalidMessage)
	}
	problems := b.problems
	if b.text != nil && b.text.Text == "" {
		problems = append(problems, "text: missing")
	}
	for i, f := range slices.Concat(b.fields, b.texts) {
		if f.Text == "" {
			problems = append(problems, fmt.Sprintf("element %d: text: missing", i))
		}
	}
	switch {
	case b.typ == "section" && b.text == nil && len(b.fields) == 0,
		b.typ == "context" && len(b.texts) == 0,
		b.typ == "actions" && len(b.buttons) == 0:
		problems = append(problems, "empty")
	}
	for i, btn := range b.buttons {
		if c := btn.Confirm; c != nil && (c.Title == "" || c.Text == "" || c.Confirm == "" || c.Deny == "") {
			problems = append(problems, fmt.Sprintf("button %d: confirm: title, text, confirm and deny are required", i))
		}
	}
	if len(problems) > 0 {
		return fmt.Errorf("%w: %s block: %s", ErrInvalidMessage, b.typ, problems[0])
	}
	return nil
}

// MarshalJSON writes the block as Block Kit JSON.
func (b Block) MarshalJSON() ([]byte, error) {
	out := map[string]any{"type": b.typ}
	if b.text != nil {
		out["text"] = *b.text
	}
	if len(b.fields) > 0 {
		out["fields"] = b.fields
	}
	switch b.typ {
	case "context":
		out["elements"] = b.texts
	case "actions":
		elements := make([]map[string]any, 0, len(b.buttons))
		for _, btn := range b.buttons {
			elements = append(elements, btn.json())
		}
		out["elements"] = elements
	}
	return json.Marshal(out)
}

func (btn Button) json() map[string]any {
	e := map[string]any{
		"type":      "button",
		"action_id": btn.ActionID,
		"text":      Plain(btn.Text).truncate(maxButtonText),
	}
	if btn.Value != "" {
		e["value"] = btn.Value
	}
	if btn.Style != "" {
		e["style"] = btn.Style
	}
	if c := btn.Confirm; c != nil {
		d := map[string]any{
			"title":   Plain(c.Title).truncate(maxConfirmTitle),
			"text":    Plain(c.Text).truncate(maxConfirmText),
			"confirm": Plain(c.Confirm).truncate(maxConfirmButton),
			"deny":    Plain(c.Deny).truncate(maxConfirmButton),
		}
		if c.Style != "" {
			d["style"] = c.Style
		}
		e["confirm"] = d
	}
	return e
}
