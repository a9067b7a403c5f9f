package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/kubedev"
	"github.com/vigil-ops/vigil/pkg/pgcluster"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/pkg/telemetry"
	"github.com/vigil-ops/vigil/services/deploy"
	"github.com/vigil-ops/vigil/services/notify/channel/telegram"
)

func upCommand() *cobra.Command {
	var (
		f        serviceFlags
		dataDir  string
		natsAddr string
		natsSync bool
		kubeDev  bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run every service in one process, with embedded NATS and (unless VIGIL_DATABASE_URL is set) a local Postgres",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return up(cmd.Context(), &f, dataDir, natsAddr, natsSync, kubeDev)
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&dataDir, "data-dir", env("VIGIL_DATA_DIR", "./vigil-data"), "where NATS, Postgres and the admin token live (VIGIL_DATA_DIR)")
	cmd.Flags().StringVar(&natsAddr, "nats-addr", env("VIGIL_NATS_ADDR", "127.0.0.1:4222"), "embedded NATS listener, for direct publishers as user publisher (VIGIL_NATS_ADDR)")
	cmd.Flags().BoolVar(&kubeDev, "kube-dev", false, "also run a local Kubernetes control plane (fake nodes, no containers) under DIR/kube and register it as cluster \"dev\" (binaries: make k8s-bins, or VIGIL_K8S_BIN_DIR)")
	cmd.Flags().BoolVar(&natsSync, "nats-sync-always", env("VIGIL_NATS_SYNC", "always") == "always", "fsync every JetStream write before acknowledging it (VIGIL_NATS_SYNC=always|interval)")
	return cmd
}

// upMemoryLimit is `vigil up`'s soft memory limit for the Go heap unless
// GOMEMLIMIT says otherwise.
const upMemoryLimit = 256 << 20

func up(ctx context.Context, f *serviceFlags, dataDir, natsAddr string, syncAlways, kubeDev bool) error {
	log, err := f.logger()
	if err != nil {
		return err
	}
	dataDir, err = filepath.Abs(dataDir)
	if err != nil {
		return err
	}
	if os.Getenv("GOMEMLIMIT") == "" {
		// Everything in one process on a laptop: a storm's garbage is
		// collected before the heap doubles (measured in
		// docs/benchmarks.md: RSS under 300 MiB, same throughput).
		debug.SetMemoryLimit(upMemoryLimit)
	}
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	token, tokenFile, err := adminToken(dataDir)
	if err != nil {
		return err
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "vigil", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	dsn := os.Getenv("VIGIL_DATABASE_URL")
	local := dsn == ""
	if local {
		cluster, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: filepath.Join(dataDir, "postgres"), Logger: log})
		if err != nil {
			return fmt.Errorf("local Postgres (set VIGIL_DATABASE_URL to use your own): %w", err)
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := cluster.Stop(sctx); err != nil {
				log.WarnContext(ctx, "stop local Postgres", "error", err)
			}
		}()
		if dsn, err = ensureDatabase(ctx, cluster, "vigil"); err != nil {
			return err
		}
	}

	logins, dbLine, err := upDatabaseLogins(ctx, log, dsn, dataDir, local)
	if err != nil {
		return err
	}

	host, port, err := splitHostPort(natsAddr)
	if err != nil {
		return fmt.Errorf("--nats-addr: %w", err)
	}
	// The bus is locked: every client logs in, each service as its own
	// user with its role's permissions (bus.Roles).
	users, usersDir, err := natsUsers(dataDir)
	if err != nil {
		return err
	}
	ns, err := bus.RunServer(bus.ServerOptions{
		Host: host, Port: port, StoreDir: filepath.Join(dataDir, "nats"), SyncAlways: syncAlways, Users: users, Logger: log,
	})
	if err != nil {
		return err
	}
	defer func() { ns.Shutdown(); ns.WaitForShutdown() }()
	deps := app.Deps{
		DatabaseURL: dsn, DatabaseLogins: logins, Bus: map[string]app.Conn{}, Logger: log, Registry: telemetry.NewRegistry(),
		Reload: hangups(ctx), MonitorReload: hangups(ctx),
	}
	for _, c := range users {
		if c.User == bus.UserPublisher {
			continue
		}
		nc, js, err := bus.Connect(ctx, ns.ClientURL(), "vigil-up-"+c.User, c, log)
		if err != nil {
			return err
		}
		defer nc.Close()
		if c.User == bus.UserAdmin {
			deps.Admin = js
			continue
		}
		deps.Bus[c.User] = app.Conn{NATS: nc, JetStream: js}
	}

	opts, err := appOptions(f, app.Services, token)
	if err != nil {
		return err
	}
	keys, err := localSigningKeys(dataDir)
	if err != nil {
		return err
	}
	if opts.Deploy.EncryptionKey == nil {
		if opts.Deploy.EncryptionKey, err = localEncryptionKey(dataDir); err != nil {
			return err
		}
	}
	// One key for the process: deploy's secrets and notify's channel
	// credentials.
	opts.Notify.EncryptionKey = opts.Deploy.EncryptionKey
	// And the gateway's: declared sources' HMAC secrets.
	if opts.Gateway.EncryptionKey == nil {
		opts.Gateway.EncryptionKey = opts.Deploy.EncryptionKey
	}
	kubeconfig := ""
	if kubeDev {
		binDir := env("VIGIL_K8S_BIN_DIR", kubedev.DefaultBinDir())
		fmt.Fprintf(os.Stderr, "Starting the dev Kubernetes control plane (%s) under %s...\n", kubedev.Version, filepath.Join(dataDir, "kube"))
		kc, err := kubedev.Start(ctx, kubedev.Options{BinDir: binDir, Dir: filepath.Join(dataDir, "kube")})
		if err != nil {
			return fmt.Errorf("--kube-dev: %w", err)
		}
		defer kc.Stop()
		b, err := os.ReadFile(kc.Kubeconfig)
		if err != nil {
			return err
		}
		opts.Deploy.DevCluster = &deploy.Cluster{Name: "dev", Kubeconfig: b}
		kubeconfig = kc.Kubeconfig
	}
	deps.Keys = keys
	a, err := app.New(ctx, opts, deps)
	if err != nil {
		return err
	}
	tg, _ := notifyChannel[telegram.Options](opts.Notify)
	printBanner(a, ns.ClientURL(), dataDir, tokenFile, usersDir, kubeconfig, dbLine, syncAlways, tg.BotToken != "")
	return a.Run(ctx)
}

