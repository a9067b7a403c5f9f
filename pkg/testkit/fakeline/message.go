package fakeline

import (
	"encoding/json"
	"fmt"
	"slices"
	"unicode/utf16"
)

// LINE's limits, in UTF-16 code units as LINE counts.
const (
	maxText       = 5000
	maxAltText    = 400
	maxBubbleSize = 30 << 10
)

func length(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

// parseMessage reads and checks one message at path; the details say
// what LINE would refuse.
func parseMessage(raw json.RawMessage, path string) (Message, []detail) {
	var m struct {
		Type     string          `json:"type"`
		Text     *string         `json:"text"`
		AltText  *string         `json:"altText"`
		Contents json.RawMessage `json:"contents"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return Message{}, []detail{{Message: "Invalid message", Property: path}}
	}
	out := Message{Type: m.Type, Contents: m.Contents}
	switch m.Type {
	case "text":
		if m.Text == nil || *m.Text == "" {
			return out, []detail{{Message: "Must not be empty", Property: path + ".text"}}
		}
		out.Text = *m.Text
		if length(out.Text) > maxText {
			return out, []detail{{Message: fmt.Sprintf("Length must be between 0 and %d", maxText), Property: path + ".text"}}
		}
	case "flex":
		var ds []detail
		if m.AltText == nil || *m.AltText == "" {
			ds = append(ds, detail{Message: "Must not be empty", Property: path + ".altText"})
		} else {
			out.AltText = *m.AltText
			if length(out.AltText) > maxAltText {
				ds = append(ds, detail{Message: fmt.Sprintf("Length must be between 0 and %d", maxAltText), Property: path + ".altText"})
			}
		}
		if len(m.Contents) > maxBubbleSize {
			ds = append(ds, detail{Message: fmt.Sprintf("Size must be at most %d bytes", maxBubbleSize), Property: path + ".contents"})
		}
		return out, append(ds, checkBubble(m.Contents, path+".contents")...)
	default:
		return out, []detail{{Message: "Must be one of the following values: [text, flex]", Property: path + ".type"}}
	}
	return out, nil
}

// component is any Flex component, as sent.
type component struct {
	Type     *string           `json:"type"`
	Layout   string            `json:"layout"`
	Contents []json.RawMessage `json:"contents"`
	Text     *string           `json:"text"`
	Action   *struct {
		Type  string `json:"type"`
		Label string `json:"label"`
		Data  string `json:"data"`
	} `json:"action"`
}

func checkBubble(raw json.RawMessage, path string) []detail {
	var b struct {
		Type   string          `json:"type"`
		Header json.RawMessage `json:"header"`
		Body   json.RawMessage `json:"body"`
		Footer json.RawMessage `json:"footer"`
	}
	if len(raw) == 0 || json.Unmarshal(raw, &b) != nil || b.Type != "bubble" {
		return []detail{{Message: "Must be a bubble", Property: path + ".type"}}
	}
	var ds []detail
	for _, part := range []struct {
		name string
		raw  json.RawMessage
	}{{"header", b.Header}, {"body", b.Body}, {"footer", b.Footer}} {
		if len(part.raw) == 0 {
			continue
		}
		ds = append(ds, checkBox(part.raw, path+"."+part.name)...)
	}
	return ds
}

var layouts = []string{"vertical", "horizontal", "baseline"}

func checkBox(raw json.RawMessage, path string) []detail {
	var c component
	if json.Unmarshal(raw, &c) != nil || c.Type == nil || *c.Type != "box" {
		return []detail{{Message: "Must be a box", Property: path + ".type"}}
	}
	return checkComponent(raw, path)
}

func checkComponent(raw json.RawMessage, path string) []detail {
	var c component
	if json.Unmarshal(raw, &c) != nil || c.Type == nil {
		return []detail{{Message: "Must not be null", Property: path + ".type"}}
	}
	switch *c.Type {
	case "box":
		if !slices.Contains(layouts, c.Layout) {
			return []detail{{Message: "Must be one of the following values: [vertical, horizontal, baseline]", Property: path + ".layout"}}
		}
		if c.Contents == nil {
			return []detail{{Message: "Must not be null", Property: path + ".contents"}}
		}
		var ds []detail
		for i, cc := range c.Contents {
			ds = append(ds, checkComponent(cc, fmt.Sprintf("%s.contents[%d]", path, i))...)
		}
		return ds
	case "text":
		if c.Text == nil || *c.Text == "" {
			return []detail{{Message: "Must not be empty", Property: path + ".text"}}
		}
	case "separator":
	case "button":
		switch {
		case c.Action == nil:
			return []detail{{Message: "Must not be null", Property: path + ".action"}}
		case c.Action.Type != "postback":
			return []detail{{Message: "Must be one of the following values: [postback]", Property: path + ".action.type"}}
		case c.Action.Label == "" || length(c.Action.Label) > 40:
			return []detail{{Message: "Length must be between 1 and 40", Property: path + ".action.label"}}
		case c.Action.Data == "" || length(c.Action.Data) > 300:
			return []detail{{Message: "Length must be between 1 and 300", Property: path + ".action.data"}}
		}
	default:
		return []detail{{Message: "Must be one of the following values: [box, text, separator, button]", Property: path + ".type"}}
	}
	return nil
}
