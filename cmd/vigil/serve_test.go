package main

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// requiredVars are every variable serveRequires names, for any service.
func requiredVars() []string {
	var vars []string
	for _, s := range app.Services {
		for _, r := range serveRequires(s) {
			vars = append(vars, r.vars...)
		}
	}
	slices.Sort(vars)
	return slices.Compact(vars)
}

// `vigil serve SERVICE` with nothing set refuses to start with one error
// naming everything the service needs, before it connects to anything.
func TestServeNamesEverythingMissing(t *testing.T) {
	for _, v := range requiredVars() {
		t.Setenv(v, "")
	}
	for _, service := range app.Services {
		t.Run(service, func(t *testing.T) {
			err := serve(context.Background(), &serviceFlags{logLevel: "info", logFmt: "text"}, service)
			require.Error(t, err)
			for _, r := range serveRequires(service) {
				assert.Contains(t, err.Error(), strings.Join(r.vars, " or "))
			}
			assert.Contains(t, err.Error(), fmt.Sprintf("missing %d of", len(serveRequires(service))))
		})
	}
}

// Each service started with only what the configuration reference says it
// needs -- real NATS (locked, each service its own user) and Postgres --
// starts and becomes ready.
func TestServeStartsWithTheDocumentedMinimum(t *testing.T) {
	b := testkit.LockedNATS(t)
	dsn := testkit.Postgres(t)
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	encryption := make([]byte, 32)
	_, _ = rand.Read(encryption)
	minimum := map[string]string{
		"VIGIL_NATS_URL":           b.URL,
		"VIGIL_DATABASE_URL":       dsn,
		"VIGIL_SIGNING_KEY":        base64.StdEncoding.EncodeToString(priv.Seed()),
		"VIGIL_SIGNING_PUBLIC_KEY": base64.StdEncoding.EncodeToString(pub),
		"VIGIL_ENCRYPTION_KEY":     base64.StdEncoding.EncodeToString(encryption),
	}
	for _, v := range requiredVars() {
		t.Setenv(v, "")
	}
	for _, service := range app.Services {
		t.Run(service, func(t *testing.T) {
			pwFile := filepath.Join(t.TempDir(), "nats-password")
			require.NoError(t, os.WriteFile(pwFile, []byte(b.Passwords[service]), 0o600))
			for _, r := range serveRequires(service) {
				v := r.vars[0]
				if v == "VIGIL_NATS_PASSWORD" {
					t.Setenv("VIGIL_NATS_PASSWORD_FILE", pwFile)
					continue
				}
				// The gateway's public key for the others: what they are
				// documented to hold.
				require.NotEmpty(t, minimum[v], "no value for %s", v)
				t.Setenv(v, minimum[v])
			}
			if service == "gateway" {
				t.Setenv("VIGIL_ADMIN_TOKEN", "serve-test-admin-token")
			}
			f := &serviceFlags{grpcAddr: freeAddr(t), httpAddr: freeAddr(t), logLevel: "warn", logFmt: "text"}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- serve(ctx, f, service) }()
			require.Eventually(t, func() bool {
				select {
				case err := <-done:
					require.NoError(t, err, "serve %s stopped", service)
					return false
				default:
				}
				resp, err := http.Get("http://" + f.httpAddr + "/readyz")
				if err != nil {
					return false
				}
				_ = resp.Body.Close()
				return resp.StatusCode == http.StatusOK
			}, time.Minute, 50*time.Millisecond)
			if service == "gateway" {
				// Alone, it answers for the services it was not told where
				// to find: unavailable, and why.
				req, err := http.NewRequest(http.MethodGet, "http://"+f.httpAddr+"/api/v1/apps", nil)
				require.NoError(t, err)
				req.Header.Set("Authorization", "Bearer serve-test-admin-token")
				resp, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				body, _ := io.ReadAll(resp.Body)
				_ = resp.Body.Close()
				assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
				assert.Contains(t, string(body), "deploy service not configured")
			}
			cancel()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(time.Minute):
				t.Fatal("serve did not stop")
			}
		})
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer func() { _ = ln.Close() }()
	return ln.Addr().String()
}

// The configuration reference's table of what `vigil serve` needs is
// serveRequires: every service's row, and the row every service shares.
func TestServeRequirementsDocumented(t *testing.T) {
	f, err := os.Open(filepath.Join("..", "..", "docs", "configuration.md"))
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	rows := map[string][]string{}
	in := false
	for sc := bufio.NewScanner(f); sc.Scan(); {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "<!-- serve-requirements"):
			in = true
		case in && !strings.HasPrefix(line, "|"):
			in = false
		case in:
			cells := strings.Split(strings.Trim(line, "|"), "|")
			service := strings.Trim(strings.TrimSpace(cells[0]), "`")
			if service == "service" || strings.HasPrefix(service, "---") {
				continue
			}
			var reqs []string
			for r := range strings.SplitSeq(cells[1], ";") {
				if r = strings.Trim(strings.TrimSpace(r), "`"); r != "" && r != "—" {
					reqs = append(reqs, r)
				}
			}
			rows[service] = reqs
		}
	}
	common := rows["every service"]
	require.NotEmpty(t, common, "no row for every service")
	for _, service := range app.Services {
		var want []string
		for _, r := range serveRequires(service) {
			want = append(want, strings.Join(r.vars, " or "))
		}
		assert.Equal(t, want, append(slices.Clone(common), rows[service]...), "service %s", service)
	}
}
