// Package testkit starts the real dependencies that Vigil's integration
// tests run against, once per test binary, and hands each test its own
// isolated slice of them (Postgres: a fresh database per test).
//
// A missing dependency fails the test with instructions to install it; it
// never skips. Call Main from TestMain so that what testkit started is
// stopped when the tests end:
//
//	func TestMain(m *testing.M) { testkit.Main(m) }
package testkit

import (
	"os"
	"slices"
	"sync"
	"testing"
)

// Main runs the tests, stops everything testkit started, and exits with
// the tests' code. Without it, shared servers are left for the kernel to end
// when the test binary exits, and their temp dirs stay behind.
func Main(m *testing.M) {
	code := m.Run()
	runAtExit()
	os.Exit(code)
}

// AtExit registers fn for Main to run after the package's tests, for what
// several tests share (a built binary, say) and no one test may clean up.
func AtExit(fn func()) { onExit(fn) }

var atExit struct {
	mu  sync.Mutex
	fns []func()
}

// onExit registers fn for Main to run after the tests, in reverse order of
// registration (the last started is the first stopped).
func onExit(fn func()) {
	atExit.mu.Lock()
	defer atExit.mu.Unlock()
	atExit.fns = append(atExit.fns, fn)
}

func runAtExit() {
	atExit.mu.Lock()
	fns := atExit.fns
	atExit.fns = nil
	atExit.mu.Unlock()
	for _, fn := range slices.Backward(fns) {
		fn()
	}
}
