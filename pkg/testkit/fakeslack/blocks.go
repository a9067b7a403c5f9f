package fakeslack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Block Kit limits for the blocks a message card uses.
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxSectionFields   = 10
	maxFieldText       = 2000
	maxHeaderText      = 150
	maxContextElements = 10
	maxActionElements  = 25
	maxButtonText      = 75
	maxActionID        = 255
	maxBlockID         = 255
	maxButtonValue     = 2000
	maxButtonURL       = 3000
	maxConfirmTitle    = 100
	maxConfirmText     = 300
	maxConfirmButton   = 30
)

// Button is a button of a message, as the fake stored it.
type Button struct {
	BlockID  string
	ActionID string
	Text     string
	Value    string
	// Style is "primary", "danger" or "" for the default.
	Style string
	URL   string
}

// blockChecker validates one message's blocks, collecting every problem
// as Slack words them: "[ERROR] <what> [json-pointer:<where>]".
type blockChecker struct {
	errs      []string
	blockIDs  map[string]bool
	actionIDs map[string]bool
	buttons   []Button
}

func (c *blockChecker) fail(pointer, format string, a ...any) {
	c.errs = append(c.errs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, a...), pointer))
}

// parseBlocks reads a blocks parameter: a JSON array, or (from a form) a
// string holding one. It returns the blocks with the block_id and action_id
// Slack fills in when they are missing, as JSON, and their buttons. A
// parameter that is not an array is "invalid_blocks_format"; blocks that
// break Block Kit's rules are "invalid_blocks" with the reasons.
func parseBlocks(v any) (json.RawMessage, []Button, result, bool) {
	if s, ok := v.(string); ok {
		dec := json.NewDecoder(bytes.NewReader([]byte(s)))
		dec.UseNumber()
		if err := dec.Decode(&v); err != nil {
			return nil, nil, failed("invalid_blocks_format"), false
		}
	}
	list, ok := v.([]any)
	if !ok {
		return nil, nil, failed("invalid_blocks_format"), false
	}
	c := &blockChecker{blockIDs: map[string]bool{}, actionIDs: map[string]bool{}}
	if len(list) > maxBlocks {
		c.fail("/blocks", "no more than %d items allowed", maxBlocks)
	}
	for i, b := range list {
		c.block(b, i)
	}
	if len(c.errs) > 0 {
		return nil, nil, failed("invalid_blocks", c.errs...), false
	}
	raw, err := json.Marshal(list)
	if err != nil {
		return nil, nil, failed("invalid_blocks_format"), false
	}
	return raw, c.buttons, result{}, true
}

// blockFields are the fields each block type may have.
var blockFields = map[string][]string{
	"section": {"type", "block_id", "text", "fields", "accessory", "expand"},
	"header":  {"type", "block_id", "text"},
	"divider": {"type", "block_id"},
	"context": {"type", "block_id", "elements"},
	"actions": {"type", "block_id", "elements"},
}

func (c *blockChecker) block(v any, i int) {
	at := "/blocks/" + strconv.Itoa(i)
	b, ok := v.(map[string]any)
	if !ok {
		c.fail(at, "must provide an object")
		return
	}
	typ, ok := b["type"].(string)
	if !ok {
		c.fail(at, "missing required field: type")
		return
	}
	allowed, known := blockFields[typ]
	if !known {
		c.fail(at+"/type", "unsupported block type %q (fakeslack models section, header, divider, context and actions)", typ)
		return
	}
	if !c.onlyFields(b, allowed, at) {
		return
	}
	blockID := c.blockID(b, i, at)
	switch typ {
	case "section":
		c.section(b, blockID, at)
	case "header":
		if c.required(b, "text", at) {
			c.text(b["text"], at+"/text", maxHeaderText, "plain_text")
		}
	case "context":
		c.context(b, at)
	case "actions":
		c.actions(b, blockID, at)
	}
}

// blockID checks a block's block_id, or gives it one as Slack does.
func (c *blockChecker) blockID(b map[string]any, i int, at string) string {
	v, present := b["block_id"]
	if !present {
		id := "fake" + strconv.Itoa(i)
		for c.blockIDs[id] {
			id += "x"
		}
		b["block_id"] = id
		c.blockIDs[id] = true
		return id
	}
	id, ok := v.(string)
	switch {
	case !ok:
		c.fail(at+"/block_id", "must provide a string")
	case id == "":
		c.fail(at+"/block_id", "must be more than 0 characters")
	case utf8.RuneCountInString(id) > maxBlockID:
		c.fail(at+"/block_id", "must be less than %d characters", maxBlockID+1)
	case c.blockIDs[id]:
		c.fail(at+"/block_id", "block_id %q is already used in this message", id)
	}
	c.blockIDs[id] = true
	return id
}

