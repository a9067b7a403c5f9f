package chaos_test

import (
	"bytes"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit"
)

// previousRelease is the commit a rolling upgrade starts from:
// VIGIL_PREVIOUS_RELEASE, else the one deploy/previous-release names.
func previousRelease(t testing.TB) string {
	t.Helper()
	if v := os.Getenv("VIGIL_PREVIOUS_RELEASE"); v != "" {
		return v
	}
	data, err := os.ReadFile(filepath.Join(testkit.RepoRoot(t), "deploy", "previous-release"))
	require.NoError(t, err)
	for line := range strings.Lines(string(data)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			return line
		}
	}
	require.FailNow(t, "deploy/previous-release names no commit")
	return ""
}

// git runs git in the repository and returns its output.
func git(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = testkit.RepoRoot(t)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "git %s (the upgrade test needs the repository's history: a full clone):\n%s", strings.Join(args, " "), stderr.String())
	return string(out)
}

// releaseSource extracts the tree of ref into a temp dir (git archive:
// the repository's worktrees stay as they are).
func releaseSource(t testing.TB, ref string) string {
	t.Helper()
	dir := t.TempDir()
	archive := exec.Command("git", "archive", "--format=tar", ref)
	archive.Dir = testkit.RepoRoot(t)
	untar := exec.Command("tar", "-x", "-C", dir)
	pipe, err := archive.StdoutPipe()
	require.NoError(t, err)
	untar.Stdin = pipe
	var archiveErr, untarErr bytes.Buffer
	archive.Stderr, untar.Stderr = &archiveErr, &untarErr
	require.NoError(t, untar.Start())
	require.NoError(t, archive.Run(), "git archive %s (needs a full clone):\n%s", ref, archiveErr.String())
	require.NoError(t, untar.Wait(), untarErr.String())
	return dir
}

// TestRollingUpgrade starts every service, two replicas each, on the
// previous release built from git, sends alerts throughout, and replaces
// one service at a time with this build, one replica after the other
// (SIGTERM, then the new binary on the same ports, as a Deployment's
// rolling update does): old and new run side by side on one schema and
// one bus. Nothing is lost or duplicated: the chaos test's invariants.
func TestRollingUpgrade(t *testing.T) {
	ref := previousRelease(t)
	t.Logf("upgrading from %s", ref)
	old := vigilBinary(t, releaseSource(t, ref))
	current := vigilBinary(t, testkit.RepoRoot(t))
	sc := chaosScale{groups: 12, alertsPerGroup: 4, senders: 2, pause: 50 * time.Millisecond}
	s := StartSplit(t, SplitOptions{Replicas: 2, Binary: old})
	pool := s.Postgres.Pool(t)

	st := &storm{split: s, scale: sc, client: &http.Client{Timeout: 10 * time.Second}, refused: map[string]int{}}
	stop, stormDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(stormDone)
		st.run(t.Context(), stop, rand.New(rand.NewPCG(1, 2)), time.Now())
	}()

	probes := 0
	for _, svc := range services {
		for _, r := range s.Replicas[svc] {
			r.Stop(15 * time.Second)
			r.SetBinary(current)
			r.Start(t)
			r.WaitReady(t)
			t.Logf("%s runs this build", r)
		}
		// Each step of the upgrade still turns an alert into an incident.
		probes++
		t.Logf("after %s: a new alert an incident in %v", svc, probe(t, s, probes))
	}
	close(stop)
	select {
	case <-stormDone:
	case <-time.After(5 * time.Minute):
		require.FailNow(t, "the storm's sends did not end in 5 minutes")
	}
	require.Eventually(t, func() bool {
		var n int
		err := pool.QueryRow(t.Context(), `SELECT count(*) FROM monitor.incidents WHERE title LIKE 'Chaos% in chaos' AND status = 'resolved'`).Scan(&n)
		return err == nil && n >= sc.groups
	}, 5*time.Minute, 500*time.Millisecond, "every group's incident resolved")
	r := check(t, s, pool, sc, probes)
	st.mu.Lock()
	defer st.mu.Unlock()
	t.Logf("figures: requests accepted %d (%d alerts), refused %v; incidents %d, analyses %d, messages %v; alerts lost %d, duplicated %d; messages duplicated %d",
		st.requests, st.alerts, st.refused, r.incidents, r.analyses, r.messages, r.lost, r.duplicated, r.dupMessages)
}
