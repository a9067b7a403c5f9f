package notify_test

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	"github.com/vigil-ops/vigil/pkg/auth"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

// secondChat is another chat of the fake Telegram bot.
const secondChat = "-1009876543210"

var (
	admin  = auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleAdmin, AllTeams: true, Unowned: true}
	olga   = auth.Principal{Kind: auth.KindUser, Name: "olga", Role: auth.RoleOperator, Teams: []string{"payments"}}
	oscar  = auth.Principal{Kind: auth.KindUser, Name: "oscar", Role: auth.RoleOperator, Teams: []string{"web"}}
	keyFor = func() []byte { return bytes.Repeat([]byte{7}, 32) }
)

func as(p auth.Principal) context.Context { return auth.WithPrincipal(context.Background(), p) }

// replica starts a notify on e's database and bus (run: consuming
// events too) and returns its ChannelService.
func (e *env) replica(t *testing.T, run bool) notifyv1.ChannelServiceServer {
	t.Helper()
	return e.replicaWith(t, run, keyFor())
}

// replicaWith is a replica sealing with key (nil: none).
func (e *env) replicaWith(t *testing.T, run bool, key []byte) notifyv1.ChannelServiceServer {
	t.Helper()
	opts := e.opts
	opts.EncryptionKey, opts.ChannelRefresh = key, 100*time.Millisecond
	s, err := notify.New(context.Background(), opts, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t)})
	require.NoError(t, err)
	if run {
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { assert.NoError(t, s.Run(ctx)) })
		t.Cleanup(func() { cancel(); wg.Wait() })
	}
	return s.ChannelServer()
}

// newTwoChatEnv is an env whose bot knows two chats, and no channel of
// the environment unless tgChat is set.
func newTwoChatEnv(t *testing.T, tgChat string) *env {
	t.Helper()
	e := newEnv(t, "", "")
	e.tg = faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID, secondChat}})
	if tgChat != "" {
		e.opts.Channels = append(e.opts.Channels, telegram.Options{BotToken: e.tg.Token(), ChatID: tgChat, APIURL: e.tg.URL()})
	}
	return e
}

func (e *env) telegramChannel(name, chat string) *notifyv1.CreateChannelRequest {
	return &notifyv1.CreateChannelRequest{
		Channel:    &notifyv1.Channel{Name: name, Kind: "telegram", Target: chat, ApiUrl: e.tg.URL()},
		Credential: e.tg.Token(),
	}
}

func (e *env) storedChannels(t *testing.T) int {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM channels`).Scan(&n))
	return n
}

// Created, a channel is sent a test message in its language and time
// zone; its credential is sealed in the database and never returned.
func TestCreateChannelTestsAndSealsIt(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	api := e.replica(t, false)

	req := e.telegramChannel("ops-tw", chatID)
	req.Channel.Language, req.Channel.TimeZone, req.Channel.Team = "zh-TW", "Asia/Taipei", "payments"
	created, err := api.CreateChannel(as(admin), req)
	require.NoError(t, err)
	msg := e.tg.WaitForMessages(t, 1, 10*time.Second)[0]
	assert.Equal(t, chatID, msg.ChatID)
	assert.Contains(t, msg.PlainText, "Vigil 測試訊息")
	assert.Contains(t, msg.PlainText, "ops-tw")
	assert.Contains(t, msg.PlainText, "CST", "the time is Taipei's")
	assert.Equal(t, "user:alice", created.GetChannel().GetCreatedBy())

	got, err := api.GetChannel(as(admin), &notifyv1.GetChannelRequest{Name: "ops-tw"})
	require.NoError(t, err)
	c := got.GetChannel()
	assert.Equal(t, []string{"telegram", chatID, "zh-TW", "Asia/Taipei", "payments", "api"},
		[]string{c.GetKind(), c.GetTarget(), c.GetLanguage(), c.GetTimeZone(), c.GetTeam(), c.GetSource()})
	assert.True(t, c.GetHasCredential())
	list, err := api.ListChannels(as(admin), &notifyv1.ListChannelsRequest{})
	require.NoError(t, err)
	for _, m := range []interface{ String() string }{got, list, created} {
		assert.NotContains(t, m.String(), e.tg.Token(), "the credential is never returned")
	}

	// In the row: sealed, bound to the channel.
	var sealed, settings []byte
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT credential, settings::text FROM channels WHERE name = 'ops-tw'`).Scan(&sealed, &settings))
	require.NotEmpty(t, sealed)
	assert.NotContains(t, string(sealed), e.tg.Token())
	assert.NotContains(t, string(settings), e.tg.Token())
}

