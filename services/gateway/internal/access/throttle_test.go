package access_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// throttled checks a login is refused before its password is checked:
// every hash slot is held, so a login that reached the check would wait
// for ctx's end instead.
func (e *env) throttled(t *testing.T, h *access.Hasher, name, pw, from, reason string) time.Duration {
	t.Helper()
	release := h.Hold()
	defer release()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, _, err := e.svc.Login(ctx, name, pw, from)
	var th *access.ThrottledError
	require.ErrorAs(t, err, &th, "want a refusal before the password check")
	require.Contains(t, th.Reason, reason)
	return th.RetryAfter
}

func (e *env) wrong(t *testing.T, name, from string) {
	t.Helper()
	_, _, err := e.svc.Login(context.Background(), name, "not the password", from)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
}

// A name that failed too often is locked, whoever tries it and from
// wherever, before any password is checked: even the right one. The lock
// doubles with each failure after, and a login forgets the failures.
func TestLoginThrottledPerUser(t *testing.T) {
	t.Parallel()
	h := access.NewHasher(fastParams, 2)
	e := newEnvWithHasher(t, access.Options{Login: access.LoginLimits{UserFailures: 3, LockBase: time.Minute, LockMax: 5 * time.Minute}}, h)
	e.createUser(t, "alice", auth.RoleOperator, "payments")
	e.createUser(t, "bob", auth.RoleViewer)
	for i, from := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		e.wrong(t, "alice", from)
		if i < 2 {
			e.login(t, "bob") // others are not held up
		}
	}
	require.Equal(t, time.Minute, e.throttled(t, h, "alice", password, "192.0.2.99", "too many failed logins for alice"))
	e.clock.Advance(30 * time.Second)
	require.Equal(t, 30*time.Second, e.throttled(t, h, "alice", password, "", "for alice"))
	// Nothing changed for alice: no session, no login recorded.
	var sessions int
	require.NoError(t, e.pool.QueryRow(context.Background(), `SELECT count(*) FROM sessions WHERE user_name = 'alice'`).Scan(&sessions))
	require.Zero(t, sessions)
	u, err := e.svc.User(context.Background(), "alice")
	require.NoError(t, err)
	require.True(t, u.LastLogin.IsZero())

	// A name nobody has is locked the same way.
	for range 3 {
		e.wrong(t, "mallory", "192.0.2.7")
	}
	e.throttled(t, h, "mallory", password, "192.0.2.8", "for mallory")

	// After the lock, one more failure locks for twice as long, and so on
	// up to LockMax.
	for _, want := range []time.Duration{2 * time.Minute, 4 * time.Minute, 5 * time.Minute, 5 * time.Minute} {
		e.clock.Advance(6 * time.Minute)
		e.wrong(t, "alice", "192.0.2.4")
		require.Equal(t, want, e.throttled(t, h, "alice", password, "192.0.2.5", "for alice"))
	}
	// A login after the lock forgets the failures.
	e.clock.Advance(6 * time.Minute)
	e.login(t, "alice")
	e.wrong(t, "alice", "192.0.2.4")
	e.login(t, "alice")
}

// An address that failed too often is refused before any password is
// checked, for any name; other addresses are not held up, and a login
// that succeeds does not count.
func TestLoginThrottledPerAddress(t *testing.T) {
	t.Parallel()
	h := access.NewHasher(fastParams, 2)
	e := newEnvWithHasher(t, access.Options{Login: access.LoginLimits{AddressFailures: 4}}, h)
	e.createUser(t, "alice", auth.RoleOperator, "payments")
	e.createUser(t, "bob", auth.RoleViewer)
	for range 10 {
		_, _, err := e.svc.Login(context.Background(), "bob", password, "203.0.113.9")
		require.NoError(t, err, "successes do not count")
	}
	for _, name := range []string{"a1", "a2", "a3", "a4"} {
		e.wrong(t, name, "203.0.113.9")
	}
	wait := e.throttled(t, h, "alice", password, "203.0.113.9", "too many failed logins from 203.0.113.9")
	require.Equal(t, 15*time.Second, wait, "a token comes back every 60/4 s")
	_, _, err := e.svc.Login(context.Background(), "alice", password, "203.0.113.10")
	require.NoError(t, err, "another address logs in")
	e.clock.Advance(15 * time.Second)
	_, _, err = e.svc.Login(context.Background(), "alice", password, "203.0.113.9")
	require.NoError(t, err, "the address may try again once a token is back")
}

// The per-user bound holds across replicas and for attempts in flight at
// once: of a burst of wrong passwords for one name, spread over two
// replicas and many addresses, no more are checked than may fail.
func TestLoginThrottledAcrossReplicas(t *testing.T) {
	t.Parallel()
	e := newEnv(t, access.Options{Login: access.LoginLimits{UserFailures: 4}})
	e.createUser(t, "alice", auth.RoleOperator, "payments")
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	other := access.New(access.Options{Login: access.LoginLimits{UserFailures: 4}, Now: e.clock.Now}, e.store, auth.NewKeySet(priv),
		access.NewHasher(fastParams, 2), "", testkit.Logger(t))
	replicas := []*access.Service{e.svc, other}

	const burst = 30
	errs := make(chan error, burst)
	var wg sync.WaitGroup
	for i := range burst {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _, err := replicas[i%2].Login(context.Background(), "alice", "not the password", fmt.Sprintf("198.51.100.%d", i))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	checked, throttled := 0, 0
	for err := range errs {
		var th *access.ThrottledError
		switch {
		case errors.Is(err, auth.ErrUnauthenticated):
			checked++
		case errors.As(err, &th):
			throttled++
		default:
			t.Fatalf("unexpected answer: %v", err)
		}
	}
	require.LessOrEqual(t, checked, 4)
	require.Equal(t, burst, checked+throttled)
}
