// Package browser runs a real, headless Chromium for tests, driven with
// chromedp: Debian's chromium, which `make deps` installs. A test that
// needs it fails when it is missing; it is never skipped.
package browser

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Path is the Chromium the tests run.
const Path = "/usr/bin/chromium"

// Tab is one tab of a browser a test drives.
type Tab struct {
	t   testing.TB
	ctx context.Context
}

// New starts a headless Chromium with a fresh profile (its own cookies)
// and returns its tab, stopped when the test ends. Each call is another
// browser: another user.
func New(t testing.TB) *Tab {
	t.Helper()
	if _, err := os.Stat(Path); err != nil {
		t.Fatalf("browser tests need Chromium at %s (make deps installs Debian's chromium): %v", Path, err)
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(Path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	// Start the browser now, so that a broken install fails here.
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", Path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return &Tab{t: t, ctx: ctx}
}

// Do runs steps in the tab, bounded by timeout, failing the test on an
// error.
func (b *Tab) Do(timeout time.Duration, steps ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		b.t.Fatalf("browser: %v", err)
	}
}

// Get runs one action that answers a value (a text, an evaluation) in
// the tab, failing the test on an error.
func Get[T any](b *Tab, a chromedp.Action[T]) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		b.t.Fatalf("browser: %v", err)
	}
	return v
}

// ArtefactDir is where Screenshot saves: a directory of the test's own
// under the system's temporary directory, kept after the test for CI to
// collect.
func ArtefactDir(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(os.TempDir(), "vigil-browser-artefacts", regexp.MustCompile(`[^A-Za-z0-9_.-]+`).ReplaceAllString(t.Name(), "_"))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// Screenshot saves the tab's viewport as <name>.png in ArtefactDir and
// returns its path.
func (b *Tab) Screenshot(name string) string {
	b.t.Helper()
	png := Get(b, chromedp.CaptureScreenshot())
	path := filepath.Join(ArtefactDir(b.t), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatal(err)
	}
	b.t.Logf("screenshot %s", path)
	return path
}
