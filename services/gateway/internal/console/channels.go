package console

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vigil-ops/vigil/pkg/auth"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// channelKinds are the kinds of channel notify speaks.
var channelKinds = []string{"telegram", "slack", "line", "email", "webhook"}

func (c *Console) routeChannels() {
	c.mux.HandleFunc("GET /settings/channels", c.channelList)
	c.mux.HandleFunc("POST /settings/channels", c.createChannel)
	c.mux.HandleFunc("GET /settings/channels/{name}", c.channelPage)
	c.mux.HandleFunc("POST /settings/channels/{name}", c.updateChannel)
	c.mux.HandleFunc("POST /settings/channels/{name}/test", c.testChannel)
	c.mux.HandleFunc("POST /settings/channels/{name}/delete", c.deleteChannel)
}

func (c *Console) channelClient() notifyv1.ChannelServiceClient {
	return notifyv1.NewChannelServiceClient(c.opts.Conn)
}

// channelView is a channel as a page shows it. Its credential never
// reaches the console (the API returns only whether one is set), and a
// webhook's URL, which often carries a token of its own, shows only its
// scheme and host: the page has no secret to give away.
type channelView struct {
	*notifyv1.Channel
	Target   string
	APIURL   string
	Secret   bool
	ReadOnly bool
}

func newChannelView(ch *notifyv1.Channel) channelView {
	v := channelView{
		Channel: ch, Target: ch.GetTarget(), APIURL: shownURL(ch.GetApiUrl()), Secret: ch.GetKind() == "webhook",
		ReadOnly: ch.GetSource() == "env",
	}
	if v.Secret {
		v.Target = shownURL(ch.GetTarget())
	}
	return v
}

// shownURL is a URL's scheme and host, its path and query (where tokens
// live: Slack's and many webhooks' URLs are credentials) left out.
func shownURL(raw string) string {
	if raw == "" {
		return ""
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "…"
	}
	shown := u.Scheme + "://" + u.Hostname()
	if u.Port() != "" {
		shown += ":" + u.Port()
	}
	if u.User != nil || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.Fragment != "" {
		shown += "/…"
	}
	return shown
}

// channelsData is the list page's data.
type channelsData struct {
	Channels  []channelView
	CanCreate bool
	Kinds     []string
	Languages []string
	Teams     []string
}

// channelList lists the channels the user may manage (ListChannels is
// for operators: the API refuses viewers, and the page says so).
func (c *Console) channelList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := c.channelClient().ListChannels(withToken(r.Context(), s.access), &notifyv1.ListChannelsRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := channelsData{
		CanCreate: s.canForSomeTeam("/vigil.notify.v1.ChannelService/CreateChannel"),
		Kinds:     channelKinds, Languages: languages, Teams: s.user.GetTeams(),
	}
	for _, ch := range res.GetChannels() {
		d.Channels = append(d.Channels, newChannelView(ch))
	}
	c.render(w, r, s, "channels", http.StatusOK, d)
}

// channelData is one channel's page: the channel, what the user may do
// to it, the result of a test just sent, and the edit form's languages.
type channelData struct {
	channelView
	CanUpdate, CanTest, CanDelete bool
	Test                          *notifyv1.TestChannelResponse
	Languages                     []string
}

// managesChannel is can refined by notify's own rule for channels
// (manage in services/notify/internal/grpcapi), which the policy's team
// check alone does not say: admins manage every channel; an operator a
// channel of a team of theirs and their own personal channels; a
// channel of no team and no person (the environment's too) is the
// admins' alone.
func (s *session) managesChannel(method string, ch *notifyv1.Channel) bool {
	switch {
	case s == nil:
		return false
	case s.p.Has(auth.Admin):
		return s.can(method, ch.GetTeam())
	case ch.GetUser() != "":
		return s.p.Kind == auth.KindUser && s.p.Name == ch.GetUser() && s.p.Has(auth.Policy[method].Permission) &&
			(ch.GetTeam() == "" || s.p.Reaches(ch.GetTeam()))
	case ch.GetTeam() != "":
		return s.can(method, ch.GetTeam())
	}
	return false
}

func (c *Console) channelPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	c.showChannel(w, r, s, nil)
}