func (c *blockChecker) section(b map[string]any, blockID, at string) {
	_, hasText := b["text"]
	fields, hasFields := b["fields"]
	if !hasText && !hasFields {
		c.fail(at, "must provide text or fields")
	}
	if hasText {
		c.text(b["text"], at+"/text", maxSectionText, "plain_text", "mrkdwn")
	}
	if hasFields {
		list, ok := fields.([]any)
		switch {
		case !ok:
			c.fail(at+"/fields", "must provide an array")
		case len(list) == 0:
			c.fail(at+"/fields", "must provide at least 1 item")
		case len(list) > maxSectionFields:
			c.fail(at+"/fields", "no more than %d items allowed", maxSectionFields)
		}
		for j, f := range list {
			c.text(f, at+"/fields/"+strconv.Itoa(j), maxFieldText, "plain_text", "mrkdwn")
		}
	}
	if accessory, ok := b["accessory"]; ok {
		c.element(accessory, blockID, at+"/accessory", true)
	}
	if expand, ok := b["expand"]; ok {
		if _, isBool := expand.(bool); !isBool {
			c.fail(at+"/expand", "must provide a boolean")
		}
	}
}

func (c *blockChecker) context(b map[string]any, at string) {
	if !c.required(b, "elements", at) {
		return
	}
	list, ok := b["elements"].([]any)
	switch {
	case !ok:
		c.fail(at+"/elements", "must provide an array")
		return
	case len(list) == 0:
		c.fail(at+"/elements", "must provide at least 1 item")
	case len(list) > maxContextElements:
		c.fail(at+"/elements", "no more than %d items allowed", maxContextElements)
	}
	for j, e := range list {
		ep := at + "/elements/" + strconv.Itoa(j)
		if m, isMap := e.(map[string]any); isMap && m["type"] == "image" {
			c.image(m, ep)
			continue
		}
		c.text(e, ep, 0, "plain_text", "mrkdwn")
	}
}

func (c *blockChecker) actions(b map[string]any, blockID, at string) {
	if !c.required(b, "elements", at) {
		return
	}
	list, ok := b["elements"].([]any)
	switch {
	case !ok:
		c.fail(at+"/elements", "must provide an array")
		return
	case len(list) == 0:
		c.fail(at+"/elements", "must provide at least 1 item")
	case len(list) > maxActionElements:
		c.fail(at+"/elements", "no more than %d items allowed", maxActionElements)
	}
	for j, e := range list {
		c.element(e, blockID, at+"/elements/"+strconv.Itoa(j), false)
	}
}

// element checks an interactive element: a button (or, as a section's
// accessory, an image).
func (c *blockChecker) element(v any, blockID, at string, accessory bool) {
	e, ok := v.(map[string]any)
	if !ok {
		c.fail(at, "must provide an object")
		return
	}
	switch e["type"] {
	case "button":
		c.button(e, blockID, at)
	case "image":
		if accessory {
			c.image(e, at)
			return
		}
		fallthrough
	default:
		c.fail(at+"/type", "unsupported element type %v (fakeslack models buttons)", e["type"])
	}
}

