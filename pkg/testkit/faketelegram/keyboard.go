package faketelegram

import (
	"encoding/json"
	"strings"
)

// Button is one button of an inline keyboard.
type Button struct {
	Text         string
	CallbackData string
	URL          string
}

// maxCallbackData is the most bytes Telegram takes in callback_data.
const maxCallbackData = 64

// inlineActions are the fields that give an inline button something to do;
// a button without one is refused.
var inlineActions = []string{
	"url", "callback_data", "web_app", "login_url", "switch_inline_query",
	"switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
	"copy_text", "callback_game", "pay",
}

// parseReplyMarkup parses reply_markup the way the Bot API server does
// before it sends anything. Only inline keyboards are modelled; other kinds
// of markup are accepted and ignored. Limits enforced by Telegram's servers
// rather than the Bot API (callback_data length) are checked by
// checkInlineKeyboard, later, as Telegram does.
func parseReplyMarkup(raw string) ([][]Button, error) {
	if raw == "" {
		return nil, nil
	}
	dec := json.NewDecoder(strings.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, badRequest("can't parse reply keyboard markup JSON object")
	}
	markup, ok := v.(map[string]any)
	if !ok {
		return nil, badRequest("object expected as reply markup")
	}
	keyboard, ok := markup["inline_keyboard"]
	if !ok {
		return nil, nil
	}
	rows, ok := keyboard.([]any)
	if !ok {
		return nil, badRequest(`field "inline_keyboard" of the InlineKeyboardMarkup must be an Array`)
	}
	out := make([][]Button, 0, len(rows))
	for _, row := range rows {
		buttons, ok := row.([]any)
		if !ok {
			return nil, badRequest(`field "inline_keyboard" of the InlineKeyboardMarkup must be an Array of Arrays`)
		}
		parsed := make([]Button, 0, len(buttons))
		for _, b := range buttons {
			button, err := parseButton(b)
			if err != nil {
				return nil, badRequest("can't parse inline keyboard button: " + err.Error())
			}
			parsed = append(parsed, button)
		}
		out = append(out, parsed)
	}
	return out, nil
}

func parseButton(v any) (Button, error) {
	fields, ok := v.(map[string]any)
	if !ok {
		return Button{}, wireError("InlineKeyboardButton must be an Object")
	}
	text, err := stringField(fields, "text", true)
	if err != nil {
		return Button{}, err
	}
	button := Button{Text: text}
	if button.CallbackData, err = stringField(fields, "callback_data", false); err != nil {
		return Button{}, err
	}
	if button.URL, err = stringField(fields, "url", false); err != nil {
		return Button{}, err
	}
	for _, action := range inlineActions {
		value, ok := fields[action]
		if !ok {
			continue
		}
		// The Bot API treats an empty callback_data or url as absent.
		if s, isString := value.(string); isString && s == "" && (action == "callback_data" || action == "url") {
			continue
		}
		return button, nil
	}
	return Button{}, wireError("Text buttons are unallowed in the inline keyboard")
}

// stringField reads a field the way tdlib's JsonObject does: numbers are
// taken as their decimal text.
func stringField(fields map[string]any, name string, required bool) (string, error) {
	v, ok := fields[name]
	if !ok {
		if required {
			return "", failf(`Can't find field "%s"`, name)
		}
		return "", nil
	}
	switch v := v.(type) {
	case string:
		return v, nil
	case json.Number:
		return v.String(), nil
	default:
		return "", failf(`Field "%s" must be of type String`, name)
	}
}

// checkInlineKeyboard applies the limits Telegram's servers, rather than
// the Bot API, enforce: callback_data of 1-64 bytes (an empty one never
// gets here, the Bot API takes it as absent) and a button text that is not
// empty.
func checkInlineKeyboard(rows [][]Button) error {
	for _, row := range rows {
		for _, b := range row {
			if len(b.CallbackData) > maxCallbackData {
				return badRequest("BUTTON_DATA_INVALID")
			}
			if strings.TrimSpace(b.Text) == "" {
				return badRequest("BUTTON_TEXT_INVALID")
			}
		}
	}
	return nil
}

// keyboardJSON is an inline keyboard as the Bot API returns it.
func keyboardJSON(rows [][]Button) map[string]any {
	out := make([][]map[string]string, 0, len(rows))
	for _, row := range rows {
		buttons := make([]map[string]string, 0, len(row))
		for _, b := range row {
			button := map[string]string{"text": b.Text}
			if b.CallbackData != "" {
				button["callback_data"] = b.CallbackData
			}
			if b.URL != "" {
				button["url"] = b.URL
			}
			buttons = append(buttons, button)
		}
		out = append(out, buttons)
	}
	return map[string]any{"inline_keyboard": out}
}

// hasCallbackButton reports whether the keyboard has a button that sends
// data when pressed.
func hasCallbackButton(rows [][]Button, data string) bool {
	for _, row := range rows {
		for _, b := range row {
			if b.CallbackData != "" && b.CallbackData == data {
				return true
			}
		}
	}
	return false
}
