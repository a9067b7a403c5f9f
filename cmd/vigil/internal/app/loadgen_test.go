package app_test

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/cmd/vigil/internal/loadgen"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/services/monitor"
)

// TestLoadgen runs `vigil bench ingest` against a real Vigil (gateway and
// monitor on real Postgres and JetStream), once per way in, one after the
// other on the same Vigil: each run accounts for exactly its own alerts,
// repeats and resolutions included, and measures storage and memory.
func TestLoadgen(t *testing.T) {
	dsn := testkit.Postgres(t)
	natsURL := testkit.NATS(t)
	nc, js := testkit.JetStream(t, natsURL)
	a := runApp(t, app.Options{
		Services: []string{"monitor", "gateway"}, GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0",
		AdminToken: adminToken, DeployAddr: "127.0.0.1:1",
		Monitor: monitor.Options{GroupBy: []string{"alertname", "namespace"}},
	}, app.Deps{DatabaseURL: dsn, NATS: nc, JetStream: js, Logger: testkit.Logger(t), Keys: testKeys(t)})

	for _, via := range []string{loadgen.ViaWebhook, loadgen.ViaGRPC} {
		t.Run(via, func(t *testing.T) {
			g, err := loadgen.New(loadgen.Options{
				HTTPURL: "http://" + a.HTTPAddr(), GRPCAddr: a.GRPCAddr(), Token: adminToken, Via: via,
				Senders: 2, AlertsPerRequest: 10, Groups: 3, Count: 300,
				RepeatRatio: 0.2, ResolveRatio: 0.1,
				PollInterval: 50 * time.Millisecond, WaitTimeout: 2 * time.Minute,
				NATSURL: natsURL, DatabaseURL: dsn, PID: os.Getpid(),
			}, loadgen.Deps{Logger: testkit.Logger(t)})
			require.NoError(t, err)
			r, err := g.Run(t.Context())
			require.NoError(t, err)

			var table strings.Builder
			require.NoError(t, r.WriteTable(&table))
			t.Log("\n" + table.String())

			require.Empty(t, r.NotAccepted, "the gateway accepted every request")
			require.Equal(t, r.Requests, r.RequestsAccepted)
			require.EqualValues(t, 300, r.Accepted)
			require.Positive(t, r.Repeats)
			require.Positive(t, r.Resolutions)
			require.True(t, r.Drained, "every accepted alert reached an incident: %d missing", r.Missing)
			require.Equal(t, r.Accepted, r.Persisted, "repeats deduplicated, other runs not counted")
			require.Zero(t, r.Missing)
			require.Equal(t, 3, r.Incidents)
			require.Positive(t, r.Lag.Samples)

			require.NotNil(t, r.JetStream)
			require.Positive(t, r.JetStream.BytesPerAlert)
			require.NotNil(t, r.Postgres)
			require.NotNil(t, r.Process)
			require.Positive(t, r.Process.PeakRSS)
			require.Empty(t, r.Warnings)
		})
	}
}
