package chaos_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/pgcluster"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/pkg/testkit/faultproxy"
)

func TestMain(m *testing.M) { testkit.Main(m) }

const (
	adminToken     = "chaos-admin-token-0123456789abcdef"
	chatID         = "-1001234567890"
	slackChannel   = "C0VIGIL01"
	telegramSecret = "chaos_telegram-secret_0123456789abcdef"
	// streamBytes keeps JetStream's reservation for Vigil's streams small
	// on a test machine's disk.
	streamBytes = 64 << 20
)

// services are started in this order; each waits for its /readyz.
var services = []string{"deploy", "monitor", "notify", "analysis", "repair", "gateway"}

var builds struct {
	mu   sync.Mutex
	dir  string
	bins map[string]string
}

// vigilBinary builds ./cmd/vigil of the source tree at src once per test
// binary (the Go build cache makes a rebuild cheap) and returns its path.
func vigilBinary(t testing.TB, src string) string {
	t.Helper()
	builds.mu.Lock()
	defer builds.mu.Unlock()
	if bin, ok := builds.bins[src]; ok {
		return bin
	}
	if builds.dir == "" {
		dir, err := os.MkdirTemp("", "vigil-chaos-bin-")
		require.NoError(t, err)
		// Shared by the package's tests, removed after the last.
		testkit.AtExit(func() { _ = os.RemoveAll(dir) })
		builds.dir, builds.bins = dir, map[string]string{}
	}
	bin := filepath.Join(builds.dir, fmt.Sprintf("vigil-%d", len(builds.bins)))
	cmd := exec.Command("go", "build", "-o", bin, "./cmd/vigil")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/vigil in %s:\n%s", src, out)
	builds.bins[src] = bin
	return bin
}

// Split is Vigil in split mode as a cluster runs it: every service its
// own `vigil serve` process, N replicas each, against a nats-server
// process with the shipped nats.conf and a Postgres cluster of its own.
// Each replica reaches NATS and Postgres through a fault proxy of its
// own; services reach each other, and the test the gateways, through a
// round-robin proxy per service (a Kubernetes Service).
type Split struct {
	t   testing.TB
	dir string
	bin string
	env map[string]string // secrets every process is given its share of

	NATS     *NATSProcess
	Postgres *Postgres
	Telegram *faketelegram.Server
	Slack    *fakeslack.Server

	Replicas map[string][]*Replica
	// Service is the round-robin proxy in front of each service's gRPC
	// port, and "gateway-http" in front of the gateways' HTTP ports.
	Service map[string]*faultproxy.Proxy
}

// SplitOptions shape a Split.
type SplitOptions struct {
	Replicas int
	// Binary is the vigil every replica runs at first.
	Binary string
	// Env is added to every replica's environment.
	Env map[string]string
}

