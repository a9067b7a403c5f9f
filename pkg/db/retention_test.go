package db_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
)

// syncBuffer is a log written by the loop and read by the test.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) lines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Split(strings.TrimSpace(s.b.String()), "\n")
}

// TestRetentionPasses: a pass at start and one every interval; a failed
// pass is logged once and the next runs all the same; a pass over its
// timeout is cut and the loop goes on; when the context ends, Run
// returns nil without logging the pass it cut.
func TestRetentionPasses(t *testing.T) {
	t.Parallel()
	logs := &syncBuffer{}
	passes := make(chan int, 10)
	n, unbounded := 0, 0
	ctx, cancel := context.WithCancel(t.Context())
	r := db.Retention{
		What: "things", Every: time.Millisecond, PassTimeout: time.Millisecond,
		Log: slog.New(slog.NewTextHandler(logs, nil)),
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

	lines := logs.lines()
	require.Len(t, lines, 3, "%q", lines)
	require.Contains(t, lines[0], `msg="pruned past retention" what=things rows=3`)
	require.Contains(t, lines[1], `msg="pruning failed" what=things rows=1 error="relation does not exist"`)
	require.Contains(t, lines[2], `msg="pruning cut short, the rest waits for the next pass" what=things rows=2`)
}