// A channel whose test message the provider refuses is not stored, and
// the refusal says why.
func TestFailedTestRefusesCreate(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	api := e.replica(t, false)

	_, err := api.CreateChannel(as(admin), e.telegramChannel("nowhere", "-1005555555555"))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "chat not found")
	assert.NotContains(t, status.Convert(err).Message(), e.tg.Token(), "the provider's answer without the credential")
	assert.Zero(t, e.storedChannels(t))
	assert.Empty(t, e.tg.Messages())

	// A webhook that answers 500: refused too.
	sink := fakewebhook.New(t, "hook-secret")
	sink.Fail(500)
	_, err = api.CreateChannel(as(admin), &notifyv1.CreateChannelRequest{
		Channel: &notifyv1.Channel{Name: "broken-hook", Kind: "webhook", Target: sink.URL}, Credential: "hook-secret",
	})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.Zero(t, e.storedChannels(t))
}

// Webhook and email channels take their test message through the real
// protocol: signed JSON, SMTP.
func TestCreateWebhookAndEmailChannels(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", "")
	api := e.replica(t, false)
	sink := fakewebhook.New(t, "hook-secret")
	_, err := api.CreateChannel(as(admin), &notifyv1.CreateChannelRequest{
		Channel: &notifyv1.Channel{Name: "tickets", Kind: "webhook", Target: sink.URL}, Credential: "hook-secret",
	})
	require.NoError(t, err)
	assert.Contains(t, sink.WaitFor(t, 1, 10*time.Second)[0].Body.Text, "Vigil test message")

	relay := fakesmtp.Start(t, fakesmtp.Options{})
	_, err = api.CreateChannel(as(admin), &notifyv1.CreateChannelRequest{Channel: &notifyv1.Channel{
		Name: "oncall-mail", Kind: "email", Target: "oncall@example.com, lead@example.com",
		Email: &notifyv1.EmailSettings{
			SmtpHost: relay.Host, SmtpPort: int32(relay.Port), Tls: "starttls", CaFile: relay.CAFile(t), //nolint:gosec // a port
			Username: fakesmtp.User, From: "Vigil <vigil@ops.example.com>",
		},
	}, Credential: fakesmtp.Password})
	require.NoError(t, err)
	mail := relay.WaitForMessages(t, 1, 10*time.Second)[0]
	assert.ElementsMatch(t, []string{"oncall@example.com", "lead@example.com"}, mail.RcptTo)
	assert.Contains(t, mail.Text, "oncall-mail")
}

// Two Telegram chats, each a channel: both hear about an incident, each
// under its own name in the delivery log; a personal channel does not.
func TestTwoChannelsOfOneKindBothHear(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	api := e.replica(t, true)
	_, err := api.CreateChannel(as(admin), e.telegramChannel("payments-tg", chatID))
	require.NoError(t, err)
	_, err = api.CreateChannel(as(admin), e.telegramChannel("web-tg", secondChat))
	require.NoError(t, err)
	personal := e.telegramChannel("alice-tg", secondChat)
	personal.Channel.User, personal.NoTest = "alice", true
	_, err = api.CreateChannel(as(admin), personal)
	require.NoError(t, err)
	e.tg.WaitForMessages(t, 2, 10*time.Second) // the test messages

	inc := opened()
	e.publish(t, inc)
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)
	var chats []string
	for _, m := range msgs[2:] {
		assert.Contains(t, m.PlainText, "DiskFull in <prod>")
		chats = append(chats, m.ChatID)
	}
	assert.ElementsMatch(t, []string{chatID, secondChat}, chats)
	require.Eventually(t, func() bool {
		return len(e.attemptsOn(t, inc.GetMeta().GetId(), "payments-tg")) == 1 && len(e.attemptsOn(t, inc.GetMeta().GetId(), "web-tg")) == 1
	}, 10*time.Second, 20*time.Millisecond)
	assert.Empty(t, e.attemptsOn(t, inc.GetMeta().GetId(), "alice-tg"), "a personal channel hears only what is meant for its person")
	assert.Len(t, e.tg.Messages(), 4)
}

