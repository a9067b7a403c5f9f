package access_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// fastParams make hashing cheap for tests that log in many times; one
// test checks what users really get (TestCreateUserUsesDefaultParams).
var fastParams = access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

const (
	adminToken = "s3cret-bootstrap-token"
	password   = "correct horse battery"
)

// t0 is when each test's clock starts.
var t0 = time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)

// clock is the service's clock, moved by the test.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type env struct {
	svc   *access.Service
	store *postgres.Store
	pool  *pgxpool.Pool
	clock *clock
}

// newEnv returns an access service over a fresh, migrated gateway
// schema, on a clock at t0.
func newEnv(t testing.TB, opts access.Options) *env {
	t.Helper()
	return newEnvWithHasher(t, opts, access.NewHasher(fastParams, 4))
}

func newEnvWithHasher(t testing.TB, opts access.Options, h *access.Hasher) *env {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, testkit.Postgres(t), "gateway")
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, "gateway", db.Sub(postgres.Migrations, "migrations")))
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	c := &clock{now: t0}
	opts.Now = c.Now
	store := postgres.New(pool)
	svc := access.New(opts, store, auth.NewKeySet(priv), h, auth.AdminToken(adminToken), testkit.Logger(t))
	return &env{svc: svc, store: store, pool: pool, clock: c}
}

func (e *env) createUser(t *testing.T, name string, role auth.Role, teams ...string) access.User {
	t.Helper()
	u, err := e.svc.CreateUser(context.Background(), access.User{Name: name, Role: role, Teams: teams}, password)
	require.NoError(t, err)
	return u
}

func (e *env) login(t *testing.T, name string) access.Tokens {
	t.Helper()
	tok, _, err := e.svc.Login(context.Background(), name, password, "")
	require.NoError(t, err)
	return tok
}

// principal authenticates secret, which must be accepted.
func (e *env) principal(t *testing.T, secret string) auth.Principal {
	t.Helper()
	p, err := e.svc.Authenticate(context.Background(), secret)
	require.NoError(t, err)
	return p
}

// refused checks secret is not accepted.
func (e *env) refused(t *testing.T, secret, why string) {
	t.Helper()
	_, err := e.svc.Authenticate(context.Background(), secret)
	require.ErrorIs(t, err, auth.ErrUnauthenticated, why)
}

func bootstrap(t *testing.T) auth.Principal {
	t.Helper()
	p, err := auth.AdminToken(adminToken).Authenticate(context.Background(), adminToken)
	require.NoError(t, err)
	return p
}

// invalidFields returns the fields of the violations in err.
func invalidFields(err error) []string {
	var out []string
	var bad *server.BadRequestError
	if errors.As(err, &bad) {
		for _, v := range bad.Violations {
			out = append(out, v.Field)
		}
	}
	return out
}

func TestBootstrapToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{})
	require.Equal(t, bootstrap(t), e.principal(t, adminToken))
	e.refused(t, "s3cret-bootstrap-tokem", "a near miss")
	e.refused(t, "", "nothing")
	e.refused(t, "vgk_unknown", "an unknown key")
	e.refused(t, "eyJhbGciOiJFZERTQSJ9.e30.AAAA", "a token nobody signed")
}
