package chaos_test

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/loadgen"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// BenchmarkSplitModeE2E measures alerts into incidents end to end (the
// load generator of `vigil bench ingest`: accepted by a gateway AND read
// back in their incidents through the API) on the same build, in the
// same run: `vigil up` (one process, embedded NATS, local Postgres), then
// split mode with one and with two replicas of every service (external
// nats-server with the shipped config, Postgres, every replica behind its
// proxies, the gateways behind their Service). Each sub-benchmark sends
// a fixed storm once: run it with -benchtime 1x.
func BenchmarkSplitModeE2E(b *testing.B) {
	bin := vigilBinary(b, testkit.RepoRoot(b))
	opts := loadgen.Options{
		Via: loadgen.ViaWebhook, Senders: 16, AlertsPerRequest: 100, Groups: 20, Count: 200_000,
		PollInterval: 100 * time.Millisecond, WaitTimeout: 5 * time.Minute,
	}
	if v := os.Getenv("VIGIL_BENCH_COUNT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		require.NoError(b, err, "VIGIL_BENCH_COUNT")
		opts.Count = n
	}
	measure := func(b *testing.B, o loadgen.Options) {
		b.Helper()
		g, err := loadgen.New(o, loadgen.Deps{Logger: testkit.Logger(b)})
		require.NoError(b, err)
		for b.Loop() {
			r, err := g.Run(b.Context())
			require.NoError(b, err)
			require.True(b, r.Drained, "every accepted alert in its incident: %d missing", r.Missing)
			b.ReportMetric(r.AcceptedPerSecond, "accepted/s")
			b.ReportMetric(r.PersistedPerSecond, "in-incidents/s")
			b.ReportMetric(time.Duration(r.Lag.P99).Seconds(), "lag-p99-s")
		}
	}
	b.Run("up", func(b *testing.B) {
		// Traversable by the postgres user `vigil up` runs Postgres as
		// when the test runs as root.
		dir, err := os.MkdirTemp("", "vup-")
		require.NoError(b, err)
		b.Cleanup(func() { _ = os.RemoveAll(dir) })
		require.NoError(b, os.Chmod(dir, 0o755))
		httpAddr, grpcAddr, natsAddr := freeAddr(b), freeAddr(b), freeAddr(b)
		cmd := exec.Command(bin, "up", "--data-dir", filepath.Join(dir, "data"), "--http-addr", httpAddr, "--grpc-addr", grpcAddr, "--nats-addr", natsAddr)
		cmd.Env = environ(nil)
		log, err := os.Create(filepath.Join(dir, "up.log"))
		require.NoError(b, err)
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(b, cmd.Start())
		b.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait(); _ = log.Close() })
		require.Eventually(b, func() bool {
			resp, err := http.Get("http://" + httpAddr + "/readyz")
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, 3*time.Minute, 200*time.Millisecond, "vigil up ready (log in %s)", log.Name())
		token, err := os.ReadFile(filepath.Join(dir, "data", "admin-token"))
		require.NoError(b, err)
		o := opts
		o.HTTPURL, o.GRPCAddr, o.Token = "http://"+httpAddr, grpcAddr, strings.TrimSpace(string(token))
		measure(b, o)
	})
	for _, replicas := range []int{1, 2} {
		b.Run(fmt.Sprintf("split-%d", replicas), func(b *testing.B) {
			s := StartSplit(b, SplitOptions{Replicas: replicas, Binary: bin})
			o := opts
			o.HTTPURL, o.GRPCAddr, o.Token = s.GatewayURL(), s.Service["gateway"].Addr(), adminToken
			measure(b, o)
		})
	}
}