// adminToken is VIGIL_ADMIN_TOKEN, or the token kept in the data dir,
// created on first start.
func adminToken(dataDir string) (token, file string, err error) {
	t, err := secretEnv("VIGIL_ADMIN_TOKEN")
	if err != nil {
		return "", "", err
	}
	if t != "" {
		return t, "", nil
	}
	file = filepath.Join(dataDir, "admin-token")
	b, err := os.ReadFile(file)
	if err == nil {
		return strings.TrimSpace(string(b)), file, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return "", "", fmt.Errorf("read admin token: %w", err)
	}
	raw := make([]byte, 24)
	if _, err := rand.Read(raw); err != nil {
		return "", "", err
	}
	token = "vgl_" + hex.EncodeToString(raw)
	if err := os.WriteFile(file, []byte(token+"\n"), 0o600); err != nil {
		return "", "", fmt.Errorf("write admin token: %w", err)
	}
	return token, file, nil
}

// localSigningKeys signs with DIR/signing-key.pem, created on first start,
// and also verifies with every key in DIR/verify-keys/: to rotate, move
// signing-key.pem there and restart; remove it once the sessions it
// signed have ended (VIGIL_SESSION_TTL).
func localSigningKeys(dataDir string) (*auth.KeySet, error) {
	if f := os.Getenv("VIGIL_SIGNING_KEY_FILE"); f != "" {
		return signingKeys(f, os.Getenv("VIGIL_VERIFY_KEY_FILES"))
	}
	file := filepath.Join(dataDir, "signing-key.pem")
	if err := auth.GenerateKeyFile(file); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	old, err := filepath.Glob(filepath.Join(dataDir, "verify-keys", "*.pem"))
	if err != nil {
		return nil, err
	}
	keys, err := auth.LoadKeySet(file, old...)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	return keys, nil
}

// natsUsers are the embedded NATS server's users (bus.Users), each with
// the password kept in DIR/nats-users/<user>, created on first start.
func natsUsers(dataDir string) (users []bus.Credentials, dir string, err error) {
	dir = filepath.Join(dataDir, "nats-users")
	pws, err := filePasswords(dir, "NATS", bus.Users(), bus.NewPassword)
	if err != nil {
		return nil, "", err
	}
	for _, u := range bus.Users() {
		users = append(users, bus.Credentials{User: u, Password: pws[u]})
	}
	return users, dir, nil
}

// filePasswords are the passwords of names (what, in errors: "NATS"),
// one file each in dir (mode 600), made with newPassword on first use
// and read back after.
func filePasswords(dir, what string, names []string, newPassword func() string) (map[string]string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%s passwords: %w", what, err)
	}
	out := make(map[string]string, len(names))
	for _, n := range names {
		file := filepath.Join(dir, n)
		b, err := os.ReadFile(file)
		switch {
		case err == nil:
			out[n] = strings.TrimSpace(string(b))
			continue
		case !errors.Is(err, fs.ErrNotExist):
			return nil, fmt.Errorf("%s password of %s: %w", what, n, err)
		}
		pw := newPassword()
		if err := os.WriteFile(file, []byte(pw+"\n"), 0o600); err != nil {
			return nil, fmt.Errorf("write %s password of %s: %w", what, n, err)
		}
		out[n] = pw
	}
	return out, nil
}

