package pgcluster

import (
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// findBinDir returns the directory holding initdb and postgres: explicit if
// set, else one matching the data dir's major version, else pg_config's,
// else the newest under the distributions' usual places, else PATH's.
func findBinDir(explicit, dataDir string) (string, error) {
	if explicit != "" {
		if hasServerBinaries(explicit) {
			return explicit, nil
		}
		return "", notFoundError([]string{explicit})
	}
	var candidates []string
	// A reused data dir only runs on its own major version, which may not be
	// the newest installed one.
	if v, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		major := strings.TrimSpace(string(v))
		candidates = append(candidates,
			filepath.Join("/usr/lib/postgresql", major, "bin"),
			"/usr/pgsql-"+major+"/bin")
	}
	if dir := pgConfigBinDir(); dir != "" {
		candidates = append(candidates, dir)
	}
	candidates = append(candidates, newestFirst("/usr/lib/postgresql/*/bin")...)
	candidates = append(candidates, newestFirst("/usr/pgsql-*/bin")...)
	if path, err := exec.LookPath("postgres"); err == nil {
		candidates = append(candidates, filepath.Dir(path))
	}
	var looked []string
	for _, dir := range candidates {
		if slices.Contains(looked, dir) {
			continue
		}
		if hasServerBinaries(dir) {
			return dir, nil
		}
		looked = append(looked, dir)
	}
	return "", notFoundError(append(looked, "PATH"))
}

func notFoundError(looked []string) error {
	return fmt.Errorf("PostgreSQL server binaries not found (looked in %s): "+
		"install them with `apt-get install postgresql-15` on Debian/Ubuntu or set the bin dir",
		strings.Join(looked, ", "))
}

func hasServerBinaries(dir string) bool {
	for _, name := range []string{"postgres", "initdb"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
			return false
		}
	}
	return true
}

func pgConfigBinDir() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "pg_config", "--bindir").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// newestFirst globs pattern, whose single * is a major version, and orders
// the matches by that version, highest first.
func newestFirst(pattern string) []string {
	dirs, _ := filepath.Glob(pattern) // the only error is a bad pattern
	prefix, suffix, _ := strings.Cut(pattern, "*")
	version := func(dir string) float64 {
		v, _ := strconv.ParseFloat(strings.TrimSuffix(strings.TrimPrefix(dir, prefix), suffix), 64)
		return v
	}
	slices.SortFunc(dirs, func(a, b string) int { return cmp.Compare(version(b), version(a)) })
	return dirs
}
