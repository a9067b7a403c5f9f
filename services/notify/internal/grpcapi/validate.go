package grpcapi

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/registry"
)

// violations collects what is wrong with a request's fields.
type violations struct{ server.BadRequestError }

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// validate refuses a channel that could not work, naming every field
// (under prefix) that is wrong; then the kind's own package checks the
// formats of its options, as it does the environment's.
func validate(c postgres.Channel, prefix string, sets map[string]*message.Templates) error {
	var v violations
	f := func(name string) string { return prefix + name }
	switch {
	case c.Name == "":
		v.Add(f("name"), "is required")
	case !dnsLabel.MatchString(c.Name):
		v.Addf(f("name"), "%q must be lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit", c.Name)
	case registry.Reserved(c.Name):
		v.Addf(f("name"), "%q is the name of the channel the environment configures: choose another", c.Name)
	}
	known := slices.Contains(registry.Kinds, c.Kind)
	if !known {
		v.Addf(f("kind"), "unknown kind %q: want one of %s", c.Kind, strings.Join(registry.Kinds, ", "))
	}
	if c.Language != "" && !slices.Contains(registry.Languages, c.Language) {
		v.Addf(f("language"), "%q: want one of %s", c.Language, strings.Join(registry.Languages, ", "))
	}
	if c.TimeZone != "" {
		if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "Local" {
			v.Addf(f("time_zone"), "%q is not an IANA time zone (e.g. Asia/Taipei, Europe/Berlin, UTC)", c.TimeZone)
		}
	}
	if _, ok := sets[c.Templates]; c.Templates != "" && !ok {
		v.Addf(f("templates"), "%q: no such template set (a subdirectory of notify's VIGIL_NOTIFY_TEMPLATES_DIR)", c.Templates)
	}
	if c.Target == "" {
		v.Add(f("target"), "is required: "+targetHelp[c.Kind])
	}
	if known {
		validKind(&v, c, f)
	}
	if v.Len() == 0 {
		cfg, err := registry.Config(c)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			field, msg := fieldOf(err.Error())
			switch field {
			case "credential": // of the request, not the channel
			case "":
				field = strings.TrimSuffix(prefix, ".")
			default:
				field = f(field)
			}
			v.Add(field, msg)
		}
	}
	return v.Err("invalid channel")
}

var targetHelp = map[string]string{
	"telegram": "the chat's id (-100123..., as getUpdates shows it) or a public channel's @username",
	"slack":    "the channel's id (C0123ABCD)",
	"line":     "the user (U...), group (C...) or room (R...) id",
	"email":    "the addresses to write to, comma-separated",
	"webhook":  "the URL to POST to",
}

// fields are the fields of a stored channel that the environment's
// variables stand for in the messages of the kinds' Validate.
var fields = map[string]string{
	"VIGIL_TELEGRAM_CHAT_ID": "target", "VIGIL_SLACK_CHANNEL": "target", "VIGIL_LINE_TO": "target",
	"VIGIL_WEBHOOK_URL": "target", "VIGIL_EMAIL_TO": "target",
	"VIGIL_SLACK_API_URL": "api_url", "VIGIL_LINE_API_URL": "api_url", "VIGIL_TELEGRAM_API_URL": "api_url",
	"VIGIL_SMTP_HOST": "email.smtp_host", "VIGIL_SMTP_PORT": "email.smtp_port", "VIGIL_SMTP_TLS": "email.tls",
	"VIGIL_SMTP_USERNAME": "email.username", "VIGIL_SMTP_CA_FILE": "email.ca_file", "VIGIL_EMAIL_FROM": "email.from",
}

// fieldOf is the field a kind's Validate message is about, and the
// message without the variable it names: "VIGIL_SLACK_CHANNEL: \"#x\" is
// not a channel id" is about the target.
func fieldOf(msg string) (field, rest string) {
	name, rest, ok := strings.Cut(msg, ": ")
	if !ok {
		return "", msg
	}
	if strings.Contains(name, "TOKEN") || strings.Contains(name, "SECRET") || strings.Contains(name, "PASSWORD") {
		return "credential", rest
	}
	if f, ok := fields[name]; ok {
		return f, rest
	}
	return "", msg
}

// validKind checks what each kind needs: its credential, an email
// channel's server and sender, and which options belong to it.
func validKind(v *violations, c postgres.Channel, f func(string) string) {
	if c.Settings.APIURL != "" && c.Kind != "telegram" && c.Kind != "slack" && c.Kind != "line" {
		v.Add(f("api_url"), "only for telegram, slack and line channels")
	}
	if c.Kind != "email" && (c.Settings != postgres.Settings{APIURL: c.Settings.APIURL}) {
		v.Add(f("email"), "only for email channels")
	}
	need := map[string]string{
		"telegram": "the bot's token",
		"slack":    "the Slack app's bot token (xoxb-...)",
		"line":     "the Messaging API channel's access token",
		"webhook":  "the secret requests are signed with",
	}
	if what, ok := need[c.Kind]; ok && c.Credential == "" {
		v.Add("credential", "is required: "+what)
	}
	if c.Kind != "email" {
		return
	}
	s := c.Settings
	if s.SMTPHost == "" {
		v.Add(f("email.smtp_host"), "is required")
	}
	if s.From == "" {
		v.Add(f("email.from"), "is required: the sender, e.g. Vigil <vigil@example.com>")
	}
	switch {
	case s.Username != "" && c.Credential == "":
		v.Add("credential", "is required: the SMTP password (email.username is set)")
	case s.Username == "" && c.Credential != "":
		v.Add(f("email.username"), "is required with a credential (the SMTP password)")
	}
}
