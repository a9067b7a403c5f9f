package app_test

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// restJSON sends body to the REST API as token and returns the status and
// the answer.
func (v *vigil) restJSON(t *testing.T, verb, path, token string, body io.Reader) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(verb, "http://"+v.HTTPAddr()+path, body)
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var out map[string]any
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out), "%s", b)
	}
	return resp.StatusCode, out
}

func (v *vigil) userNames(t *testing.T) []string {
	t.Helper()
	var list struct {
		Users []struct {
			Name string `json:"name"`
		} `json:"users"`
	}
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/users", adminToken, &list))
	var names []string
	for _, u := range list.Users {
		names = append(names, u.Name)
	}
	return names
}

// TestRESTBodyOverTheLimitIs413: a 2 MiB REST body is refused with 413
// and problem JSON, whether its length is declared or streamed, and
// nothing is created; the same request of a normal size is.
func TestRESTBodyOverTheLimitIs413(t *testing.T) {
	v := startVigil(t)
	user := func(name, pad string) string {
		return `{"user":{"name":"` + name + `","role":"ROLE_VIEWER","email":"` + pad + `x@example.com"},"password":"correct horse battery staple"}`
	}
	big := user("mallory", strings.Repeat("a", 2<<20))
	for name, body := range map[string]io.Reader{
		"declared": strings.NewReader(big),
		"chunked":  io.MultiReader(strings.NewReader(big)),
	} {
		code, p := v.restJSON(t, http.MethodPost, "/api/v1/users", adminToken, body)
		require.Equal(t, http.StatusRequestEntityTooLarge, code, "%s: %v", name, p)
		assert.EqualValues(t, http.StatusRequestEntityTooLarge, p["status"], name)
		assert.Contains(t, p["detail"], "1048576 bytes", name)
		require.NotContains(t, v.userNames(t), "mallory", "%s: nothing created", name)
	}
	code, p := v.restJSON(t, http.MethodPost, "/api/v1/users", adminToken, strings.NewReader(user("mallory", "")))
	require.Equal(t, http.StatusOK, code, "%v", p)
	require.Contains(t, v.userNames(t), "mallory")
}

// TestRESTAuthorisesBeforeDecoding: a malformed body sent by someone who
// may not call the RPC is refused for that (403), not for the body
// (400); nothing changes, and the refusal is audited. The admin's
// malformed body is still a 400.
func TestRESTAuthorisesBeforeDecoding(t *testing.T) {
	v := startVigil(t)
	login := func(name, role string, teams ...string) string {
		tj, _ := json.Marshal(teams)
		code, p := v.restJSON(t, http.MethodPost, "/api/v1/users", adminToken, strings.NewReader(
			`{"user":{"name":"`+name+`","role":"`+role+`","teams":`+string(tj)+`},"password":"`+password(name)+`"}`))
		require.Equal(t, http.StatusOK, code, "%v", p)
		code, p = v.restJSON(t, http.MethodPost, "/api/v1/auth/login", "", strings.NewReader(
			`{"username":"`+name+`","password":"`+password(name)+`"}`))
		require.Equal(t, http.StatusOK, code, "%v", p)
		return p["tokens"].(map[string]any)["access_token"].(string)
	}
	olga := login("olga", "ROLE_OPERATOR", "payments")
	vera := login("vera", "ROLE_VIEWER", "payments")
	before := v.userNames(t)
	_, guardrails := v.restJSON(t, http.MethodGet, "/api/v1/guardrails?scope=global", adminToken, nil)

	for _, c := range []struct {
		who, token, verb, path string
	}{
		{"operator", olga, http.MethodPost, "/api/v1/users"},
		{"operator", olga, http.MethodPatch, "/api/v1/users/vera"},
		{"operator", olga, http.MethodPost, "/api/v1/clusters"},
		{"operator", olga, http.MethodPut, "/api/v1/guardrails"},
		{"viewer", vera, http.MethodPost, "/api/v1/users"},
		{"viewer", vera, http.MethodPut, "/api/v1/guardrails"},
		{"viewer", vera, http.MethodPost, "/api/v1/apps"},
	} {
		code, p := v.restJSON(t, c.verb, c.path, c.token, strings.NewReader(`{"user": {"name": mallory`))
		require.Equal(t, http.StatusForbidden, code, "%s %s as %s: %v", c.verb, c.path, c.who, p)
		assert.Contains(t, p["detail"], "permission", "%s %s as %s", c.verb, c.path, c.who)
	}
	require.Equal(t, before, v.userNames(t), "no user created or changed")
	_, after := v.restJSON(t, http.MethodGet, "/api/v1/guardrails?scope=global", adminToken, nil)
	require.Equal(t, guardrails, after, "guardrails unchanged")

	code, _ := v.restJSON(t, http.MethodPost, "/api/v1/users", "", strings.NewReader(`{`))
	require.Equal(t, http.StatusUnauthorized, code, "credentials first")
	code, p := v.restJSON(t, http.MethodPost, "/api/v1/users", adminToken, strings.NewReader(`{`))
	require.Equal(t, http.StatusBadRequest, code, "an admin's malformed body: %v", p)

	var audit struct {
		Events []struct {
			Method string `json:"method"`
			Actor  string `json:"actor"`
			Target string `json:"target"`
			Code   string `json:"code"`
		} `json:"events"`
	}
	require.Equal(t, http.StatusOK, v.get(t, "/api/v1/audit?page_size=500", adminToken, &audit))
	found := false
	for _, e := range audit.Events {
		if e.Method == "vigil.gateway.v1.UserService/UpdateUser" && e.Actor == "user:olga" {
			found = true
			assert.Equal(t, "PermissionDenied", e.Code)
			assert.Equal(t, "user/vera", e.Target, "the target comes from the path")
		}
	}
	require.True(t, found, "the refused REST call is audited: %+v", audit.Events)
}
