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

// LiveSubjects are the events the console shows as they happen: the
// incidents' for the list and an incident's page, and its analyses' and
// repairs' for that page.
var LiveSubjects = []string{
	bus.SubjectIncidentOpened, bus.SubjectIncidentUpdated, bus.SubjectIncidentResolved, bus.SubjectIncidentEscalated,
	bus.SubjectAnalysisCompleted,
	bus.SubjectRepairRequested, bus.SubjectRepairApprovalRequested, bus.SubjectRepairDecided,
	bus.SubjectRepairBlocked, bus.SubjectRepairSucceeded, bus.SubjectRepairFailed,
}

// watcherBuffer bounds what one /events stream holds: past it, the
// stream's events are dropped and coalesced into one "reload" hint, so a
// slow browser costs a fixed amount of memory.
const watcherBuffer = 64

// Live fans the bus's incident, analysis and repair events out to the
// console's /events streams: one subscription per gateway, not per
// browser.
type Live struct {
	log      *slog.Logger
	mu       sync.Mutex
	watchers map[*watcher]struct{}
	done     chan struct{}
	closed   bool
}

// watcher is one /events stream: what it may read, and its bounded queue.
// A list's stream (incident "") gets incident events; an incident page's
// gets every event about its one incident, which the API let its user
// read when the stream opened.
type watcher struct {
	reaches  func(team string) bool
	incident string
	events   chan change
	dropped  atomic.Bool
}

// change is what a stream is told: an incident event's incident, or only
// the id of the incident an analysis or repair event is about (in nil).
type change struct {
	id string
	in *typesv1.Incident
}

// NewLive returns a hub with no events until Run.
func NewLive(log *slog.Logger) *Live {
	return &Live{log: log, watchers: map[*watcher]struct{}{}, done: make(chan struct{})}
}

// Run receives the live events on nc until ctx ends, then ends every
// stream. They are watched as core NATS messages, not through a
// JetStream consumer: a live view needs what happens now, not a replay,
// and a browser that missed some reloads the page.
func (l *Live) Run(ctx context.Context, nc *nats.Conn) error {
	defer l.close()
	// One channel for every subject keeps the order the server sent
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
		l.log.Warn("console: undecodable live event", "subject", m.Subject, "error", err)
		return
	}
	for _, e := range evs {
		switch e := e.(type) {
		case interface{ GetIncident() *typesv1.Incident }:
			if in := e.GetIncident(); in != nil {
				l.fanOut(change{id: in.GetId(), in: in})
			}
		case interface{ GetIncidentId() string }:
			if id := e.GetIncidentId(); id != "" {
				l.fanOut(change{id: id})
			}
		}
	}
}

// fanOut queues ch for every stream that shows it and whose user may read
// it, by the API's rule (auth.Principal.Reaches on the incident's team).
// An analysis or repair event names no team: only the page of its
// incident gets it, and that page re-reads itself through the API.
func (l *Live) fanOut(ch change) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for w := range l.watchers {
		switch {
		case w.incident != "" && w.incident != ch.id,
			w.incident == "" && ch.in == nil,
			ch.in != nil && !w.reaches(ch.in.GetTeam()):
			continue
		}
		select {
		case w.events <- ch:
		default:
			w.dropped.Store(true)
		}
	}
}

// watch adds a stream for a user who reaches the teams reaches says, of
// the list (incident "") or of one incident's page; ok is false once the
// hub has stopped.
func (l *Live) watch(reaches func(string) bool, incident string) (w *watcher, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil, false
	}
	w = &watcher{reaches: reaches, incident: incident, events: make(chan change, watcherBuffer)}
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
