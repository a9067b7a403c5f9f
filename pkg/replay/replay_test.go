package replay_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"golang.org/x/sync/errgroup"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/replay"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// replica opens a pool on schema, as one replica of a service does, with
// the table migrated.
func replica(t testing.TB, dsn, schema string) (*replay.Store, *pgxpool.Pool) {
	t.Helper()
	pool, err := db.Open(context.Background(), dsn, schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, replay.Migrate(context.Background(), pool, schema))
	return replay.New(pool, testkit.Logger(t)), pool
}

func count(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	require.NoError(t, pool.QueryRow(context.Background(), "SELECT count(*) FROM spent_assertions").Scan(&n))
	return n
}

// Replicas racing for one id: exactly one of them has it.
func TestSpendOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	until := time.Now().Add(time.Minute)
	stores := make([]*replay.Store, 4)
	for i := range stores {
		stores[i], _ = replica(t, dsn, "monitor")
	}
	var fresh atomic.Int32
	var g errgroup.Group
	for _, s := range stores {
		for range 5 {
			g.Go(func() error {
				ok, err := s.Spend(t.Context(), "0190-jti", until)
				if ok {
					fresh.Add(1)
				}
				return err
			})
		}
	}
	require.NoError(t, g.Wait())
	require.Equal(t, int32(1), fresh.Load())

	ok, err := stores[0].Spend(t.Context(), "0190-other", until)
	require.NoError(t, err)
	require.True(t, ok, "another id is new")
}

func TestPruneDeletesOnlyExpiredIDs(t *testing.T) {
	t.Parallel()
	store, pool := replica(t, testkit.Postgres(t), "deploy")
	now := time.Now()
	for i := range 3 {
		_, err := store.Spend(t.Context(), "old-"+string(rune('a'+i)), now.Add(-time.Second))
		require.NoError(t, err)
	}
	_, err := store.Spend(t.Context(), "live", now.Add(time.Minute))
	require.NoError(t, err)
	n, err := store.Prune(t.Context(), now)
	require.NoError(t, err)
	require.Equal(t, int64(3), n)
	require.Equal(t, 1, count(t, pool))
	ok, err := store.Spend(t.Context(), "live", now.Add(time.Minute))
	require.NoError(t, err)
	require.False(t, ok, "a live id is still spent")
}

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	return pub, priv
}

type credentials interface {
	GetRequestMetadata(ctx context.Context, uri ...string) (map[string]string, error)
}

func bearer(ctx context.Context, t testing.TB, c credentials) string {
	t.Helper()
	md, err := c.GetRequestMetadata(ctx)
	require.NoError(t, err)
	return strings.TrimPrefix(md["authorization"], "Bearer ")
}

// An assertion, the gateway's for a caller or a service's own, is
// accepted once: a second use, at the same replica or another, is
// refused, and records nothing more.
func TestServiceAssertionAcceptedOnce(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	_, gatewayKey := newKey(t)
	keys := auth.NewKeySet(gatewayKey)
	analysisPub, analysisKey := newKey(t)
	store1, pool := replica(t, dsn, "deploy")
	store2, _ := replica(t, dsn, "deploy")
	authn := func(s *replay.Store) auth.ServiceAuthenticator {
		return auth.ServiceAuthenticator{
			Keys: keys.Verifier(), Service: "deploy", Peers: map[string]ed25519.PublicKey{"analysis": analysisPub}, Spent: s,
		}
	}
	alice := auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleOperator, Teams: []string{"shop"}}
	ctx := auth.WithPrincipal(context.Background(), alice)
	tests := []struct {
		name   string
		secret string
		want   auth.Principal
	}{
		{
			name:   "gateway's assertion of a caller",
			secret: bearer(ctx, t, auth.ServiceCredentials{Keys: keys, Service: "deploy"}),
			want:   alice,
		},
		{
			name:   "a service's own assertion",
			secret: bearer(ctx, t, auth.ServiceIdentity{Name: "analysis", Key: analysisKey, Audience: "deploy"}),
			want:   auth.Principal{Kind: auth.KindService, Name: "analysis"},
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := authn(store1).Authenticate(t.Context(), tt.secret)
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
			require.Equal(t, i+1, count(t, pool))

			for _, s := range []*replay.Store{store1, store2} {
				_, err = authn(s).Authenticate(t.Context(), tt.secret)
				require.ErrorIs(t, err, auth.ErrUnauthenticated)
			}
			require.Equal(t, i+1, count(t, pool), "a refused replay records nothing")
		})
	}

	// A forged assertion is refused before anything is recorded.
	_, otherKey := newKey(t)
	forged := bearer(ctx, t, auth.ServiceCredentials{Keys: auth.NewKeySet(otherKey), Service: "deploy"})
	_, err := authn(store1).Authenticate(t.Context(), forged)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	require.Equal(t, len(tests), count(t, pool))
}

// The cost of accepting an assertion once, per call: verification alone
// (no Spender) against verification plus the insert.
func BenchmarkAuthenticateAssertion(b *testing.B) {
	dsn := testkit.Postgres(b)
	_, gatewayKey := newKey(b)
	keys := auth.NewKeySet(gatewayKey)
	store, _ := replica(b, dsn, "monitor")
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Kind: auth.KindUser, Name: "alice", Role: auth.RoleViewer})
	creds := auth.ServiceCredentials{Keys: keys, Service: "monitor"}
	for _, bc := range []struct {
		name  string
		spent auth.Spender
	}{{"verify only", nil}, {"verify and spend", store}} {
		b.Run(bc.name, func(b *testing.B) {
			authn := auth.ServiceAuthenticator{Keys: keys.Verifier(), Service: "monitor", Spent: bc.spent}
			secrets := make([]string, b.N)
			for i := range secrets {
				secrets[i] = bearer(ctx, b, creds)
			}
			b.ResetTimer()
			for i := range b.N {
				if _, err := authn.Authenticate(ctx, secrets[i]); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSpend(b *testing.B) {
	store, _ := replica(b, testkit.Postgres(b), "monitor")
	until := time.Now().Add(time.Minute)
	ids := make([]string, b.N)
	for i := range ids {
		ids[i] = fmt.Sprintf("bench-%d-%d", time.Now().UnixNano(), i)
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := store.Spend(context.Background(), ids[i], until); err != nil {
			b.Fatal(err)
		}
	}
}
