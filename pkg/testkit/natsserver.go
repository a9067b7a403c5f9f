package testkit

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-ops/vigil/pkg/bus"
)

const natsServerModule = "github.com/nats-io/nats-server/v2"

var natsServerBin struct {
	once sync.Once
	path string
	err  error
}

// NATSServerBinary returns a nats-server binary of the version Vigil embeds
// (pkg/go.mod), built once with `go install` from the Go module proxy into
// the user cache dir ($XDG_CACHE_HOME/vigil/nats-server/<version>, ~/.cache
// without it) and reused from there. The first build takes a minute.
func NATSServerBinary(t testing.TB) string {
	t.Helper()
	natsServerBin.once.Do(func() { natsServerBin.path, natsServerBin.err = buildNATSServer() })
	if natsServerBin.err != nil {
		t.Fatalf("testkit: nats-server binary: %v", natsServerBin.err)
	}
	return natsServerBin.path
}

func buildNATSServer() (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		return "", errors.New("the go command is not on PATH: install Go (https://go.dev/dl) to build nats-server")
	}
	// The version the workspace the test runs in selects: the one linked
	// into Vigil.
	out, err := exec.Command(goBin, "list", "-m", "-f", "{{.Version}}", natsServerModule).Output()
	if err != nil {
		return "", fmt.Errorf("go list -m %s: %w", natsServerModule, err)
	}
	version := strings.TrimSpace(string(out))
	if version == "" {
		return "", fmt.Errorf("go list -m %s: no version", natsServerModule)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "cache")
	}
	dir := filepath.Join(cache, "vigil", "nats-server", version)
	bin := filepath.Join(dir, "nats-server")
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built into a directory of its own, then renamed into place: test
	// binaries building it at once each get a whole binary.
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	cmd := exec.Command(goBin, "install", natsServerModule+"@"+version)
	cmd.Env = append(os.Environ(), "GOBIN="+tmp, "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s@%s (needs the Go module proxy or a module cache holding it): %w\n%s", natsServerModule, version, err, out)
	}
	if err := os.Rename(filepath.Join(tmp, "nats-server"), bin); err != nil {
		return "", err
	}
	return bin, nil
}

// ExternalNATS runs nats-server (NATSServerBinary) as a process of its own
// with Vigil's shipped configuration, deploy/nats/nats.conf, unmodified, as
// an operator would run it: the users' passwords and the store
// (VIGIL_NATS_STORE_DIR, a temp dir) in its environment, its ports on the
// command line (random ones on 127.0.0.1). The passwords start with a digit and hold base64's
// punctuation, which the shipped file must take as they are. The streams
// are provisioned by admin. It stops when the test ends.
func ExternalNATS(t testing.TB) *Bus {
	t.Helper()
	bin := NATSServerBinary(t)
	conf, err := shippedNATSConfig()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	dir := t.TempDir()
	b := &Bus{Passwords: map[string]string{}}
	for _, u := range bus.Users() {
		b.Passwords[u] = awkwardPassword()
	}
	logFile, err := os.Create(filepath.Join(dir, "nats-server.log"))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	cmd := exec.Command(bin, "-c", conf, "-a", "127.0.0.1", "-p", "-1", "-m", "-1",
		"--ports_file_dir", dir)
	cmd.Env = append(os.Environ(), "VIGIL_NATS_STORE_DIR="+filepath.Join(dir, "store"))
	for user, pw := range b.Passwords {
		cmd.Env = append(cmd.Env, bus.PasswordVar(user)+"="+pw)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start nats-server: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		_ = logFile.Close()
		if t.Failed() {
			if out, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("nats-server log:\n%s", out)
			}
		}
	})
	// The server writes its listening ports to a file once it is ready
	// for clients.
	portsFile := filepath.Join(dir, fmt.Sprintf("nats-server_%d.ports", cmd.Process.Pid))
	deadline := time.After(30 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for b.URL == "" {
		select {
		case <-exited:
			out, _ := os.ReadFile(logFile.Name())
			t.Fatalf("testkit: nats-server -c %s exited at start:\n%s", conf, out)
		case <-deadline:
			t.Fatalf("testkit: nats-server did not write %s in 30s", portsFile)
		case <-tick.C:
			data, err := os.ReadFile(portsFile)
			if err != nil {
				continue
			}
			var ports struct {
				Nats []string `json:"nats"`
			}
			if err := json.Unmarshal(data, &ports); err == nil && len(ports.Nats) > 0 {
				b.URL = ports.Nats[0]
			}
		}
	}
	b.provision(t)
	// The streams are where VIGIL_NATS_STORE_DIR says.
	if _, err := os.Stat(filepath.Join(dir, "store", "jetstream")); err != nil {
		t.Fatalf("testkit: nats-server did not store in VIGIL_NATS_STORE_DIR: %v", err)
	}
	return b
}

// awkwardPassword is a password as `openssl rand -base64 24` makes them,
// made to start with a digit and to hold each of base64's + / =.
func awkwardPassword() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "7" + base64.StdEncoding.EncodeToString(b) + "+/="
}

// shippedNATSConfig is deploy/nats/nats.conf of the repository the test
// runs in.
func shippedNATSConfig() (string, error) {
	root, err := repoRoot()
	if err != nil {
		return "", fmt.Errorf("cannot find deploy/nats/nats.conf: %w", err)
	}
	return filepath.Join(root, "deploy", "nats", "nats.conf"), nil
}

// RepoRoot is the root of the repository the test runs in: the directory
// holding go.work, above the working directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	return root
}

func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.work above the working directory")
		}
		dir = parent
	}
}
