package human_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/human"
)

func TestParseDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]time.Duration{
		"90m": 90 * time.Minute, "1h30m": 90 * time.Minute, "2d": 48 * time.Hour, "36600d": 36600 * 24 * time.Hour,
	} {
		got, err := human.ParseDuration(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "soon", "0", "-1h", "0d", "-2d", "1.5d", "36601d", "99999999999999999999d"} {
		_, err := human.ParseDuration(in)
		require.EqualError(t, err, "want a positive duration (90m, 2h, 2d)", in)
	}
}

// FuzzParseDuration: any text a user types is either refused or a
// positive duration.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"90m", "2d", "36601d", "-1h", "d", "1e9d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := human.ParseDuration(s); err == nil && d <= 0 {
			t.Fatalf("%q: %v", s, d)
		}
	})
}