// A channel created through one replica is used by another; deleted
// through the first, the other stops sending to it. The environment's
// channel goes on throughout.
func TestChannelsReachEveryReplica(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, chatID)
	first := e.replica(t, false) // serves the API, sends nothing
	e.replica(t, true)

	_, err := first.CreateChannel(as(admin), e.telegramChannel("second-chat", secondChat))
	require.NoError(t, err)
	// Events until the second replica sends one to the new channel (the
	// first events may go out before it reloaded).
	require.Eventually(t, func() bool {
		inc := opened()
		e.publish(t, inc)
		require.Eventually(t, func() bool { return len(e.attemptsOn(t, inc.GetMeta().GetId(), "telegram")) == 1 }, 20*time.Second, 20*time.Millisecond)
		return len(e.attemptsOn(t, inc.GetMeta().GetId(), "second-chat")) == 1
	}, 30*time.Second, 10*time.Millisecond)

	_, err = first.DeleteChannel(as(admin), &notifyv1.DeleteChannelRequest{Name: "second-chat"})
	require.NoError(t, err)
	// An event queued without a delivery for the deleted channel: the
	// second replica reloaded. (Queued, not yet sent: an event's
	// deliveries are queued in one transaction, the environment's
	// channel's with the others.)
	queued := func() string {
		inc := opened()
		e.publish(t, inc)
		id := inc.GetMeta().GetId()
		require.Eventually(t, func() bool { return e.queuedOn(t, id, "telegram") }, 20*time.Second, 20*time.Millisecond)
		return id
	}
	require.Eventually(t, func() bool { return !e.queuedOn(t, queued(), "second-chat") }, 30*time.Second, 10*time.Millisecond)
	// Once reloaded, for good.
	id := queued()
	assert.False(t, e.queuedOn(t, id, "second-chat"))
	require.Eventually(t, func() bool { return len(e.attemptsOn(t, id, "telegram")) == 1 }, 20*time.Second, 20*time.Millisecond)
	assert.Empty(t, e.attemptsOn(t, id, "second-chat"))
}

