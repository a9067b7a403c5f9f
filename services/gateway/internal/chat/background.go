package chat

import (
	"context"
	"sync"
	"time"
)

// Background runs work that outlives the request it came with: Slack
// wants its interactions acknowledged within 3 s, and the work comes
// after. At most Limit pieces run at once, each bounded by Timeout; Stop
// takes no more and waits for those running.
type Background struct {
	sem     chan struct{}
	timeout time.Duration
	stopCtx context.Context // ended by Stop when its wait runs out
	cancel  context.CancelFunc

	mu      sync.Mutex
	stopped bool
	wg      sync.WaitGroup
}

// NewBackground returns a Background of at most limit pieces of work at
// once, each bounded by timeout.
func NewBackground(limit int, timeout time.Duration) *Background {
	ctx, cancel := context.WithCancel(context.Background())
	return &Background{sem: make(chan struct{}, limit), timeout: timeout, stopCtx: ctx, cancel: cancel}
}

// Go runs work with a context that keeps ctx's values (the trace) but not
// its end, and reports false when it cannot: Limit pieces run already, or
// Stop was called.
func (b *Background) Go(ctx context.Context, work func(context.Context)) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.stopped {
		return false
	}
	select {
	case b.sem <- struct{}{}:
	default:
		return false
	}
	b.wg.Add(1)
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	unhook := context.AfterFunc(b.stopCtx, cancel)
	go func() {
		defer b.wg.Done()
		defer func() { <-b.sem }()
		defer unhook()
		defer cancel()
		work(wctx)
	}()
	return true
}

// Stop takes no more work and waits for the work running until ctx ends,
// when it cancels what is left and waits for it to return.
func (b *Background) Stop(ctx context.Context) {
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	done := make(chan struct{})
	go func() { b.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		b.cancel()
		<-done
	}
	b.cancel()
}
