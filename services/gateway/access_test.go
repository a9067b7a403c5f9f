package gateway_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

const restAdminToken = "bootstrap-admin-token-for-tests"

// answered is a REST call's status and headers.
type answered struct {
	StatusCode int
	Header     http.Header
}

// rest makes a REST call of the gateway at addr as token ("" for none)
// from the client behind X-Forwarded-For xff ("" for none), and decodes
// the answer into out (nil: ignored).
func rest(t *testing.T, addr, method, path, token, xff string, body any, out any) answered {
	t.Helper()
	var r *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
	} else {
		r = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, "http://"+addr+path, r)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if xff != "" {
		req.Header.Set("X-Forwarded-For", xff)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	if out != nil {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(out))
	}
	return answered{StatusCode: resp.StatusCode, Header: resp.Header}
}

type loginAnswer struct {
	Tokens struct {
		AccessToken string `json:"access_token"`
	} `json:"tokens"`
	Detail string `json:"detail"`
}

func login(t *testing.T, addr, user, pw, from string) (answered, loginAnswer) {
	t.Helper()
	var a loginAnswer
	resp := rest(t, addr, http.MethodPost, "/api/v1/auth/login", "", from, map[string]string{"username": user, "password": pw}, &a)
	return resp, a
}

// A flood of wrong passwords from one address, against one user, gets
// 429s with Retry-After before any password is checked, is audited, and
// leaves another user from another address free to log in.
func TestLoginFloodRefusedWhileAnotherUserLogsIn(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// The test's client is the load balancer; X-Forwarded-For names who
	// is behind it.
	g := e.start(t, gateway.Options{AdminToken: restAdminToken, TrustedProxies: mustPrefixes("127.0.0.1/32")})

	const flood = 40
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		retry    []string
		types    []string
	)
	for range flood {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// No require here: not the test's goroutine.
			req, _ := http.NewRequest(http.MethodPost, "http://"+g.addr+"/api/v1/auth/login",
				strings.NewReader(`{"username":"alice","password":"not alice's password"}`))
			req.Header.Set("X-Forwarded-For", "198.51.100.7")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			_ = resp.Body.Close()
			mu.Lock()
			defer mu.Unlock()
			statuses[resp.StatusCode]++
			if resp.StatusCode == http.StatusTooManyRequests {
				retry = append(retry, resp.Header.Get("Retry-After"))
				types = append(types, resp.Header.Get("Content-Type"))
			}
		}()
	}
	// During the flood, olga logs in from elsewhere.
	resp, a := login(t, g.addr, "olga", "correct horse battery", "203.0.113.5")
	require.Equal(t, http.StatusOK, resp.StatusCode, a.Detail)
	require.NotEmpty(t, a.Tokens.AccessToken)
	wg.Wait()

	require.Equal(t, flood, statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests], "%v", statuses)
	require.LessOrEqual(t, statuses[http.StatusUnauthorized], access.DefaultLoginLimits.UserFailures,
		"no more passwords were checked than may fail: %v", statuses)
	require.GreaterOrEqual(t, statuses[http.StatusTooManyRequests], flood-access.DefaultLoginLimits.UserFailures)
	for _, ct := range types {
		require.Equal(t, "application/problem+json", ct)
	}
	for _, r := range retry {
		n, err := strconv.Atoi(r)
		require.NoError(t, err, "Retry-After %q", r)
		require.Positive(t, n)
	}

	// alice is locked from anywhere now, even with her password; nothing
	// changed for her: no login recorded.
	var p server.Problem
	resp = rest(t, g.addr, http.MethodPost, "/api/v1/auth/login", "", "192.0.2.44",
		map[string]string{"username": "alice", "password": "correct horse battery"}, &p)
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, p.Detail, "too many failed logins for alice")
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
	users, err := e.store.Users(t.Context())
	require.NoError(t, err)
	for _, u := range users {
		if u.Name == "alice" {
			require.True(t, u.LastLogin.IsZero())
		}
	}

	// Every refusal is audited, as anonymous.
	require.Eventually(t, func() bool {
		n := 0
		for _, a := range e.audit(t, "AuthService/Login") {
			if a == "anonymous user/alice ResourceExhausted" {
				n++
			}
		}
		return n == statuses[http.StatusTooManyRequests]+1
	}, 5*time.Second, 20*time.Millisecond, "%v", e.audit(t, "AuthService/Login"))
}