// queuedOn reports whether a delivery of the event was queued for chat,
// whatever became of it since.
func (e *env) queuedOn(t *testing.T, eventID, chat string) bool {
	t.Helper()
	var n int
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT count(*) FROM deliveries WHERE event_id = $1 AND channel = $2`, eventID, chat).Scan(&n))
	return n == 1
}

// The environment's channels are listed, read-only, under their kind's
// name, which no stored channel may take.
func TestEnvChannelsAreReadOnlyAndCannotBeShadowed(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, chatID)
	api := e.replica(t, false)

	list, err := api.ListChannels(as(admin), &notifyv1.ListChannelsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetChannels(), 1)
	env := list.GetChannels()[0]
	assert.Equal(t, []string{"telegram", "telegram", chatID, "env"}, []string{env.GetName(), env.GetKind(), env.GetTarget(), env.GetSource()})

	_, err = api.CreateChannel(as(admin), e.telegramChannel("telegram", secondChat))
	requireViolations(t, err, "channel.name")
	_, err = api.DeleteChannel(as(admin), &notifyv1.DeleteChannelRequest{Name: "telegram"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	_, err = api.UpdateChannel(as(admin), &notifyv1.UpdateChannelRequest{
		Channel: &notifyv1.Channel{Name: "telegram", Target: secondChat}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"target"}},
	})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.Zero(t, e.storedChannels(t))
	assert.Empty(t, e.tg.Messages())

	// The environment's channel can be tested.
	res, err := api.TestChannel(as(admin), &notifyv1.TestChannelRequest{Name: "telegram"})
	require.NoError(t, err)
	assert.True(t, res.GetDelivered())
}

// Admins manage every channel; an operator their teams' channels and
// their own personal ones, and lists only those.
func TestChannelAccess(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, chatID)
	api := e.replica(t, false)
	channel := func(name, team, user string) *notifyv1.CreateChannelRequest {
		r := e.telegramChannel(name, secondChat)
		r.Channel.Team, r.Channel.User, r.NoTest = team, user, true
		return r
	}

	for _, tc := range []struct {
		name string
		who  auth.Principal
		req  *notifyv1.CreateChannelRequest
		code codes.Code
	}{
		{"operator, own team", olga, channel("pay", "payments", ""), codes.OK},
		{"operator, own person", olga, channel("olga-phone", "", "olga"), codes.OK},
		{"operator, other team", oscar, channel("pay-2", "payments", ""), codes.PermissionDenied},
		{"operator, another person", olga, channel("oscar-phone", "", "oscar"), codes.PermissionDenied},
		{"operator, Vigil-wide", olga, channel("everyone", "", ""), codes.PermissionDenied},
		{"admin, Vigil-wide", admin, channel("all-hands", "", ""), codes.OK},
	} {
		_, err := api.CreateChannel(as(tc.who), tc.req)
		require.Equal(t, tc.code, status.Code(err), "%s: %v", tc.name, err)
		_, err = api.GetChannel(as(admin), &notifyv1.GetChannelRequest{Name: tc.req.GetChannel().GetName()})
		if tc.code != codes.OK {
			require.Equal(t, codes.NotFound, status.Code(err), "%s: nothing stored", tc.name)
		}
	}

	names := func(p auth.Principal) []string {
		list, err := api.ListChannels(as(p), &notifyv1.ListChannelsRequest{})
		require.NoError(t, err)
		var out []string
		for _, c := range list.GetChannels() {
			out = append(out, c.GetName())
		}
		return out
	}
	assert.ElementsMatch(t, []string{"pay", "olga-phone"}, names(olga))
	assert.Empty(t, names(oscar))
	assert.ElementsMatch(t, []string{"telegram", "pay", "olga-phone", "all-hands"}, names(admin))

	// Not another team's channel, nor moving one's own there.
	_, err := api.DeleteChannel(as(oscar), &notifyv1.DeleteChannelRequest{Name: "pay"})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.UpdateChannel(as(olga), &notifyv1.UpdateChannelRequest{
		Channel: &notifyv1.Channel{Name: "pay", Team: "web"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"team"}}, NoTest: true,
	})
	require.Equal(t, codes.PermissionDenied, status.Code(err))
	_, err = api.TestChannel(as(olga), &notifyv1.TestChannelRequest{Name: "telegram"})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "the environment's channels are admins'")
	got, err := api.GetChannel(as(admin), &notifyv1.GetChannelRequest{Name: "pay"})
	require.NoError(t, err)
	assert.Equal(t, "payments", got.GetChannel().GetTeam())
	_, err = api.DeleteChannel(as(olga), &notifyv1.DeleteChannelRequest{Name: "pay"})
	require.NoError(t, err)
}

// An update changes what its mask names; a new credential is tested
// before it replaces the old one, which a failed test leaves in place.
func TestUpdateChannel(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	api := e.replica(t, false)
	_, err := api.CreateChannel(as(admin), e.telegramChannel("ops", chatID))
	require.NoError(t, err)

	_, err = api.UpdateChannel(as(admin), &notifyv1.UpdateChannelRequest{
		Channel: &notifyv1.Channel{Name: "ops"}, Credential: "123456:not-the-bots-token",
	})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.NotContains(t, status.Convert(err).Message(), "not-the-bots-token")
	res, err := api.TestChannel(as(admin), &notifyv1.TestChannelRequest{Name: "ops"})
	require.NoError(t, err)
	require.True(t, res.GetDelivered(), "the old credential is still the channel's: %s", res.GetError())

	up, err := api.UpdateChannel(as(olga), &notifyv1.UpdateChannelRequest{
		Channel: &notifyv1.Channel{Name: "ops", Target: secondChat}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"target"}},
	})
	require.Equal(t, codes.PermissionDenied, status.Code(err), "a Vigil-wide channel is admins': %v", up)
	up, err = api.UpdateChannel(as(admin), &notifyv1.UpdateChannelRequest{
		Channel:    &notifyv1.Channel{Name: "ops", Target: secondChat, Language: "zh-TW", Kind: "ignored"},
		UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"target", "language"}}, Credential: e.tg.Token(),
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"telegram", secondChat, "zh-TW", "user:alice"},
		[]string{up.GetChannel().GetKind(), up.GetChannel().GetTarget(), up.GetChannel().GetLanguage(), up.GetChannel().GetUpdatedBy()})
	last := e.tg.Messages()[len(e.tg.Messages())-1]
	assert.Equal(t, secondChat, last.ChatID)
	assert.Contains(t, last.PlainText, "測試訊息")
}

// A replica whose key does not open a channel's credential (another key,
// or none) still starts and serves the others; it does not use the
// channel, cannot test it, and a change of it needs the credential anew.
func TestChannelSealedUnderAnotherKey(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	_, err := e.replica(t, false).CreateChannel(as(admin), e.telegramChannel("ops", chatID))
	require.NoError(t, err)

	noKey := e.replicaWith(t, false, nil)
	_, err = noKey.CreateChannel(as(admin), e.telegramChannel("other", secondChat))
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	assert.Contains(t, status.Convert(err).Message(), "VIGIL_ENCRYPTION_KEY")

	other := e.replicaWith(t, false, bytes.Repeat([]byte{9}, 32))
	got, err := other.GetChannel(as(admin), &notifyv1.GetChannelRequest{Name: "ops"})
	require.NoError(t, err)
	assert.True(t, got.GetChannel().GetHasCredential())
	_, err = other.TestChannel(as(admin), &notifyv1.TestChannelRequest{Name: "ops"})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	_, err = other.UpdateChannel(as(admin), &notifyv1.UpdateChannelRequest{
		Channel: &notifyv1.Channel{Name: "ops", Language: "zh-TW"}, UpdateMask: &fieldmaskpb.FieldMask{Paths: []string{"language"}},
	})
	require.Equal(t, codes.FailedPrecondition, status.Code(err), "%v", err)
	_, err = other.UpdateChannel(as(admin), &notifyv1.UpdateChannelRequest{Channel: &notifyv1.Channel{Name: "ops"}, Credential: e.tg.Token()})
	require.NoError(t, err, "sealed anew under this replica's key")
	res, err := other.TestChannel(as(admin), &notifyv1.TestChannelRequest{Name: "ops"})
	require.NoError(t, err)
	assert.True(t, res.GetDelivered())
}

// Bad input is refused with the fields to fix, and nothing is stored.
func TestCreateChannelBadInput(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	api := e.replica(t, false)
	ok := func() *notifyv1.CreateChannelRequest { return e.telegramChannel("fine", chatID) }

	for _, tc := range []struct {
		name   string
		change func(*notifyv1.CreateChannelRequest)
		fields []string
	}{
		{"unknown kind", func(r *notifyv1.CreateChannelRequest) { r.Channel.Kind = "pager" }, []string{"channel.kind"}},
		{"bad name", func(r *notifyv1.CreateChannelRequest) { r.Channel.Name = "Ops Chat" }, []string{"channel.name"}},
		{"no name", func(r *notifyv1.CreateChannelRequest) { r.Channel.Name = "" }, []string{"channel.name"}},
		{"bad time zone", func(r *notifyv1.CreateChannelRequest) { r.Channel.TimeZone = "Mars/Olympus" }, []string{"channel.time_zone"}},
		{"bad language", func(r *notifyv1.CreateChannelRequest) { r.Channel.Language = "fr" }, []string{"channel.language"}},
		{"missing target", func(r *notifyv1.CreateChannelRequest) { r.Channel.Target = "" }, []string{"channel.target"}},
		{"missing credential", func(r *notifyv1.CreateChannelRequest) { r.Credential = "" }, []string{"credential"}},
		{"slack channel name", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target, r.Credential = "slack", "#alerts", "xoxb-1"
		}, []string{"channel.target"}},
		{"webhook over http", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target, r.Channel.ApiUrl = "webhook", "http://hooks.example.com/x", ""
		}, []string{"channel.target"}},
		{"email without server", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target, r.Channel.ApiUrl, r.Credential = "email", "not an address", "", ""
		}, []string{"channel.email.smtp_host", "channel.email.from"}},
		{"email to no address", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target, r.Channel.ApiUrl, r.Credential = "email", "not an address", "", ""
			r.Channel.Email = &notifyv1.EmailSettings{SmtpHost: "smtp.example.com", From: "vigil@example.com"}
		}, []string{"channel.target"}},
		{"slack token of a user", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target, r.Credential = "slack", "C0123ABCD", "xoxp-1"
		}, []string{"credential"}},
		{"telegram settings on a webhook", func(r *notifyv1.CreateChannelRequest) {
			r.Channel.Kind, r.Channel.Target = "webhook", "https://hooks.example.com/x"
		}, []string{"channel.api_url"}},
	} {
		r := ok()
		tc.change(r)
		_, err := api.CreateChannel(as(admin), r)
		requireViolations(t, err, tc.fields...)
	}
	assert.Zero(t, e.storedChannels(t))
	assert.Empty(t, e.tg.Messages(), "no test message for a refused channel")
}

// requireViolations: err is InvalidArgument naming exactly fields.
func requireViolations(t *testing.T, err error, fields ...string) {
	t.Helper()
	st := status.Convert(err)
	require.Equal(t, codes.InvalidArgument, st.Code(), "%v", err)
	var got []string
	for _, v := range server.Violations(st) {
		got = append(got, v.Field)
	}
	require.ElementsMatch(t, fields, got, "%v", err)
}

// A stored channel that names no language or zone speaks notify's default
// (VIGIL_LANGUAGE, VIGIL_TIME_ZONE), in its test message and its
// messages; one that names English keeps it.
func TestStoredChannelWithoutLanguageSpeaksTheDefault(t *testing.T) {
	t.Parallel()
	taipei, err := time.LoadLocation("Asia/Taipei")
	require.NoError(t, err)
	e := newTwoChatEnv(t, "")
	e.opts.Language, e.opts.TimeZone = "zh-TW", taipei
	api := e.replica(t, true)

	_, err = api.CreateChannel(as(admin), e.telegramChannel("default-chat", chatID))
	require.NoError(t, err)
	english := e.telegramChannel("english-chat", secondChat)
	english.Channel.Language = "en"
	_, err = api.CreateChannel(as(admin), english)
	require.NoError(t, err)
	tests := e.tg.WaitForMessages(t, 2, 10*time.Second)
	assert.Contains(t, tests[0].PlainText, "Vigil 測試訊息")
	assert.Contains(t, tests[0].PlainText, "CST", "the time is Taipei's")
	assert.Contains(t, tests[1].PlainText, "Vigil test message")

	e.publish(t, opened())
	msgs := e.tg.WaitForMessages(t, 4, 30*time.Second)[2:]
	byChat := map[string]string{}
	for _, m := range msgs {
		byChat[m.ChatID] = m.PlainText
	}
	assert.Contains(t, byChat[chatID], "事件發生：DiskFull in <prod>")
	assert.Contains(t, byChat[secondChat], "Incident opened: DiskFull in <prod>")
}