// localEncryptionKey is the key kept in the data dir, created on first
// start: secrets sealed with it are as safe as the data dir.
func localEncryptionKey(dataDir string) ([]byte, error) {
	file := filepath.Join(dataDir, "encryption-key")
	k, err := seal.ReadKeyFile(file)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("encryption key %s: %w", file, err)
	}
	k = make([]byte, seal.KeySize)
	_, _ = rand.Read(k)
	if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(k)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write encryption key: %w", err)
	}
	return k, nil
}

// ensureDatabase creates the database name in the local cluster if missing.
func ensureDatabase(ctx context.Context, c *pgcluster.Cluster, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("local Postgres: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return "", fmt.Errorf("local Postgres: %w", err)
	}
	if !exists {
		if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
			return "", fmt.Errorf("local Postgres: create database %s: %w", name, err)
		}
	}
	return c.DSN(name), nil
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	var port int
	if _, err := fmt.Sscan(p, &port); err != nil {
		return "", 0, fmt.Errorf("port %q: %w", p, err)
	}
	return host, port, nil
}

func printBanner(a *app.App, natsURL, dataDir, tokenFile, natsUsersDir, kubeconfig, database string, syncAlways, telegram bool) {
	token := "$VIGIL_ADMIN_TOKEN"
	tokenLine := "bootstrap admin token: from VIGIL_ADMIN_TOKEN"
	tokenEnv := "VIGIL_TOKEN=$VIGIL_ADMIN_TOKEN"
	if tokenFile != "" {
		token = "$(cat " + tokenFile + ")"
		tokenLine = "bootstrap admin token: " + tokenFile + " (for the first users and keys, and recovery)"
		tokenEnv = "VIGIL_TOKEN_FILE=" + tokenFile
	}
	sync := "fsync on every write"
	if !syncAlways {
		sync = "fsync every 2 minutes (VIGIL_NATS_SYNC=interval): a power loss can lose acknowledged alerts"
	}
	tg := "Telegram: off (set VIGIL_TELEGRAM_BOT_TOKEN and VIGIL_TELEGRAM_CHAT_ID)"
	if telegram {
		tg = "Telegram: on"
	}
	kube := "Kubernetes       none yet: vigil clusters add NAME --kubeconfig FILE (or restart with --kube-dev)"
	onboard := ""
	if kubeconfig != "" {
		kube = "Kubernetes       dev control plane, cluster \"dev\": kubectl --kubeconfig " + kubeconfig + " get pods -A"
		onboard = fmt.Sprintf(`Onboard an app on it:
  %[1]s vigil apps create shop --owner TEAM --framework flask --plan standard --image registry.example.com/shop:1.0.0 --domain shop.example.com
  %[1]s vigil apps deploy shop --wait
`, tokenEnv)
	}
	fmt.Fprintf(os.Stderr, `
Vigil is up.
  Web console      http://%[1]s/   (log in as a user: vigil users create NAME --role operator --team TEAM)
  REST + webhooks  http://%[1]s/api/v1/   (OpenAPI: /api/v1/openapi.json, health: /healthz /readyz, metrics: /metrics)
  gRPC             %[2]s
  NATS JetStream   %[3]s (%[4]s), locked: every client logs in
                   direct alert publishers: user %[11]s, password in %[12]s (alert.fired and alert.resolved only)
                   admin (nats CLI): user %[13]s, password in %[14]s
  %[16]s
  data             %[5]s
  %[6]s
  %[7]s
  %[9]s

Fire a first alert:
  curl -sS -H "Authorization: Bearer %[8]s" -H 'Content-Type: application/json' \
    http://%[1]s/api/v1/webhooks/alertmanager -d '{"version":"4","status":"firing","receiver":"vigil","groupKey":"{}:{alertname=\"HighLatency\"}","alerts":[{"status":"firing","labels":{"alertname":"HighLatency","namespace":"shop","severity":"critical"},"annotations":{"summary":"p99 above 500ms"},"startsAt":"2026-01-01T00:00:00Z"}]}'
Then:
  %[15]s vigil incidents list
Give people their own logins, and Alertmanager a key that can only send alerts:
  %[15]s vigil users create alice --role admin
  vigil login --user alice
  vigil keys create alertmanager --scope ingest --team TEAM
%[10]s
`, a.HTTPAddr(), a.GRPCAddr(), natsURL, sync, dataDir, tokenLine, tg, token, kube, onboard,
		bus.UserPublisher, filepath.Join(natsUsersDir, bus.UserPublisher), bus.UserAdmin, filepath.Join(natsUsersDir, bus.UserAdmin), tokenEnv, database)
}
