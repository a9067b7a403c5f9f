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

// TestRetentionPasses: a pass at start and one every interval; a failed
// pass is logged once and the next runs all the same; a pass over its
// timeout is cut and the loop goes on; when the context ends, Run
// returns nil without logging the pass it cut.
func TestRetentionPasses(t *testing.T) {
	t.Parallel()
	logs := &testkit.Logs{}
	passes := make(chan int, 10)
	n, unbounded := 0, 0
	ctx, cancel := context.WithCancel(t.Context())
	r := db.Retention{
		What: "things", Every: time.Millisecond, PassTimeout: time.Millisecond,
		Log: logs.Logger(),
		Prune: func(pctx context.Context) (int64, error) {
			n++
			defer func() { passes <- n }()
			if _, ok := pctx.Deadline(); !ok {
				unbounded++
			}
			switch n {
			case 1:
				return 3, nil
			case 2:
				return 1, errors.New("relation does not exist")
			case 3:
				<-pctx.Done() // a pass that would not end by itself
				return 2, pctx.Err()
			case 4:
				return 0, nil
			default:
				cancel()
				<-pctx.Done()
				return 0, pctx.Err()
			}
		},
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	require.NoError(t, <-done)
	close(passes)
	var got []int
	for p := range passes {
		got = append(got, p)
	}
	require.Equal(t, []int{1, 2, 3, 4, 5}, got)
	require.Zero(t, unbounded, "every pass has a deadline")

	lines := logs.Take(t)
	require.Len(t, lines, 3, "%v", lines)
	for i, want := range []map[string]any{
		{"level": "INFO", "msg": "pruned past retention", "what": "things", "rows": 3.0},
		{"level": "WARN", "msg": "pruning failed", "what": "things", "rows": 1.0, "error": "relation does not exist"},
		{"level": "WARN", "msg": "pruning cut short, the rest waits for the next pass", "what": "things", "rows": 2.0},
	} {
		for k, v := range want {
			require.Equal(t, v, lines[i][k], "line %d: %s", i, k)
		}
	}
}
