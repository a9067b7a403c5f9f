package db_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// TestSweepPasses: no pass at start; a poke passes at once, long before
// the tick; a run of failed passes is logged when it begins (not at each
// pass: a Postgres outage fails them all) and when it ends, and the next
// pass runs all the same; when the context ends, Run returns nil without
// logging the pass it cut.
func TestSweepPasses(t *testing.T) {
	t.Parallel()
	logs := &testkit.Logs{}
	poke := make(chan struct{}, 1)
	passes := make(chan int, 10)
	n := 0
	ctx, cancel := context.WithCancel(t.Context())
	s := db.Sweep{
		What: "things", Every: time.Hour, Poke: poke, Log: logs.Logger(),
		Pass: func(ctx context.Context) error {
			n++
			passes <- n
			switch n {
			case 1, 2:
				return errors.New("relation does not exist")
			case 3:
				return nil
			default:
				cancel()
				return ctx.Err()
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	select {
	case <-passes:
		t.Fatal("a pass at start")
	case <-time.After(20 * time.Millisecond):
	}
	for want := 1; want <= 4; want++ {
		poke <- struct{}{}
		require.Equal(t, want, <-passes)
	}
	require.NoError(t, <-done)

	lines := logs.Take(t)
	require.Len(t, lines, 2, "%v", lines)
	for k, v := range map[string]any{"level": "WARN", "msg": "failing: retrying until it succeeds", "sweep": "things", "error": "relation does not exist"} {
		require.Equal(t, v, lines[0][k], k)
	}
	for k, v := range map[string]any{"level": "INFO", "msg": "recovered", "sweep": "things", "failures": float64(2)} {
		require.Equal(t, v, lines[1][k], k)
	}
}