// StartSplit starts everything and waits until every replica is ready.
func StartSplit(t testing.TB, opts SplitOptions) *Split {
	t.Helper()
	// Short and traversable by the postgres user: the socket lives in the
	// data dir.
	dir, err := os.MkdirTemp("", "vchaos-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	s := &Split{t: t, dir: dir, bin: opts.Binary, env: map[string]string{}, Replicas: map[string][]*Replica{}, Service: map[string]*faultproxy.Proxy{}}
	t.Cleanup(func() {
		if t.Failed() {
			s.dumpLogs()
		}
		_ = os.RemoveAll(dir)
	})
	require.NoError(t, os.MkdirAll(s.logDir(), 0o755))

	for _, u := range bus.Users() {
		s.env[bus.PasswordVar(u)] = bus.NewPassword()
	}
	s.NATS = startNATS(t, dir, s.env)
	s.run(t, map[string]string{
		"VIGIL_NATS_URL": s.NATS.URL(), "VIGIL_NATS_USER": bus.UserAdmin,
		"VIGIL_NATS_PASSWORD":    s.env[bus.PasswordVar(bus.UserAdmin)],
		"VIGIL_STREAM_MAX_BYTES": fmt.Sprint(streamBytes),
	}, "nats", "provision")

	s.Postgres = startPostgres(t, filepath.Join(dir, "pg"))
	bootstrap := map[string]string{"VIGIL_DATABASE_URL": s.Postgres.URL("vigil")}
	for _, svc := range services {
		pw := make([]byte, 16)
		_, _ = rand.Read(pw)
		s.env[dbPasswordVar(svc)] = hex.EncodeToString(pw)
		bootstrap[dbPasswordVar(svc)] = s.env[dbPasswordVar(svc)]
	}
	s.run(t, bootstrap, "db", "bootstrap")
	for _, args := range [][]string{{}, {"--service", "analysis"}, {"--service", "repair"}} {
		out := s.run(t, nil, append([]string{"signing-key", "generate", "--env"}, args...)...)
		for line := range strings.Lines(out) {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok {
				s.env[k] = v
			}
		}
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	s.env["VIGIL_ENCRYPTION_KEY"] = base64.StdEncoding.EncodeToString(key)

	s.Telegram = faketelegram.New(t, faketelegram.Options{ChatIDs: []string{chatID}})
	s.Slack = fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: slackChannel}}})

	// Every replica's ports first: the Services' proxies need them.
	for _, svc := range services {
		for i := range opts.Replicas {
			s.Replicas[svc] = append(s.Replicas[svc], s.newReplica(t, svc, i, opts.Env))
		}
	}
	for _, svc := range services {
		var ups []faultproxy.Upstream
		for _, r := range s.Replicas[svc] {
			ups = append(ups, faultproxy.Upstream{Network: "tcp", Address: r.GRPCAddr})
		}
		s.Service[svc] = s.proxy(t, ups...)
	}
	var httpUps []faultproxy.Upstream
	for _, r := range s.Replicas["gateway"] {
		httpUps = append(httpUps, faultproxy.Upstream{Network: "tcp", Address: r.HTTPAddr})
	}
	s.Service["gateway-http"] = s.proxy(t, httpUps...)
	s.Slack.SetInteractivityURL(s.GatewayURL() + "/api/v1/webhooks/slack/interactions")

	for _, svc := range services {
		for _, r := range s.Replicas[svc] {
			r.Start(t)
		}
		for _, r := range s.Replicas[svc] {
			r.WaitReady(t)
		}
	}
	return s
}

func (s *Split) logDir() string { return filepath.Join(s.dir, "logs") }

