package testkit

import (
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Prometheus starts the real Prometheus server (Debian package prometheus)
// as the current user, with config, a YAML prometheus.yml, and a data
// directory of the test's own, and returns its URL. It stops when the test
// ends. The test fails, saying how to install it, when the binary is
// missing. args are further command-line flags; it logs at debug level
// unless they set --log.level.
func Prometheus(t testing.TB, config string, args ...string) *PrometheusServer {
	t.Helper()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("testkit: Prometheus not found on PATH: install it with `apt-get install prometheus` (or run `make deps`)")
	}
	dir := t.TempDir()
	cfgFile := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgFile, []byte(config), 0o600); err != nil {
		t.Fatalf("testkit: %v", err)
	}
	port := freePort(t)
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	flags := []string{
		"--config.file=" + cfgFile,
		"--storage.tsdb.path=" + filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port),
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--log.level") }) {
		flags = append(flags, "--log.level=debug")
	}
	cmd := exec.Command(bin, append(flags, args...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("testkit: start Prometheus: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = logFile.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logFile.Name()); err == nil {
				t.Logf("prometheus log:\n%s", b)
			}
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/-/ready")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("testkit: Prometheus at %s not ready after 30s (log: %s)", url, logFile.Name())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return &PrometheusServer{URL: url}
}

// PrometheusServer is a running Prometheus.
type PrometheusServer struct {
	URL string
}

// PrometheusScrapeConfig is a prometheus.yml that scrapes target
// ("127.0.0.1:port") every interval (as "200ms", "1s"), as job "test".
func PrometheusScrapeConfig(target, interval string) string {
	return fmt.Sprintf(`global:
  scrape_interval: %[2]s
  scrape_timeout: %[2]s
scrape_configs:
  - job_name: test
    static_configs:
      - targets: [%[1]q]
`, target, interval)
}