var buttonFields = []string{"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}

func (c *blockChecker) button(e map[string]any, blockID, at string) {
	if !c.onlyFields(e, buttonFields, at) {
		return
	}
	b := Button{BlockID: blockID}
	if c.required(e, "text", at) {
		b.Text = c.text(e["text"], at+"/text", maxButtonText, "plain_text")
	}
	if _, present := e["action_id"]; !present {
		id := "fake-action-" + strconv.Itoa(len(c.buttons))
		for c.actionIDs[id] {
			id += "x"
		}
		e["action_id"] = id
	}
	b.ActionID = c.str(e, "action_id", at, maxActionID)
	if b.ActionID != "" {
		if c.actionIDs[b.ActionID] {
			c.fail(at+"/action_id", "action_id %q is already used in this message", b.ActionID)
		}
		c.actionIDs[b.ActionID] = true
	}
	b.Value = c.optionalStr(e, "value", at, maxButtonValue)
	b.URL = c.optionalStr(e, "url", at, maxButtonURL)
	if style, present := e["style"]; present {
		if style != "primary" && style != "danger" {
			c.fail(at+"/style", `must be one of "primary", "danger"`)
		}
		b.Style, _ = style.(string)
	}
	c.optionalStr(e, "accessibility_label", at, maxButtonText)
	if confirm, present := e["confirm"]; present {
		c.confirm(confirm, at+"/confirm")
	}
	c.buttons = append(c.buttons, b)
}

func (c *blockChecker) confirm(v any, at string) {
	d, ok := v.(map[string]any)
	if !ok {
		c.fail(at, "must provide an object")
		return
	}
	if !c.onlyFields(d, []string{"title", "text", "confirm", "deny", "style"}, at) {
		return
	}
	for _, f := range []struct {
		name  string
		limit int
		types []string
	}{
		{"title", maxConfirmTitle, []string{"plain_text"}},
		{"text", maxConfirmText, []string{"plain_text", "mrkdwn"}},
		{"confirm", maxConfirmButton, []string{"plain_text"}},
		{"deny", maxConfirmButton, []string{"plain_text"}},
	} {
		if c.required(d, f.name, at) {
			c.text(d[f.name], at+"/"+f.name, f.limit, f.types...)
		}
	}
	if style, present := d["style"]; present && style != "primary" && style != "danger" {
		c.fail(at+"/style", `must be one of "primary", "danger"`)
	}
}

func (c *blockChecker) image(e map[string]any, at string) {
	if !c.onlyFields(e, []string{"type", "image_url", "alt_text", "slack_file"}, at) {
		return
	}
	if _, url := e["image_url"]; !url {
		if _, file := e["slack_file"]; !file {
			c.fail(at, "missing required field: image_url")
		}
	}
	if c.required(e, "alt_text", at) {
		c.str(e, "alt_text", at, 2000)
	}
}

// text checks a text object of one of the types, at most limit characters
// (0: no limit of its own), and returns its text.
func (c *blockChecker) text(v any, at string, limit int, types ...string) string {
	t, ok := v.(map[string]any)
	if !ok {
		c.fail(at, "must provide an object")
		return ""
	}
	typ, _ := t["type"].(string)
	if !slices.Contains(types, typ) {
		if typ == "" {
			c.fail(at, "missing required field: type")
		} else {
			c.fail(at+"/type", "must be one of %q", types)
		}
		return ""
	}
	allowed := []string{"type", "text", "emoji"}
	if typ == "mrkdwn" {
		allowed = []string{"type", "text", "verbatim"}
	}
	if !c.onlyFields(t, allowed, at) {
		return ""
	}
	for _, flag := range []string{"emoji", "verbatim"} {
		if f, present := t[flag]; present {
			if _, isBool := f.(bool); !isBool {
				c.fail(at+"/"+flag, "must provide a boolean")
			}
		}
	}
	if !c.required(t, "text", at) {
		return ""
	}
	return c.str(t, "text", at, limit)
}

// str checks a required string field of 1 to limit characters (limit 0:
// any length).
func (c *blockChecker) str(m map[string]any, name, at string, limit int) string {
	s, ok := m[name].(string)
	switch {
	case !ok:
		c.fail(at+"/"+name, "must provide a string")
	case s == "":
		c.fail(at+"/"+name, "must be more than 0 characters")
	case limit > 0 && utf8.RuneCountInString(s) > limit:
		c.fail(at+"/"+name, "must be less than %d characters", limit+1)
	}
	return s
}

func (c *blockChecker) optionalStr(m map[string]any, name, at string, limit int) string {
	if _, present := m[name]; !present {
		return ""
	}
	return c.str(m, name, at, limit)
}

func (c *blockChecker) required(m map[string]any, name, at string) bool {
	if _, ok := m[name]; !ok {
		c.fail(at, "missing required field: %s", name)
		return false
	}
	return true
}

// onlyFields refuses fields the object's type does not have; a typo in a
// field name would otherwise pass unnoticed.
func (c *blockChecker) onlyFields(m map[string]any, allowed []string, at string) bool {
	ok := true
	keys := slices.Sorted(maps.Keys(m))
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			c.fail(at+"/"+k, "unknown field %q", k)
			ok = false
		}
	}
	return ok
}
