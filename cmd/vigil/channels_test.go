package main

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// fakeChannels records what the CLI asks of ChannelService.
type fakeChannels struct {
	notifyv1.UnimplementedChannelServiceServer
	mu   sync.Mutex
	reqs []proto.Message
}

func (f *fakeChannels) record(m proto.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, m)
}

func (f *fakeChannels) last() proto.Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[len(f.reqs)-1]
}

func (f *fakeChannels) CreateChannel(_ context.Context, r *notifyv1.CreateChannelRequest) (*notifyv1.CreateChannelResponse, error) {
	f.record(r)
	c := proto.Clone(r.GetChannel()).(*notifyv1.Channel)
	c.Source, c.HasCredential = "api", r.GetCredential() != ""
	return &notifyv1.CreateChannelResponse{Channel: c}, nil
}

func (f *fakeChannels) UpdateChannel(_ context.Context, r *notifyv1.UpdateChannelRequest) (*notifyv1.UpdateChannelResponse, error) {
	f.record(r)
	return &notifyv1.UpdateChannelResponse{Channel: r.GetChannel()}, nil
}

func (f *fakeChannels) ListChannels(context.Context, *notifyv1.ListChannelsRequest) (*notifyv1.ListChannelsResponse, error) {
	return &notifyv1.ListChannelsResponse{Channels: []*notifyv1.Channel{
		{Name: "telegram", Kind: "telegram", Target: "-100123", Source: "env", HasCredential: true},
		{Name: "payments-tw", Kind: "line", Target: "C0123456789abcdef0123456789abcdef", Team: "payments", Language: "zh-TW", TimeZone: "Asia/Taipei", Source: "api"},
	}}, nil
}

func (f *fakeChannels) TestChannel(_ context.Context, r *notifyv1.TestChannelRequest) (*notifyv1.TestChannelResponse, error) {
	if r.GetName() == "broken" {
		return &notifyv1.TestChannelResponse{Error: "Bad Request: chat not found", HttpStatus: 400}, nil
	}
	return &notifyv1.TestChannelResponse{Delivered: true, MessageId: "42"}, nil
}

// serveChannels serves a fakeChannels on loopback for the CLI, signed in
// with a token.
func serveChannels(t *testing.T) (*fakeChannels, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	srv := grpc.NewServer()
	fake := &fakeChannels{}
	notifyv1.RegisterChannelServiceServer(srv, fake)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return fake, lis.Addr().String()
}