// Without trusted proxies, X-Forwarded-For is the client's own say: it is
// ignored, and a flood cannot pass as many addresses.
func TestLoginForwardedForIgnoredUnlessTrusted(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{Login: access.LoginLimits{AddressFailures: 3, UserFailures: 100}})
	for i := range 3 {
		resp, _ := login(t, g.addr, "nobody"+strconv.Itoa(i), "wrong password", "198.51.100."+strconv.Itoa(i))
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	resp, a := login(t, g.addr, "olga", "correct horse battery", "198.51.100.99")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	require.Contains(t, a.Detail, "too many failed logins from 127.0.0.1")
}

type keyAnswer struct {
	Key struct {
		ID         string `json:"id"`
		ExpireTime string `json:"expire_time"`
	} `json:"key"`
	Secret string            `json:"secret"`
	Keys   []json.RawMessage `json:"keys"`
	Detail string            `json:"detail"`
	Errors []server.FieldViolation
}

// An operator's key: a default lifetime, no longer than the maximum;
// it stops working when its maker is disabled, and when it expires.
func TestOperatorKeysOverREST(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken, KeyDefaultTTL: 24 * time.Hour, KeyMaxTTL: 48 * time.Hour})
	_, a := login(t, g.addr, "alice", "correct horse battery", "")
	alice := a.Tokens.AccessToken
	require.NotEmpty(t, alice)

	// Longer than the maximum: refused, naming the field; no key made.
	var k keyAnswer
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/keys", alice, "", map[string]any{"key": map[string]any{
		"name": "ci", "scopes": []string{"SCOPE_READ"}, "team": "payments",
		"expire_time": time.Now().Add(72 * time.Hour).UTC().Format(time.RFC3339),
	}}, &k)
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, k.Detail)
	require.Len(t, k.Errors, 1)
	require.Equal(t, "key.expire_time", k.Errors[0].Field)
	var list keyAnswer
	require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/keys?include_inactive=true", restAdminToken, "", nil, &list).StatusCode)
	require.Empty(t, list.Keys)

	// No expiry asked: the default.
	k = keyAnswer{}
	resp = rest(t, g.addr, http.MethodPost, "/api/v1/keys", alice, "", map[string]any{"key": map[string]any{
		"name": "ci", "scopes": []string{"SCOPE_READ", "SCOPE_OPERATE"}, "team": "payments",
	}}, &k)
	require.Equal(t, http.StatusOK, resp.StatusCode, k.Detail)
	exp, err := time.Parse(time.RFC3339Nano, k.Key.ExpireTime)
	require.NoError(t, err)
	require.WithinDuration(t, exp, time.Now().Add(24*time.Hour), time.Minute)
	key := k.Secret
	require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/keys", key, "", nil, nil).StatusCode)

	// alice is disabled: her key is refused at once.
	resp = rest(t, g.addr, http.MethodPatch, "/api/v1/users/alice", restAdminToken, "",
		map[string]any{"user": map[string]any{"disabled": true}, "update_mask": "disabled"}, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, http.StatusUnauthorized, rest(t, g.addr, http.MethodGet, "/api/v1/keys", key, "", nil, nil).StatusCode)
	// The key itself is not revoked: enabled again, alice's key works.
	resp = rest(t, g.addr, http.MethodPatch, "/api/v1/users/alice", restAdminToken, "",
		map[string]any{"user": map[string]any{"disabled": false}, "update_mask": "disabled"}, nil)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/keys", key, "", nil, nil).StatusCode)
}

// An expired key is refused.
func TestExpiredKeyRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken})
	var k keyAnswer
	resp := rest(t, g.addr, http.MethodPost, "/api/v1/keys", restAdminToken, "", map[string]any{"key": map[string]any{
		"name": "short", "scopes": []string{"SCOPE_READ", "SCOPE_OPERATE"}, "team": "payments",
		"expire_time": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano),
	}}, &k)
	require.Equal(t, http.StatusOK, resp.StatusCode, k.Detail)
	require.Equal(t, http.StatusOK, rest(t, g.addr, http.MethodGet, "/api/v1/keys", k.Secret, "", nil, nil).StatusCode)
	exp, err := time.Parse(time.RFC3339Nano, k.Key.ExpireTime)
	require.NoError(t, err)
	time.Sleep(time.Until(exp) + 10*time.Millisecond)
	var p server.Problem
	resp = rest(t, g.addr, http.MethodGet, "/api/v1/keys", k.Secret, "", nil, &p)
	require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	require.True(t, strings.HasPrefix(p.Detail, "missing or invalid credentials"), p.Detail)
}

func mustPrefixes(s ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(s))
	for i, v := range s {
		out[i] = netip.MustParsePrefix(v)
	}
	return out
}
