package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/loadgen"
)

func benchCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "bench", Short: "Measure a running Vigil"}
	cmd.AddCommand(benchIngestCommand())
	return cmd
}

func benchIngestCommand() *cobra.Command {
	var (
		o         loadgen.Options
		tokenFile string
		// ingestTokenFile holds a key that sends the webhooks (a team's).
		ingestTokenFile string
		output          string
	)
	cmd := &cobra.Command{
		Use:   "ingest",
		Short: "Send alerts to a running Vigil and measure them into incidents: throughput, lag, storage per alert",
		Long: `Send Alertmanager webhooks (or gRPC IngestAlerts calls) to a running Vigil
from --senders concurrent senders, then read the incidents back through the
API until every accepted alert is in one (or --wait-timeout passes).

Reports alerts accepted and accepted/s, alerts persisted and persisted/s,
the lag from acceptance to incident (p50, p99, max; resolution
--poll-interval), the time to drain after sending stopped, and with
--nats-url, --database-url and --pid the JetStream and Postgres bytes per
alert and the process's peak memory. Ctrl-C stops sending and prints what
was measured.`,
		Example: `  # The storm: 16 senders × 100 alerts per webhook over 20 groups for a minute.
  VIGIL_TOKEN=$(cat vigil-data/admin-token) vigil bench ingest \
    --senders 16 --alerts-per-request 100 --groups 20 --duration 60s \
    --nats-url nats://127.0.0.1:4222 --pid $(pgrep -xo vigil)`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if output != "table" && output != "json" {
				return fmt.Errorf("--output %q: want table or json", output)
			}
			token, err := benchToken(tokenFile)
			if err != nil {
				return err
			}
			o.Token = token
			if ingestTokenFile != "" {
				if o.IngestToken, err = benchToken(ingestTokenFile); err != nil {
					return fmt.Errorf("--ingest-token-file: %w", err)
				}
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			g, err := loadgen.New(o, loadgen.Deps{Logger: log})
			if err != nil {
				return err
			}
			r, err := g.Run(cmd.Context())
			if err != nil {
				return err
			}
			if output == "json" {
				enc := json.NewEncoder(os.Stdout)
				enc.SetIndent("", "  ")
				if err := enc.Encode(r); err != nil {
					return err
				}
			} else if err := r.WriteTable(os.Stdout); err != nil {
				return err
			}
			if r.Missing > 0 && !r.Interrupted {
				return fmt.Errorf("%d accepted alerts not in any incident %s after sending stopped", r.Missing, r.Drain)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.HTTPURL, "url", "http://127.0.0.1:8080", "gateway HTTP base URL, for webhooks")
	f.StringVar(&o.GRPCAddr, "addr", env("VIGIL_ADDR", "127.0.0.1:9090"), "gateway gRPC address, for --via grpc and the read-back (VIGIL_ADDR)")
	f.StringVar(&tokenFile, "token-file", env("VIGIL_TOKEN_FILE", ""), "file holding the API token (default: VIGIL_TOKEN) (VIGIL_TOKEN_FILE)")
	f.StringVar(&ingestTokenFile, "ingest-token-file", "", "file holding the key that sends the webhooks, e.g. a team's ingest key (default: the API token)")
	f.StringVarP(&output, "output", "o", "table", "table or json")
	f.StringVar(&o.Via, "via", loadgen.ViaWebhook, "webhook (Alertmanager's, POST /api/v1/webhooks/alertmanager) or grpc (AlertService/IngestAlerts)")
	f.IntVar(&o.Senders, "senders", 16, "concurrent senders, each one request at a time")
	f.IntVar(&o.AlertsPerRequest, "alerts-per-request", 100, "alerts per webhook or call, all of one group")
	f.IntVar(&o.Groups, "groups", 20, "alertname × namespace combinations the alerts spread over (one incident each)")
	f.Float64Var(&o.Rate, "rate", 0, "alerts per second, all senders together (0: flat out)")
	f.DurationVar(&o.Duration, "duration", 0, "stop sending after this long")
	f.Int64Var(&o.Count, "count", 0, "stop sending after this many unique alerts (--duration or --count: whichever comes first)")
	f.Float64Var(&o.RepeatRatio, "repeat-ratio", 0, "fraction of alerts sent that repeat an accepted one (same labels: deduplicated)")
	f.Float64Var(&o.ResolveRatio, "resolve-ratio", 0, "fraction of accepted unique alerts later sent again as resolved")
	f.DurationVar(&o.WaitTimeout, "wait-timeout", loadgen.DefaultWaitTimeout, "how long to read back after sending stopped before reporting alerts missing")
	f.DurationVar(&o.PollInterval, "poll-interval", loadgen.DefaultPollInterval, "how often to list incidents: the lag's resolution")
	f.DurationVar(&o.RequestTimeout, "request-timeout", loadgen.DefaultRequestTimeout, "bound on each request and each read-back")
	f.StringVar(&o.NATSURL, "nats-url", env("VIGIL_BENCH_NATS_URL", ""), "also measure JetStream storage per alert, as NATS admin: nats://admin:PASSWORD@127.0.0.1:4222 (VIGIL_BENCH_NATS_URL: keeps the password out of the process list)")
	f.StringVar(&o.DatabaseURL, "database-url", env("VIGIL_BENCH_DATABASE_URL", ""), "also measure Postgres bytes per alert (pg_database_size) (VIGIL_BENCH_DATABASE_URL: keeps the password out of the process list)")
	f.IntVar(&o.PID, "pid", 0, "also sample this process's memory (VmRSS every 500ms, VmHWM)")
	f.StringVar(&o.RunID, "run-id", "", "names the run's alerts (default: random)")
	return cmd
}

// benchToken is the token in file, or VIGIL_TOKEN.
func benchToken(file string) (string, error) {
	if file == "" {
		return os.Getenv("VIGIL_TOKEN"), nil
	}
	b, err := os.ReadFile(file)
	if err != nil {
		return "", fmt.Errorf("--token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", errors.New("--token-file: empty")
	}
	return token, nil
}