func (c *Console) showChannel(w http.ResponseWriter, r *http.Request, s *session, test *notifyv1.TestChannelResponse) {
	res, err := c.channelClient().GetChannel(withToken(r.Context(), s.access), &notifyv1.GetChannelRequest{Name: r.PathValue("name")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	v := newChannelView(res.GetChannel())
	c.render(w, r, s, "channel", http.StatusOK, channelData{
		channelView: v, Test: test, Languages: languages,
		CanUpdate: !v.ReadOnly && s.managesChannel("/vigil.notify.v1.ChannelService/UpdateChannel", v.Channel),
		CanTest:   s.managesChannel("/vigil.notify.v1.ChannelService/TestChannel", v.Channel),
		CanDelete: !v.ReadOnly && s.managesChannel("/vigil.notify.v1.ChannelService/DeleteChannel", v.Channel),
	})
}

// channelForm reads the settings a channel's form posts (all but its
// name, kind and credential).
func channelForm(r *http.Request) *notifyv1.Channel {
	f := func(name string) string { return strings.TrimSpace(r.PostFormValue(name)) }
	ch := &notifyv1.Channel{
		Target: f("target"), Language: f("language"), TimeZone: f("time_zone"), Team: f("team"), User: f("user"),
		ApiUrl: f("api_url"), Templates: f("templates"),
	}
	if f("smtp_host") != "" || f("from") != "" {
		port, _ := strconv.Atoi(f("smtp_port")) // not a number: 0, the API's default port
		ch.Email = &notifyv1.EmailSettings{
			SmtpHost: f("smtp_host"), SmtpPort: int32(min(max(port, 0), 65535)), Tls: f("tls"), Username: f("username"),
			From: f("from"), CaFile: f("ca_file"),
		}
	}
	return ch
}

func (c *Console) createChannel(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		ch := channelForm(r)
		ch.Name, ch.Kind = strings.TrimSpace(r.PostFormValue("name")), r.PostFormValue("kind")
		res, err := c.channelClient().CreateChannel(ctx, &notifyv1.CreateChannelRequest{
			Channel: ch, Credential: r.PostFormValue("credential"), NoTest: r.PostFormValue("no_test") != "",
		})
		if err != nil {
			return "", "", err
		}
		return "/settings/channels/" + url.PathEscape(res.GetChannel().GetName()), "done.channel_created", nil
	})
}

// updateChannel sends what the form changed: a field left as it was is
// not in the mask, an empty credential keeps the stored one, and an
// empty URL of a webhook (never shown, so never filled in) keeps its own.
func (c *Console) updateChannel(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		cur, err := c.channelClient().GetChannel(ctx, &notifyv1.GetChannelRequest{Name: name})
		if err != nil {
			return "", "", err
		}
		old, ch := cur.GetChannel(), channelForm(r)
		ch.Name = name
		var paths []string
		for path, changed := range map[string]bool{
			"target":    ch.GetTarget() != old.GetTarget() && (ch.GetTarget() != "" || old.GetKind() != "webhook"),
			"language":  ch.GetLanguage() != old.GetLanguage(),
			"time_zone": ch.GetTimeZone() != old.GetTimeZone(),
			"team":      ch.GetTeam() != old.GetTeam(),
			"user":      ch.GetUser() != old.GetUser(),
			"api_url":   ch.GetApiUrl() != "" && ch.GetApiUrl() != old.GetApiUrl(),
			"templates": ch.GetTemplates() != old.GetTemplates(),
			"email":     old.GetKind() == "email" && !emailSame(ch.GetEmail(), old.GetEmail()),
		} {
			if changed {
				paths = append(paths, path)
			}
		}
		slices.Sort(paths)
		to := "/settings/channels/" + url.PathEscape(name)
		if len(paths) == 0 && r.PostFormValue("credential") == "" {
			return to, "", nil // nothing changed: nothing to test or store
		}
		_, err = c.channelClient().UpdateChannel(ctx, &notifyv1.UpdateChannelRequest{
			Channel: ch, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths},
			Credential: r.PostFormValue("credential"), NoTest: r.PostFormValue("no_test") != "",
		})
		if err != nil {
			return "", "", err
		}
		return to, "done.channel_updated", nil
	})
}

func emailSame(a, b *notifyv1.EmailSettings) bool {
	return a.GetSmtpHost() == b.GetSmtpHost() && a.GetSmtpPort() == b.GetSmtpPort() && a.GetTls() == b.GetTls() &&
		a.GetUsername() == b.GetUsername() && a.GetFrom() == b.GetFrom() && a.GetCaFile() == b.GetCaFile()
}

// testChannel sends a test message and shows the provider's answer on
// the channel's page.
func (c *Console) testChannel(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	res, err := c.channelClient().TestChannel(withToken(r.Context(), s.access), &notifyv1.TestChannelRequest{Name: r.PathValue("name")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.showChannel(w, r, s, res)
}

func (c *Console) deleteChannel(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := c.channelClient().DeleteChannel(ctx, &notifyv1.DeleteChannelRequest{Name: r.PathValue("name")})
		return "/settings/channels", "done.channel_deleted", err
	})
}