func (s *Split) proxy(t testing.TB, ups ...faultproxy.Upstream) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.New(ups...)
	require.NoError(t, err)
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// run runs the vigil binary once with env and returns its stdout.
func (s *Split) run(t testing.TB, env map[string]string, args ...string) string {
	t.Helper()
	cmd := exec.Command(s.bin, args...)
	cmd.Env = environ(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	require.NoError(t, cmd.Run(), "vigil %s:\n%s", strings.Join(args, " "), stderr.String())
	return stdout.String()
}

// environ is a minimal environment with env: the test's own VIGIL_*
// variables must not leak into the processes.
func environ(env map[string]string) []string {
	out := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "VIGIL_LOG_LEVEL=info"}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// GatewayURL is the gateways' HTTP address behind their Service.
func (s *Split) GatewayURL() string { return "http://" + s.Service["gateway-http"].Addr() }

// Conn is a gRPC client of the gateways behind their Service, with the
// admin's token on each call.
func (s *Split) Conn(t testing.TB) (*grpc.ClientConn, context.Context) {
	t.Helper()
	conn, err := grpc.NewClient(s.Service["gateway"].Addr(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	require.NoError(t, err)
	t.Cleanup(func() { _ = conn.Close() })
	return conn, metadata.AppendToOutgoingContext(context.Background(), "authorization", "Bearer "+adminToken)
}

// dumpLogs prints the tail of every process's log.
func (s *Split) dumpLogs() {
	logs, _ := filepath.Glob(filepath.Join(s.logDir(), "*.log"))
	logs = append(logs, filepath.Join(s.dir, "nats.log"), filepath.Join(s.dir, "pg", "postgres.log"))
	for _, path := range logs {
		s.t.Logf("--- %s (tail)\n%s", filepath.Base(path), tail(path, 40))
	}
}

func tail(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Replica is one `vigil serve <service>` process, started again on the
// same ports after a kill.
type Replica struct {
	Service            string
	Index              int
	HTTPAddr, GRPCAddr string
	// NATSProxy and PGProxy stand between the replica and its
	// dependencies.
	NATSProxy, PGProxy *faultproxy.Proxy

	split   *Split
	env     map[string]string
	logPath string

	mu     sync.Mutex
	bin    string
	cmd    *exec.Cmd
	exited chan struct{}
	// Starts counts the processes started so far.
	Starts int
}

func (r *Replica) String() string { return fmt.Sprintf("%s-%d", r.Service, r.Index) }

func (s *Split) newReplica(t testing.TB, svc string, i int, extra map[string]string) *Replica {
	t.Helper()
	r := &Replica{
		Service: svc, Index: i, HTTPAddr: freeAddr(t), GRPCAddr: freeAddr(t), split: s, bin: s.bin,
		NATSProxy: s.proxy(t, faultproxy.Upstream{Network: "tcp", Address: s.NATS.Addr()}),
		PGProxy:   s.proxy(t, faultproxy.Upstream{Network: "unix", Address: s.Postgres.Socket()}),
	}
	r.logPath = filepath.Join(s.logDir(), r.String()+".log")
	t.Cleanup(r.Kill)
	user := svc
	r.env = map[string]string{
		"VIGIL_NATS_URL":         "nats://" + r.NATSProxy.Addr(),
		"VIGIL_NATS_USER":        user,
		"VIGIL_NATS_PASSWORD":    s.env[bus.PasswordVar(user)],
		"VIGIL_DATABASE_URL":     fmt.Sprintf("postgres://vigil_%s:%s@%s/vigil?sslmode=disable", svc, s.env[dbPasswordVar(svc)], r.PGProxy.Addr()),
		"VIGIL_HTTP_ADDR":        r.HTTPAddr,
		"VIGIL_GRPC_ADDR":        r.GRPCAddr,
		"VIGIL_STREAM_MAX_BYTES": fmt.Sprint(streamBytes),
		"VIGIL_LOG_FORMAT":       "json",
	}
	// What docker-compose.yml's header says each service needs.
	switch svc {
	case "gateway":
		r.set(s.env, "VIGIL_SIGNING_KEY")
		r.env["VIGIL_ADMIN_TOKEN"] = adminToken
		r.env["VIGIL_DEFAULT_TEAM"] = "payments"
		r.env["VIGIL_TELEGRAM_BOT_TOKEN"] = s.Telegram.Token()
		r.env["VIGIL_TELEGRAM_API_URL"] = s.Telegram.URL()
		r.env["VIGIL_TELEGRAM_CHAT_ID"] = chatID
		r.env["VIGIL_TELEGRAM_WEBHOOK_SECRET"] = telegramSecret
		r.env["VIGIL_SLACK_SIGNING_SECRET"] = s.Slack.SigningSecret()
		r.env["VIGIL_SLACK_API_URL"] = s.Slack.APIURL()
	case "notify":
		r.set(s.env, "VIGIL_SIGNING_PUBLIC_KEY", "VIGIL_ENCRYPTION_KEY")
		r.env["VIGIL_TELEGRAM_BOT_TOKEN"] = s.Telegram.Token()
		r.env["VIGIL_TELEGRAM_CHAT_ID"] = chatID
		r.env["VIGIL_TELEGRAM_API_URL"] = s.Telegram.URL()
		r.env["VIGIL_SLACK_BOT_TOKEN"] = s.Slack.BotToken()
		r.env["VIGIL_SLACK_CHANNEL"] = slackChannel
		r.env["VIGIL_SLACK_API_URL"] = s.Slack.APIURL()
	case "analysis", "repair":
		r.set(s.env, "VIGIL_SIGNING_PUBLIC_KEY")
		r.env["VIGIL_SERVICE_KEY"] = s.env["VIGIL_"+strings.ToUpper(svc)+"_SERVICE_KEY"]
	case "deploy":
		r.set(s.env, "VIGIL_SIGNING_PUBLIC_KEY", "VIGIL_ENCRYPTION_KEY", "VIGIL_ANALYSIS_PUBLIC_KEY", "VIGIL_REPAIR_PUBLIC_KEY")
		// A crash-looping release fails soon.
		r.env["VIGIL_ROLLOUT_TIMEOUT"] = "15s"
	case "monitor":
		r.set(s.env, "VIGIL_SIGNING_PUBLIC_KEY")
	}
	for k, v := range extra {
		r.env[k] = v
	}
	return r
}

func (r *Replica) set(from map[string]string, keys ...string) {
	for _, k := range keys {
		r.env[k] = from[k]
	}
}

// peers points the replica at the other services' Services; set at
// start, when they exist.
func (r *Replica) peers() {
	s := r.split
	switch r.Service {
	case "gateway":
		for _, peer := range []string{"monitor", "deploy", "analysis", "repair", "notify"} {
			r.env["VIGIL_"+strings.ToUpper(peer)+"_ADDR"] = s.Service[peer].Addr()
		}
		r.env["VIGIL_TELEGRAM_WEBHOOK_URL"] = s.GatewayURL() + "/api/v1/webhooks/telegram"
	case "analysis", "repair":
		r.env["VIGIL_DEPLOY_ADDR"] = s.Service["deploy"].Addr()
	}
}

// Start starts the replica's process (again, after Kill or Stop).
func (r *Replica) Start(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	require.Nil(t, r.cmd, "%s is running", r)
	r.peers()
	logFile, err := os.OpenFile(r.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(r.bin, "serve", r.Service)
	cmd.Env = environ(r.env)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start(), "start %s", r)
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		_ = logFile.Close()
		close(exited)
	}()
	r.cmd, r.exited = cmd, exited
	r.Starts++
}

// Kill ends the process with SIGKILL, as an OOM kill or a node loss does.
func (r *Replica) Kill() { r.signal(syscall.SIGKILL, 0) }

// Stop ends the process with SIGTERM, as a rolling update does, and
// waits up to grace before killing it.
func (r *Replica) Stop(grace time.Duration) { r.signal(syscall.SIGTERM, grace) }

func (r *Replica) signal(sig syscall.Signal, grace time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.cmd == nil {
		return
	}
	_ = r.cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-r.exited:
		case <-time.After(grace):
			_ = r.cmd.Process.Kill()
		}
	}
	<-r.exited
	r.cmd = nil
}

// SetBinary makes the next Start run bin.
func (r *Replica) SetBinary(bin string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bin = bin
}

// WaitReady waits until the replica's /readyz answers 200, failing at
// once when the process exits.
func (r *Replica) WaitReady(t testing.TB) {
	t.Helper()
	r.mu.Lock()
	exited := r.exited
	r.mu.Unlock()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-exited:
			require.FailNow(t, "exited at start", "%s:\n%s", r, tail(r.logPath, 30))
		default:
		}
		if resp, err := http.Get("http://" + r.HTTPAddr + "/readyz"); err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		require.False(t, time.Now().After(deadline), "%s not ready in 2 minutes:\n%s", r, tail(r.logPath, 30))
		time.Sleep(100 * time.Millisecond)
	}
}

