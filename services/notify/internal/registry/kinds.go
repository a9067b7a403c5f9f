package registry

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // time zones on hosts (and images) without a zoneinfo database

	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
	"github.com/vigil-ops/vigil/services/notify/channel/slack"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/channel/webhook"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

// Kinds of channel, each also the name of its environment channel.
var Kinds = []string{telegram.Name, slack.Name, email.Name, line.Name, webhook.Name}

// Languages messages are drawn in ("" is English).
var Languages = []string{"en", "zh-TW"}

// Config is stored channel c's options, as its kind's package takes
// them.
func Config(c postgres.Channel) (channel.Config, error) {
	s := c.Settings
	switch c.Kind {
	case telegram.Name:
		return telegram.Options{BotToken: c.Credential, ChatID: c.Target, APIURL: s.APIURL}, nil
	case slack.Name:
		return slack.Options{BotToken: c.Credential, Channel: c.Target, APIURL: s.APIURL}, nil
	case line.Name:
		return line.Options{ChannelToken: c.Credential, To: c.Target, APIURL: s.APIURL}, nil
	case webhook.Name:
		return webhook.Options{URL: c.Target, Secret: c.Credential}, nil
	case email.Name:
		return email.Options{
			Host: s.SMTPHost, Port: s.SMTPPort, TLS: s.TLS, Username: s.Username, Password: c.Credential,
			From: s.From, To: Addresses(c.Target), CAFile: s.CAFile,
		}, nil
	}
	return nil, fmt.Errorf("channel %s: unknown kind %q", c.Name, c.Kind)
}

// Addresses are an email channel's target: addresses, comma-separated.
func Addresses(target string) []string {
	var out []string
	for a := range strings.SplitSeq(target, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Open opens stored channel c: an endpoint named after it, drawing its
// messages in its language and time zone.
func Open(c postgres.Channel, deps channel.Deps) (*channel.Endpoint, error) {
	cfg, err := Config(c)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.Name, err)
	}
	ep, err := cfg.Open(deps)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.Name, err)
	}
	if ep == nil {
		return nil, fmt.Errorf("channel %s: incomplete (no credential or target)", c.Name)
	}
	loc, err := Locale(c.Language, c.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("channel %s: %w", c.Name, err)
	}
	loc.Templates = c.Templates
	ep.Name, ep.Locale = c.Name, loc
	return ep, nil
}

// Locale is the locale of a channel's language and IANA time zone (""
// for UTC).
func Locale(language, zone string) (message.Locale, error) {
	l := message.Locale{Language: language}
	if zone == "" {
		return l, nil
	}
	z, err := time.LoadLocation(zone)
	if err != nil {
		return message.Locale{}, fmt.Errorf("time zone %q: %w", zone, err)
	}
	l.Zone = z
	return l, nil
}
