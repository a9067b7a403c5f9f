package human_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/human"
)

func TestDuration(t *testing.T) {
	t.Parallel()
	for d, want := range map[time.Duration]string{
		0:                             "0s",
		45 * time.Second:              "45s",
		10 * time.Minute:              "10m",
		90 * time.Second:              "1m30s",
		time.Hour:                     "1h",
		90 * time.Minute:              "1h30m",
		time.Hour + time.Second:       "1h0m1s",
		1500 * time.Millisecond:       "1.5s",
		-5 * time.Minute:              "-5m",
		24*time.Hour + 30*time.Minute: "24h30m",
	} {
		require.Equal(t, want, human.Duration(d), d.String())
	}
}