// Logs are the replica's log lines so far, every process of it.
func (r *Replica) Logs(t testing.TB) []map[string]any {
	t.Helper()
	f, err := os.Open(r.logPath)
	require.NoError(t, err)
	defer func() { _ = f.Close() }()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

// All is every replica, service by service.
func (s *Split) All() []*Replica {
	var out []*Replica
	for _, svc := range services {
		out = append(out, s.Replicas[svc]...)
	}
	return out
}

// NATSProcess is nats-server run from testkit.NATSServerBinary with the
// shipped deploy/nats/nats.conf, restartable on the same port and store.
type NATSProcess struct {
	bin, conf, dir, log string
	port                int
	env                 []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

func startNATS(t testing.TB, dir string, passwords map[string]string) *NATSProcess {
	t.Helper()
	// The shipped file as it is; its store (VIGIL_NATS_STORE_DIR) in the
	// test's dir.
	n := &NATSProcess{bin: testkit.NATSServerBinary(t), conf: filepath.Join(testkit.RepoRoot(t), "deploy", "nats", "nats.conf"), dir: dir, log: filepath.Join(dir, "nats.log")}
	_, port, err := net.SplitHostPort(freeAddr(t))
	require.NoError(t, err)
	_, err = fmt.Sscan(port, &n.port)
	require.NoError(t, err)
	n.env = append(environ(passwords), "VIGIL_NATS_STORE_DIR="+filepath.Join(dir, "jetstream"))
	n.Start(t)
	t.Cleanup(n.Kill)
	return n
}

// Addr is the server's client address.
func (n *NATSProcess) Addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// URL is Addr as a nats:// URL.
func (n *NATSProcess) URL() string { return "nats://" + n.Addr() }

// Start starts the server and waits until it takes connections.
func (n *NATSProcess) Start(t testing.TB) {
	t.Helper()
	n.mu.Lock()
	defer n.mu.Unlock()
	logFile, err := os.OpenFile(n.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	require.NoError(t, err)
	cmd := exec.Command(n.bin, "-c", n.conf, "-a", "127.0.0.1", "-p", fmt.Sprint(n.port), "-m", "-1")
	cmd.Env = n.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); _ = logFile.Close(); close(exited) }()
	n.cmd, n.exited = cmd, exited
	require.Eventually(t, func() bool {
		select {
		case <-exited:
			require.FailNow(t, "nats-server exited at start", tail(n.log, 30))
		default:
		}
		c, err := net.Dial("tcp", n.Addr())
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	}, time.Minute, 20*time.Millisecond)
}

// Stop ends the server with SIGTERM (a pod's restart), Kill with SIGKILL.
func (n *NATSProcess) Stop() { n.signal(syscall.SIGTERM) }

// Kill ends the server with SIGKILL.
func (n *NATSProcess) Kill() { n.signal(syscall.SIGKILL) }

func (n *NATSProcess) signal(sig syscall.Signal) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil {
		return
	}
	_ = n.cmd.Process.Signal(sig)
	<-n.exited
	n.cmd = nil
}