// `vigil channels`: credentials come from stdin, a file or the
// environment and reach the API, never an argument; update sends the
// mask of the flags given; a failed test fails the command.
func TestChannelsCommands(t *testing.T) {
	fake, addr := serveChannels(t)

	out, err := runAccess(t, channelsCommand, addr, "123456:bot-token\n",
		"create", "payments-tg", "--kind", "telegram", "--target", "-100999", "--team", "payments", "--language", "zh-TW",
		"--time-zone", "Asia/Taipei", "--credential-file", "-")
	require.NoError(t, err)
	create := fake.last().(*notifyv1.CreateChannelRequest)
	require.Equal(t, "123456:bot-token", create.GetCredential(), "one trailing newline dropped")
	require.Equal(t, []string{"payments-tg", "telegram", "-100999", "payments", "zh-TW", "Asia/Taipei"},
		[]string{
			create.GetChannel().GetName(), create.GetChannel().GetKind(), create.GetChannel().GetTarget(), create.GetChannel().GetTeam(),
			create.GetChannel().GetLanguage(), create.GetChannel().GetTimeZone(),
		})
	require.False(t, create.GetNoTest())
	require.Nil(t, create.GetChannel().GetEmail())
	require.Contains(t, out.stdout, "set (never shown)")
	require.NotContains(t, out.stdout, "bot-token")

	file := filepath.Join(t.TempDir(), "smtp-password")
	require.NoError(t, os.WriteFile(file, []byte("s3cret\n"), 0o600))
	_, err = runAccess(t, channelsCommand, addr, "", "create", "oncall-mail", "--kind", "email", "--target", "a@example.com,b@example.com",
		"--smtp-host", "smtp.example.com", "--smtp-username", "vigil", "--from", "vigil@example.com", "--credential-file", file, "--no-test")
	require.NoError(t, err)
	create = fake.last().(*notifyv1.CreateChannelRequest)
	require.Equal(t, "s3cret", create.GetCredential())
	require.True(t, create.GetNoTest())
	require.Equal(t, "smtp.example.com", create.GetChannel().GetEmail().GetSmtpHost())

	t.Setenv("NEW_SLACK_TOKEN", "xoxb-rotated")
	_, err = runAccess(t, channelsCommand, addr, "", "update", "payments-tg", "--language", "en", "--templates", "terse", "--smtp-host", "x", "--from", "y", "--credential-from-env", "NEW_SLACK_TOKEN")
	require.NoError(t, err)
	update := fake.last().(*notifyv1.UpdateChannelRequest)
	require.Equal(t, "xoxb-rotated", update.GetCredential())
	require.ElementsMatch(t, []string{"language", "templates", "email"}, update.GetUpdateMask().GetPaths())

	_, err = runAccess(t, channelsCommand, addr, "", "update", "payments-tg")
	require.ErrorContains(t, err, "nothing to change")
	_, err = runAccess(t, channelsCommand, addr, "", "create", "x", "--kind", "webhook", "--credential-from-env", "UNSET_VARIABLE_FOR_TEST")
	require.ErrorContains(t, err, "UNSET_VARIABLE_FOR_TEST")

	out, err = runAccess(t, channelsCommand, addr, "", "list")
	require.NoError(t, err)
	require.Regexp(t, `NAME\s+KIND\s+TARGET\s+TEAM\s+USER\s+LANGUAGE\s+TIME ZONE\s+SOURCE`, out.stdout)
	require.Regexp(t, `payments-tw\s+line\s+C0123456789abcdef0123456789abcdef\s+payments\s+-\s+zh-TW\s+Asia/Taipei\s+api`, out.stdout)
	out, err = runAccess(t, channelsCommand, addr, "", "list", "-o", "json")
	require.NoError(t, err)
	var got struct {
		Channels []struct {
			Name   string `json:"name"`
			Source string `json:"source"`
		} `json:"channels"`
	}
	require.NoError(t, json.Unmarshal([]byte(out.stdout), &got), out.stdout)
	require.Len(t, got.Channels, 2)
	require.Equal(t, "env", got.Channels[0].Source)

	out, err = runAccess(t, channelsCommand, addr, "", "test", "ops")
	require.NoError(t, err)
	require.Contains(t, out.stdout, "Test message delivered to ops (message 42)")
	_, err = runAccess(t, channelsCommand, addr, "", "test", "broken")
	require.ErrorContains(t, err, "chat not found")
}

func (f *fakeChannels) ListIncidentMessages(_ context.Context, r *notifyv1.ListIncidentMessagesRequest) (*notifyv1.ListIncidentMessagesResponse, error) {
	f.record(r)
	if r.GetIncidentId() != "inc-1" {
		return nil, status.Error(codes.NotFound, "incident "+r.GetIncidentId()+": notify never announced it")
	}
	return &notifyv1.ListIncidentMessagesResponse{Messages: []*notifyv1.IncidentMessage{
		{Channel: "ops-slack", Kind: "slack", Subject: "incident.opened", Status: "sent", Link: "https://example.slack.com/archives/C0123ABCD/p1700000000000100"},
		{Channel: "telegram", Kind: "telegram", Subject: "incident.opened", Status: "failed", Error: "Bad Request: chat not found"},
	}, NextPageToken: "next"}, nil
}

// `vigil incidents messages ID`: per message its channel, status (with
// the error of one not sent) and link; the page asked for reaches the
// API; an unknown incident fails the command.
func TestIncidentsMessages(t *testing.T) {
	fake, addr := serveChannels(t)

	out, err := runAccess(t, incidentsCommand, addr, "", "messages", "inc-1", "--limit", "2", "--page-token", "tok")
	require.NoError(t, err)
	req := fake.last().(*notifyv1.ListIncidentMessagesRequest)
	require.Equal(t, []any{"inc-1", int32(2), "tok"}, []any{req.GetIncidentId(), req.GetPageSize(), req.GetPageToken()})
	require.Regexp(t, `CHANNEL\s+KIND\s+SUBJECT\s+STATUS\s+WHEN\s+LINK`, out.stdout)
	require.Regexp(t, `ops-slack\s+slack\s+incident.opened\s+sent\s+.*https://example.slack.com/archives/C0123ABCD/p1700000000000100`, out.stdout)
	require.Regexp(t, `telegram\s+telegram\s+incident.opened\s+failed: Bad Request: chat not found\s+.*-\n`, out.stdout)
	require.Contains(t, out.stdout, "More: --page-token next")

	_, err = runAccess(t, incidentsCommand, addr, "", "messages", "nope")
	require.ErrorContains(t, err, "NotFound")
}
