package console

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/nats-io/nats.go"

	"github.com/vigil-ops/vigil/pkg/bus"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// LiveSubjects are the incident events the console shows as they happen.
var LiveSubjects = []string{bus.SubjectIncidentOpened, bus.SubjectIncidentUpdated, bus.SubjectIncidentResolved}

// watcherBuffer bounds what one /events stream holds: past it, the
// stream's events are dropped and coalesced into one "reload" hint, so a
// slow browser costs a fixed amount of memory.
const watcherBuffer = 64

// Live fans the bus's incident events out to the console's /events
// streams: one subscription per gateway, not per browser.
type Live struct {
	log      *slog.Logger
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	done     chan struct{}
	closed   bool
}

// watcher is one /events stream: what it may read, and its bounded queue.
type watcher struct {
	reaches func(team string) bool
	events  chan *typesv1.Incident
	dropped atomic.Bool
}

// NewLive returns a hub with no events until Run.
func NewLive(log *slog.Logger) *Live {
	return &Live{log: log, watchers: map[*watcher]struct{}{}, done: make(chan struct{})}
}

// Run receives the incident events on nc until ctx ends, then ends every
// stream. They are watched as core NATS messages, not through a
// JetStream consumer: a live view needs what happens now, not a replay,
// and a browser that missed some reloads the page.
func (l *Live) Run(ctx context.Context, nc *nats.Conn) error {
	defer l.close()
	// One channel for the three subjects keeps the order the server sent
	// them in (an incident's opened before its update).
	msgs := make(chan *nats.Msg, 1024)
	for _, s := range LiveSubjects {
		sub, err := nc.ChanSubscribe(s, msgs)
		if err != nil {
			return err
		}
		defer func() { _ = sub.Unsubscribe() }()
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-msgs:
			l.publish(m)
		}
	}
}

func (l *Live) publish(m *nats.Msg) {
	evs, err := bus.Decode(m.Subject, m.Data)
	if err != nil {
		l.log.Warn("console: undecodable incident event", "subject", m.Subject, "error", err)
		return
	}
	for _, e := range evs {
		ie, ok := e.(interface{ GetIncident() *typesv1.Incident })
		if !ok || ie.GetIncident() == nil {
			continue
		}
		l.fanOut(ie.GetIncident())
	}
}

// fanOut queues in for every stream whose user may read it, by the API's
// rule (auth.Principal.Reaches on the incident's team).
func (l *Live) fanOut(in *typesv1.Incident) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.watchers {
		if !w.reaches(in.GetTeam()) {
			continue
		}
		select {
		case w.events <- in:
		default:
			w.dropped.Store(true)
		}
	}
}

// watch adds a stream for a user who reaches the teams reaches says;
// ok is false once the hub has stopped.
func (l *Live) watch(reaches func(string) bool) (w *watcher, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false
	}
	w = &watcher{reaches: reaches, events: make(chan *typesv1.Incident, watcherBuffer)}
	l.watchers[w] = struct{}{}
	return w, true
}

func (l *Live) unwatch(w *watcher) {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.watchers, w)
}

// close ends every stream (the gateway is stopping: its HTTP server
// waits for them).
func (l *Live) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.closed = true
		close(l.done)
	}
}
