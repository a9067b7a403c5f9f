package render_test

import (
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

var update = flag.Bool("update", false, "rewrite golden files")

// TestGolden compares the rendered YAML of every framework × plan with
// testdata/golden, so that any change to what Vigil applies shows up in
// review: go test ./internal/render -run Golden -update rewrites them.
func TestGolden(t *testing.T) {
	t.Parallel()
	var want []string
	// The group returns when its parallel subtests are done.
	t.Run("group", func(t *testing.T) {
		for _, fw := range render.Frameworks() {
			for _, plan := range render.Plans() {
				path := filepath.Join("testdata", "golden", fw+"-"+plan+".yaml")
				want = append(want, path)
				t.Run(fw+"-"+plan, func(t *testing.T) {
					t.Parallel()
					app := shop()
					app.Framework, app.Plan = fw, plan
					got := mustYAML(t, mustRender(t, app, render.Options{RedactSecrets: true}))
					if *update {
						require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
					}
					want, err := os.ReadFile(path)
					require.NoError(t, err, "run go test -run Golden -update to create it")
					assert.Equal(t, string(want), got, "run go test -run Golden -update after checking the difference")
				})
			}
		}
	})
	// No golden file left behind by a renamed or removed framework or plan.
	files, err := filepath.Glob(filepath.Join("testdata", "golden", "*.yaml"))
	require.NoError(t, err)
	assert.ElementsMatch(t, want, files)
}
