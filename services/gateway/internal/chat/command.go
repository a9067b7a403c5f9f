package chat

import "strings"

// LinkCommand reads "/link CODE" or "/start CODE" (either may name the
// bot: "/link@VigilBot CODE", as Telegram writes it): ok, and the code,
// "" when there is none. Any other text is not a command for Vigil.
func LinkCommand(text string) (code string, ok bool) {
	cmd, arg, _ := strings.Cut(strings.TrimSpace(text), " ")
	cmd, _, _ = strings.Cut(cmd, "@")
	if cmd != "/link" && cmd != "/start" {
		return "", false
	}
	return strings.TrimSpace(arg), true
}