// Postgres is a cluster of the test's own (pgcluster), durable, killable
// with SIGKILL and started again on the same data dir.
type Postgres struct {
	dataDir string
	mu      sync.Mutex
	cluster *pgcluster.Cluster
}

func startPostgres(t testing.TB, dataDir string) *Postgres {
	t.Helper()
	p := &Postgres{dataDir: dataDir}
	p.Start(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.cluster != nil {
			_ = p.cluster.Stop(ctx)
		}
	})
	conn, err := pgx.Connect(t.Context(), p.DSN("postgres"))
	require.NoError(t, err)
	defer func() { _ = conn.Close(context.Background()) }()
	_, err = conn.Exec(t.Context(), "CREATE DATABASE vigil")
	require.NoError(t, err)
	return p
}

// Start starts the server on the data dir, recovering after a kill.
func (p *Postgres) Start(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{DataDir: p.dataDir, Settings: map[string]string{"max_connections": "300"}})
	require.NoError(t, err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cluster = c
}

// Kill ends the postmaster and its backends with SIGKILL, as a node loss
// does.
func (p *Postgres) Kill(t testing.TB) {
	t.Helper()
	pidFile, err := os.ReadFile(filepath.Join(p.dataDir, "postmaster.pid"))
	require.NoError(t, err)
	var pid int
	_, err = fmt.Sscan(strings.SplitN(string(pidFile), "\n", 2)[0], &pid)
	require.NoError(t, err)
	// The postmaster leads its own process group: its backends die too.
	require.NoError(t, syscall.Kill(-pid, syscall.SIGKILL))
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = p.cluster.Stop(ctx) // it had exited: this only waits for that
	p.cluster = nil
}

// Socket is the server's Unix socket.
func (p *Postgres) Socket() string { return filepath.Join(p.dataDir, ".s.PGSQL.5432") }

// DSN is a keyword/value DSN of database dbname as the superuser.
func (p *Postgres) DSN(dbname string) string {
	return fmt.Sprintf("host=%s port=5432 user=postgres dbname=%s sslmode=disable", p.dataDir, dbname)
}

// URL is DSN as a URL, for `vigil db bootstrap`.
func (p *Postgres) URL(dbname string) string {
	return fmt.Sprintf("postgres://postgres@/%s?host=%s&sslmode=disable", dbname, p.dataDir)
}

// Pool is a superuser pool on the vigil database, for the test's
// read-only checks.
func (p *Postgres) Pool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), p.DSN("vigil"))
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func dbPasswordVar(svc string) string { return "VIGIL_DB_" + strings.ToUpper(svc) + "_PASSWORD" }

// handedOut are the addresses freeAddr gave: never given twice, though
// nothing listens on one while its replica is down, so that the harnesses
// of tests running at once do not pick the same port between picking it
// and binding it.
var handedOut = struct {
	sync.Mutex
	addrs map[string]bool
}{addrs: map[string]bool{}}

// freeAddr is a loopback address nothing listens on now, below Linux's
// ephemeral range (32768 and up): a port the kernel hands out to outgoing
// connections could be taken before a restarted replica binds it again.
func freeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 1000 {
		addr := fmt.Sprintf("127.0.0.1:%d", 20000+mathrand.IntN(12000))
		if handedOut.addrs[addr] {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		require.NoError(t, ln.Close())
		handedOut.addrs[addr] = true
		return addr
	}
	require.FailNow(t, "no free port between 20000 and 32000")
	return ""
}
