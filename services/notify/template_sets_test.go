package notify_test

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/route"
)

// templateDir is a VIGIL_NOTIFY_TEMPLATES_DIR with two template sets,
// terse and loud, that each change the opened message.
func templateDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for set, text := range map[string]string{
		"terse": `{{with .Incident}}TERSE {{.Title}}{{end}}`,
		"loud":  `{{with .Incident}}LOUD {{bold .Title}}{{end}}`,
	} {
		require.NoError(t, os.Mkdir(filepath.Join(dir, set), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(dir, set, "incident.opened.en.tmpl"), []byte(text), 0o600))
	}
	return dir
}

// Two channels hear the same incident: the one naming the terse set gets
// its words, the other Vigil's. A route's set wins over the channel's. A
// channel or a route naming a set that is not loaded is refused with its
// field, and nothing is stored.
func TestTemplateSetsPerChannelAndRoute(t *testing.T) {
	t.Parallel()
	e := newTwoChatEnv(t, "")
	e.opts.TemplatesDir, e.opts.ChannelRefresh, e.opts.EncryptionKey = templateDir(t), 100*time.Millisecond, keyFor()
	s, err := notify.New(context.Background(), e.opts, notify.Deps{Pool: e.pool, JetStream: e.js, Logger: testkit.Logger(t)})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { assert.NoError(t, s.Run(ctx)) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	api, routes := s.ChannelServer(), s.RouteServer()

	bad := e.telegramChannel("shouty-tg", chatID)
	bad.Channel.Templates = "shouty"
	_, err = api.CreateChannel(as(admin), bad)
	requireViolations(t, err, "channel.templates")
	require.Zero(t, e.storedChannels(t), "nothing stored")

	_, err = api.CreateChannel(as(admin), e.telegramChannel("plain-tg", chatID))
	require.NoError(t, err)
	terse := e.telegramChannel("terse-tg", secondChat)
	terse.Channel.Templates = "terse"
	created, err := api.CreateChannel(as(admin), terse)
	require.NoError(t, err)
	require.Equal(t, "terse", created.GetChannel().GetTemplates())
	e.tg.WaitForMessages(t, 2, 10*time.Second) // the test messages

	byChat := func(msgs []string, chats []string, chat string) string {
		for i, c := range chats {
			if c == chat {
				return msgs[i]
			}
		}
		return ""
	}
	waitFor := func(n int) (texts, chats []string) {
		for _, m := range e.tg.WaitForMessages(t, n, 30*time.Second)[n-2:] {
			texts, chats = append(texts, m.PlainText), append(chats, m.ChatID)
		}
		return texts, chats
	}
	e.publish(t, opened())
	texts, chats := waitFor(4)
	assert.Equal(t, "TERSE DiskFull in <prod>", byChat(texts, chats, secondChat), "the channel's set")
	assert.Contains(t, byChat(texts, chats, chatID), "Incident opened: DiskFull in <prod>", "Vigil's own")

	doc := func(set string) *notifyv1.RoutingConfig {
		cfg, err := route.Parse([]byte(`
route:
  receivers: [plain-tg, terse-tg]
  routes:
    - severities: [warning]
      templates: ` + set + `
`))
		require.NoError(t, err)
		return cfg
	}
	_, err = routes.ApplyRoutes(context.Background(), &notifyv1.ApplyRoutesRequest{Config: doc("shouty")})
	requireViolations(t, err, "route.routes[0].templates")
	got, err := routes.GetRoutes(context.Background(), &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.Nil(t, got.GetCurrent(), "nothing applied")
	_, err = routes.ApplyRoutes(context.Background(), &notifyv1.ApplyRoutesRequest{Config: doc("loud")})
	require.NoError(t, err)

	warning := &eventsv1.IncidentOpened{Meta: bus.NewMeta("monitor", nil), Incident: &typesv1.Incident{
		Id: bus.NewID(), Title: "SlowDisk in prod", Severity: typesv1.Severity_SEVERITY_WARNING, FiringCount: 1,
	}}
	e.publish(t, warning)
	texts, chats = waitFor(6)
	assert.Equal(t, "LOUD SlowDisk in prod", byChat(texts, chats, secondChat), "the route's set over the channel's")
	assert.Equal(t, "LOUD SlowDisk in prod", byChat(texts, chats, chatID), "the route's set over the default")
}
