package registry_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
	"github.com/vigil-ops/vigil/services/notify/internal/registry"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// The set a replica writes to: the environment's channels under their
// kind's name, the stored ones under theirs with their locale; personal
// channels only through Personal; a change seen on the next Load.
func TestRegistry(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "notify")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "notify", db.Sub(postgres.Migrations, "migrations")))
	box, err := seal.New(bytes.Repeat([]byte{1}, seal.KeySize))
	require.NoError(t, err)
	store := postgres.NewChannels(pool, box)
	deps := channel.Deps{Logger: testkit.Logger(t)}

	reg, err := registry.New(store, []channel.Config{
		telegram.Options{BotToken: "1:env", ChatID: "-1001"},
		telegram.Options{}, // off
	}, deps)
	require.NoError(t, err)
	_, err = registry.New(store, []channel.Config{telegram.Options{BotToken: "1:a", ChatID: "-1"}, telegram.Options{BotToken: "1:b", ChatID: "-2"}}, deps)
	require.ErrorContains(t, err, "two channels named telegram")

	for _, c := range []postgres.Channel{
		{Name: "payments-tw", Kind: "telegram", Target: "-1002", Credential: "1:pay", Team: "payments", Language: "zh-TW", TimeZone: "Asia/Taipei"},
		{Name: "olga-line", Kind: "line", Target: "U0123456789abcdef0123456789abcdef", Credential: "line-token", User: "olga"},
		{Name: "tickets", Kind: "webhook", Target: "https://hooks.example.com/x", Credential: "secret"},
	} {
		c.CreatedBy = "user:alice"
		_, err := store.Create(ctx, c)
		require.NoError(t, err)
	}
	require.NoError(t, reg.Load(ctx))

	names := func(eps []*channel.Endpoint) []string {
		var out []string
		for _, ep := range eps {
			out = append(out, ep.Name)
		}
		return out
	}
	assert.Equal(t, []string{"telegram", "payments-tw", "tickets"}, names(reg.All()), "every channel but the personal ones")
	assert.ElementsMatch(t, []string{"telegram", "olga-line", "payments-tw", "tickets"}, names(reg.Endpoints()))
	assert.Equal(t, []string{"olga-line"}, names(reg.Personal("olga")))
	assert.Empty(t, reg.Personal("oscar"))
	assert.Empty(t, reg.Personal(""))
	pay, ok := reg.Channel("payments-tw")
	require.True(t, ok)
	assert.Equal(t, "-1002", pay.Target)
	assert.Equal(t, "zh-TW", pay.Locale.Language)
	assert.Equal(t, "Asia/Taipei", pay.Locale.Zone.String())
	env, ok := reg.Channel("telegram")
	require.True(t, ok)
	assert.Equal(t, "-1001", env.Target)
	_, ok = reg.Channel("nope")
	assert.False(t, ok)
	assert.True(t, registry.Reserved("slack"))
	assert.False(t, registry.Reserved("payments-tw"))

	require.NoError(t, store.Delete(ctx, "tickets"))
	assert.Contains(t, names(reg.All()), "tickets", "until the next load")
	require.NoError(t, reg.Load(ctx))
	assert.NotContains(t, names(reg.All()), "tickets")
}
