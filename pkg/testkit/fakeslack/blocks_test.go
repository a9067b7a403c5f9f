package fakeslack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
)

// obj is a JSON object, to keep block literals short.
type obj = map[string]any

func plain(text string) obj { return obj{"type": "plain_text", "text": text} }

func mrkdwn(text string) obj { return obj{"type": "mrkdwn", "text": text} }

func button(text, actionID string) obj {
	return obj{"type": "button", "text": plain(text), "action_id": actionID}
}

func actions(elements ...any) obj {
	return obj{"type": "actions", "elements": append([]any{}, elements...)}
}

func section(text string) obj { return obj{"type": "section", "text": mrkdwn(text)} }

// approvalCard is the kind of message Vigil posts for a repair approval.
func approvalCard() []any {
	return []any{
		obj{"type": "header", "text": plain("Repair needs approval")},
		obj{"type": "section", "text": mrkdwn("*Restart* `api` in `shop`"), "fields": []any{mrkdwn("*Risk*\nlow"), mrkdwn("*Confidence*\n0.92")}},
		obj{"type": "divider"},
		obj{"type": "context", "elements": []any{mrkdwn("incident #7"), obj{"type": "image", "image_url": "https://vigil.test/i.png", "alt_text": "vigil"}}},
		obj{"type": "actions", "block_id": "repair:7", "elements": []any{
			obj{
				"type": "button", "text": plain("Approve"), "action_id": "approve", "value": "7", "style": "primary",
				"confirm": obj{"title": plain("Sure?"), "text": mrkdwn("Restart *api*?"), "confirm": plain("Yes"), "deny": plain("No")},
			},
			obj{"type": "button", "text": plain("Reject"), "action_id": "reject", "value": "7", "style": "danger"},
			obj{"type": "button", "text": plain("Details"), "action_id": "details", "url": "https://vigil.test/r/7"},
		}},
	}
}

func TestBlocksAccepted(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	body := api(t, s, "chat.postMessage", obj{"channel": alerts, "text": "Repair needs approval", "blocks": approvalCard()})
	requireOK(t, body)

	m := s.Messages()[0]
	require.Equal(t, []fakeslack.Button{
		{BlockID: "repair:7", ActionID: "approve", Text: "Approve", Value: "7", Style: "primary"},
		{BlockID: "repair:7", ActionID: "reject", Text: "Reject", Value: "7", Style: "danger"},
		{BlockID: "repair:7", ActionID: "details", Text: "Details", URL: "https://vigil.test/r/7"},
	}, m.Buttons)
	var blocks []obj
	require.NoError(t, json.Unmarshal(m.Blocks, &blocks))
	require.Len(t, blocks, 5)
	require.Equal(t, "fake0", blocks[0]["block_id"], "Slack gives a block without block_id one")
	require.Equal(t, "repair:7", blocks[4]["block_id"])
}

