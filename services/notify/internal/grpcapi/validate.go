package grpcapi

import (
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/registry"
)

// violations collects what is wrong with a request's fields.
type violations struct{ server.BadRequestError }

var (
	dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
	// Telegram: a chat's numeric id, or a public channel's @username.
	telegramChat = regexp.MustCompile(`^(-?[0-9]+|@[A-Za-z][A-Za-z0-9_]{4,31})$`)
	slackChannel = regexp.MustCompile(`^[CGD][A-Z0-9]{2,}$`)
	lineTo       = regexp.MustCompile(`^[UCR][0-9a-f]{32}$`)
)

// validate refuses a channel that could not work, naming every field
// (under prefix) that is wrong; then the kind's own package has its say.
func validate(c postgres.Channel, prefix string) error {
	var v violations
	f := func(name string) string { return prefix + name }
	switch {
	case c.Name == "":
		v.Add(f("name"), "is required")
	case !dnsLabel.MatchString(c.Name):
		v.Addf(f("name"), "%q must be lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit", c.Name)
	case registry.Reserved(c.Name):
		v.Addf(f("name"), "%q is the name of the channel the environment configures (VIGIL_%s_*): choose another", c.Name, strings.ToUpper(c.Name))
	}
	if !slices.Contains(registry.Kinds, c.Kind) {
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
	if c.Target == "" {
		v.Add(f("target"), "is required: "+targetHelp[c.Kind])
	}
	if c.Settings.APIURL != "" && slices.Contains(registry.Kinds, c.Kind) {
		if c.Kind != "telegram" && c.Kind != "slack" && c.Kind != "line" {
			v.Add(f("api_url"), "only for telegram, slack and line channels")
		} else if u, err := url.Parse(c.Settings.APIURL); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u))) {
			v.Add(f("api_url"), "must be an absolute https URL (http only to localhost)")
		}
	}
	if c.Kind != "email" && slices.Contains(registry.Kinds, c.Kind) && (c.Settings != postgres.Settings{APIURL: c.Settings.APIURL}) {
		v.Add(f("email"), "only for email channels")
	}
	validKind(&v, c, f)
	if v.Len() == 0 {
		// What the kind's package refuses besides (its messages name
		// the environment's variables; the fields are the same).
		cfg, err := registry.Config(c)
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			v.Add(strings.TrimSuffix(prefix, "."), err.Error())
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

// validKind checks what each kind needs of its target and credential.
func validKind(v *violations, c postgres.Channel, f func(string) string) {
	needCredential := func(what string) {
		if c.Credential == "" {
			v.Add("credential", "is required: "+what)
		}
	}
	switch c.Kind {
	case "telegram":
		needCredential("the bot's token")
		if c.Target != "" && !telegramChat.MatchString(c.Target) {
			v.Addf(f("target"), "%q: want %s", c.Target, targetHelp[c.Kind])
		}
	case "slack":
		needCredential("the Slack app's bot token (xoxb-...)")
		if c.Credential != "" && !strings.HasPrefix(c.Credential, "xoxb-") {
			v.Add("credential", "want the Slack app's bot token (xoxb-...; OAuth & Permissions → Bot User OAuth Token)")
		}
		if c.Target != "" && !slackChannel.MatchString(c.Target) {
			v.Addf(f("target"), "%q: want %s, not its name", c.Target, targetHelp[c.Kind])
		}
	case "line":
		needCredential("the Messaging API channel's access token")
		if c.Target != "" && !lineTo.MatchString(c.Target) {
			v.Addf(f("target"), "%q: want %s, 33 characters", c.Target, targetHelp[c.Kind])
		}
	case "webhook":
		needCredential("the secret requests are signed with")
		if c.Target != "" {
			if u, err := url.Parse(c.Target); err != nil || u.Host == "" || (u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u))) {
				// The URL may hold a token: it is not repeated.
				v.Add(f("target"), "must be an absolute https URL (http only to localhost)")
			}
		}
	case "email":
		s := c.Settings
		if s.SMTPHost == "" {
			v.Add(f("email.smtp_host"), "is required")
		}
		if s.SMTPPort < 0 || s.SMTPPort > 65535 {
			v.Addf(f("email.smtp_port"), "%d is not a port", s.SMTPPort)
		}
		if !slices.Contains([]string{"", "starttls", "tls", "none"}, s.TLS) {
			v.Addf(f("email.tls"), "%q: want starttls, tls or none", s.TLS)
		}
		if s.From == "" {
			v.Add(f("email.from"), "is required: the sender, e.g. Vigil <vigil@example.com>")
		} else if _, err := mail.ParseAddress(s.From); err != nil {
			v.Addf(f("email.from"), "%q: %v", s.From, err)
		}
		if s.Username != "" {
			needCredential("the SMTP password (email.username is set)")
		} else if c.Credential != "" {
			v.Add(f("email.username"), "is required with a credential (the SMTP password)")
		}
		for _, a := range registry.Addresses(c.Target) {
			if _, err := mail.ParseAddress(a); err != nil {
				v.Addf(f("target"), "%q: %v", a, err)
			}
		}
	}
}