func TestBlockKitRules(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	many := func(n int, v any) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	buttons := func(n int) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = button("b", "a"+strings.Repeat("x", i))
		}
		return out
	}
	tests := []struct {
		name   string
		blocks any
		want   []string // response_metadata.messages; empty for success
	}{
		{name: "50 blocks", blocks: many(50, obj{"type": "divider"})},
		{name: "51 blocks", blocks: many(51, obj{"type": "divider"}), want: []string{"[ERROR] no more than 50 items allowed [json-pointer:/blocks]"}},
		{name: "section text of 3000", blocks: []any{section(strings.Repeat("é", 3000))}},
		{name: "section text of 3001", blocks: []any{section(strings.Repeat("é", 3001))}, want: []string{"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/text/text]"}},
		{name: "section text empty", blocks: []any{section("")}, want: []string{"[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]"}},
		{name: "section without text or fields", blocks: []any{obj{"type": "section"}}, want: []string{"[ERROR] must provide text or fields [json-pointer:/blocks/0]"}},
		{name: "section with 10 fields", blocks: []any{obj{"type": "section", "fields": many(10, mrkdwn("f"))}}},
		{name: "section with 11 fields", blocks: []any{obj{"type": "section", "fields": many(11, mrkdwn("f"))}}, want: []string{"[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/fields]"}},
		{name: "field of 2001", blocks: []any{obj{"type": "section", "fields": []any{plain(strings.Repeat("f", 2001))}}}, want: []string{"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/fields/0/text]"}},
		{name: "text object of another type", blocks: []any{obj{"type": "section", "text": obj{"type": "markdown", "text": "x"}}}, want: []string{`[ERROR] must be one of ["plain_text" "mrkdwn"] [json-pointer:/blocks/0/text/type]`}},
		{name: "emoji on mrkdwn", blocks: []any{obj{"type": "section", "text": obj{"type": "mrkdwn", "text": "x", "emoji": true}}}, want: []string{`[ERROR] unknown field "emoji" [json-pointer:/blocks/0/text/emoji]`}},
		{name: "header in mrkdwn", blocks: []any{obj{"type": "header", "text": mrkdwn("x")}}, want: []string{`[ERROR] must be one of ["plain_text"] [json-pointer:/blocks/0/text/type]`}},
		{name: "header of 150", blocks: []any{obj{"type": "header", "text": plain(strings.Repeat("h", 150))}}},
		{name: "header of 151", blocks: []any{obj{"type": "header", "text": plain(strings.Repeat("h", 151))}}, want: []string{"[ERROR] must be less than 151 characters [json-pointer:/blocks/0/text/text]"}},
		{name: "header without text", blocks: []any{obj{"type": "header"}}, want: []string{"[ERROR] missing required field: text [json-pointer:/blocks/0]"}},
		{name: "divider with text", blocks: []any{obj{"type": "divider", "text": plain("x")}}, want: []string{`[ERROR] unknown field "text" [json-pointer:/blocks/0/text]`}},
		{name: "context of 11", blocks: []any{obj{"type": "context", "elements": many(11, plain("c"))}}, want: []string{"[ERROR] no more than 10 items allowed [json-pointer:/blocks/0/elements]"}},
		{name: "actions of 25", blocks: []any{actions(buttons(25)...)}},
		{name: "actions of 26", blocks: []any{actions(buttons(26)...)}, want: []string{"[ERROR] no more than 25 items allowed [json-pointer:/blocks/0/elements]"}},
		{name: "actions empty", blocks: []any{actions()}, want: []string{"[ERROR] must provide at least 1 item [json-pointer:/blocks/0/elements]"}},
		{name: "select menu", blocks: []any{actions(obj{"type": "static_select", "action_id": "s"})}, want: []string{"[ERROR] unsupported element type static_select (fakeslack models buttons) [json-pointer:/blocks/0/elements/0/type]"}},
		{name: "button text of 75", blocks: []any{actions(button(strings.Repeat("b", 75), "a"))}},
		{name: "button text of 76", blocks: []any{actions(button(strings.Repeat("b", 76), "a"))}, want: []string{"[ERROR] must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"}},
		{name: "button text in mrkdwn", blocks: []any{actions(obj{"type": "button", "text": mrkdwn("b"), "action_id": "a"})}, want: []string{`[ERROR] must be one of ["plain_text"] [json-pointer:/blocks/0/elements/0/text/type]`}},
		{name: "button without text", blocks: []any{actions(obj{"type": "button", "action_id": "a"})}, want: []string{"[ERROR] missing required field: text [json-pointer:/blocks/0/elements/0]"}},
		{name: "action_id of 256", blocks: []any{actions(button("b", strings.Repeat("a", 256)))}, want: []string{"[ERROR] must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"}},
		{name: "action_id twice in a block", blocks: []any{actions(button("a", "go"), button("b", "go"))}, want: []string{`[ERROR] action_id "go" is already used in this message [json-pointer:/blocks/0/elements/1/action_id]`}},
		{name: "action_id twice in a message", blocks: []any{actions(button("a", "go")), actions(button("b", "go"))}, want: []string{`[ERROR] action_id "go" is already used in this message [json-pointer:/blocks/1/elements/0/action_id]`}},
		{name: "value of 2001", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action_id": "a", "value": strings.Repeat("v", 2001)})}, want: []string{"[ERROR] must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"}},
		{name: "url of 3001", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action_id": "a", "url": "https://x.test/" + strings.Repeat("u", 2986)})}, want: []string{"[ERROR] must be less than 3001 characters [json-pointer:/blocks/0/elements/0/url]"}},
		{name: "style secondary", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action_id": "a", "style": "secondary"})}, want: []string{`[ERROR] must be one of "primary", "danger" [json-pointer:/blocks/0/elements/0/style]`}},
		{name: "typo in a button field", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action-id": "a"})}, want: []string{`[ERROR] unknown field "action-id" [json-pointer:/blocks/0/elements/0/action-id]`}},
		{name: "confirm without deny", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action_id": "a", "confirm": obj{"title": plain("t"), "text": plain("x"), "confirm": plain("y")}})}, want: []string{"[ERROR] missing required field: deny [json-pointer:/blocks/0/elements/0/confirm]"}},
		{name: "confirm title of 101", blocks: []any{actions(obj{"type": "button", "text": plain("b"), "action_id": "a", "confirm": obj{"title": plain(strings.Repeat("t", 101)), "text": plain("x"), "confirm": plain("y"), "deny": plain("n")}})}, want: []string{"[ERROR] must be less than 101 characters [json-pointer:/blocks/0/elements/0/confirm/title/text]"}},
		{name: "block_id twice", blocks: []any{obj{"type": "divider", "block_id": "b"}, obj{"type": "divider", "block_id": "b"}}, want: []string{`[ERROR] block_id "b" is already used in this message [json-pointer:/blocks/1/block_id]`}},
		{name: "block_id of 256", blocks: []any{obj{"type": "divider", "block_id": strings.Repeat("b", 256)}}, want: []string{"[ERROR] must be less than 256 characters [json-pointer:/blocks/0/block_id]"}},
		{name: "block without type", blocks: []any{obj{"text": plain("x")}}, want: []string{"[ERROR] missing required field: type [json-pointer:/blocks/0]"}},
		{name: "block not an object", blocks: []any{"divider"}, want: []string{"[ERROR] must provide an object [json-pointer:/blocks/0]"}},
		{name: "unmodelled block type", blocks: []any{obj{"type": "image", "image_url": "https://x.test/i.png", "alt_text": "i"}}, want: []string{`[ERROR] unsupported block type "image" (fakeslack models section, header, divider, context and actions) [json-pointer:/blocks/0/type]`}},
		{name: "every problem is reported", blocks: []any{section(""), obj{"type": "header", "text": plain(strings.Repeat("h", 151))}}, want: []string{
			"[ERROR] must be more than 0 characters [json-pointer:/blocks/0/text/text]",
			"[ERROR] must be less than 151 characters [json-pointer:/blocks/1/text/text]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			body := api(t, s, "chat.postMessage", obj{"channel": alerts, "text": "fallback", "blocks": tt.blocks})
			if len(tt.want) == 0 {
				requireOK(t, body)
				return
			}
			requireError(t, body, "invalid_blocks")
			var messages []string
			for _, m := range body["response_metadata"].(obj)["messages"].([]any) {
				messages = append(messages, m.(string))
			}
			require.Equal(t, tt.want, messages)
		})
	}
}

func TestBlocksFormat(t *testing.T) {
	t.Parallel()
	s := newServer(t)
	requireError(t, api(t, s, "chat.postMessage", obj{"channel": alerts, "blocks": obj{"type": "divider"}}), "invalid_blocks_format")
	requireError(t, api(t, s, "chat.postMessage", obj{"channel": alerts, "blocks": "[{"}), "invalid_blocks_format")
	requireOK(t, api(t, s, "chat.postMessage", obj{"channel": alerts, "blocks": `[{"type":"divider"}]`}))
}
