package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/vigil-ops/vigil/pkg/db"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

const (
	// pollEvery is how often an idle sender looks for work another
	// replica queued (its own replica wakes it at once), a reply whose
	// wait for its parent is over, or a retry that is due.
	pollEvery = time.Second
	// sendTimeout bounds one send; the claim's lease is renewed meanwhile.
	sendTimeout = time.Minute
	// maxRecordWait bounds the wait between tries at recording a send
	// while the database is away: once it is back, the sender that knows
	// the answer should record it before another takes the claim over.
	maxRecordWait = time.Second
	// superviseEvery is how often notify looks for channels with
	// deliveries and no sender here.
	superviseEvery = 10 * time.Second
	// maxBackoff bounds the wait before a delivery is retried.
	maxBackoff = 5 * time.Minute
)

// senders are this replica's senders, one per channel that has
// deliveries (a channel configured, or one whose deliveries wait in the
// queue), started as they are needed while notify runs.
type senders struct {
	mu   sync.Mutex
	ctx  context.Context // the run's; nil when notify does not run
	wg   sync.WaitGroup
	send func(ctx context.Context, name string, wake <-chan struct{})
	wake map[string]chan struct{}
}

// begin lets senders start, each running send under ctx.
func (ss *senders) begin(ctx context.Context, send func(context.Context, string, <-chan struct{})) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	ss.ctx, ss.send, ss.wake = ctx, send, map[string]chan struct{}{}
}

// start starts the sender of channel name unless it runs.
func (ss *senders) start(name string) {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.ctx == nil || ss.wake[name] != nil {
		return
	}
	c := make(chan struct{}, 1)
	ss.wake[name] = c
	ss.wg.Go(func() { ss.send(ss.ctx, name, c) })
}

// wakeAll has every sender look at its queue now.
func (ss *senders) wakeAll() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	for _, c := range ss.wake {
		select {
		case c <- struct{}{}:
		default: // already woken
		}
	}
}

// superviseSenders starts a sender for every channel with deliveries in
// the queue, at start and every little while: one queued by another
// replica, or left by a channel no longer configured (whose deliveries
// then fail, saying so).
func (s *Service) superviseSenders(ctx context.Context) {
	supervise := func() {
		names, err := s.deliveries.PendingChannels(ctx)
		if err != nil && ctx.Err() == nil {
			s.log.WarnContext(ctx, "listing the channels with deliveries failed", "error", err)
		}
		for _, name := range names {
			s.senders.start(name)
		}
	}
	supervise()
	every(ctx, superviseEvery, supervise)
}

// send runs this replica's sender of channel name until ctx ends.
func (s *Service) send(ctx context.Context, name string, wake <-chan struct{}) {
	for {
		t := time.NewTimer(s.sendDue(ctx, name))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// sendDue sends name's due deliveries one at a time, in queue order, and
// says how long to wait before looking again.
func (s *Service) sendDue(ctx context.Context, name string) time.Duration {
	for ctx.Err() == nil {
		paused, err := s.deliveries.PausedFor(ctx, name)
		if err == nil && paused > 0 {
			// Looked at again within a minute: an operator may end it.
			return min(paused, time.Minute)
		}
		var c *postgres.Claimed
		if err == nil {
			c, err = s.deliveries.ClaimStale(ctx, name, s.replica, s.opts.Lease)
		}
		if err == nil && c == nil {
			c, err = s.deliveries.Claim(ctx, name, s.replica, s.opts.Lease, s.opts.ReplyWait)
		}
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "taking a delivery failed", "channel", name, "error", err)
			}
			return pollEvery
		}
		if c == nil {
			return pollEvery
		}
		s.sendClaimed(ctx, name, c)
	}
	return 0
}

// sendClaimed sends a delivery this replica claimed, and records what
// became of it.
func (s *Service) sendClaimed(ctx context.Context, name string, c *postgres.Claimed) {
	log := s.log.With("channel", name, "event_id", c.EventID, "subject", c.Subject)
	a := postgres.Attempt{EventID: c.EventID, Channel: name, InDoubt: c.InDoubt}
	ep := s.endpoint(name)
	switch {
	case ep == nil:
		a.Outcome, a.Error = postgres.OutcomeFailed, fmt.Sprintf("channel %s is gone", name)
		s.record(ctx, log, a)
		return
	case time.Since(c.QueuedAt) > s.opts.MaxEventAge:
		a.Target, a.Outcome = ep.Target, postgres.OutcomeFailed
		a.Error = fmt.Sprintf("queued for longer than the max event age (%s)", s.opts.MaxEventAge)
		s.record(ctx, log, a)
		return
	}
	a.Target = ep.Target
	// The route's locale, kept with the delivery: the channel looked up
	// by name knows only its own.
	ep = withLocale(ep, c.Language, c.TimeZone, c.Templates)
	if c.Stale {
		s.doubts.WithLabelValues(name).Inc()
		log.WarnContext(ctx, "delivery in doubt: its sender stopped with the message out or about to be")
	}
	n, err := s.queuedNote(ctx, c)
	var threads threads
	if err == nil {
		threads, err = s.threadsOf(ctx, ep, n)
	}
	if err == nil && ctx.Err() != nil {
		err = ctx.Err() // stopping, and the send has not started
	}
	switch {
	case bus.IsPermanent(err):
		a.Outcome, a.Error = postgres.OutcomeFailed, err.Error()
		s.record(ctx, log, a)
		return
	case err != nil:
		if ctx.Err() == nil {
			log.WarnContext(ctx, "preparing a delivery failed, will retry", "error", err)
		}
		if err := s.deliveries.Release(context.WithoutCancel(ctx), s.replica, c.EventID, name); err != nil {
			log.WarnContext(ctx, "releasing a delivery failed: taken again when its lease ends", "error", err)
		}
		return
	}

	// The claim is committed, and the send follows at once: the window
	// in which a death leaves the outcome in doubt is the send itself.
	sendCtx, cancel := s.sendContext(ctx, c.EventID, name)
	sendCtx = channel.WithProgress(sendCtx, &progress{s: s, c: c, channel: name})
	var since time.Time
	if c.InDoubt {
		since = c.PostedAt
	}
	id, found, sendErr := s.post(sendCtx, ep, n, threads, since)
	// Abandoned, or timed out waiting for the answer: the provider may
	// have the message.
	abandoned := sendErr != nil && (sendCtx.Err() != nil || awaitedInVain(sendErr))
	cancel()
	v := channel.Judge(sendErr)
	a.HTTPStatus, a.RetryAfter = v.Status, v.RetryAfter
	backoff := max(v.RetryAfter, min(time.Second<<min(c.Attempts, 16), maxBackoff))
	_, finder := ep.Channel.(channel.Finder)
	switch {
	case sendErr == nil:
		a.Outcome, a.MessageID, a.HTTPStatus = postgres.OutcomeSent, id, http.StatusOK
		if c.InDoubt {
			s.reconciled.WithLabelValues(name, map[bool]string{true: "found", false: "reposted"}[found]).Inc()
		}
	case v.Taken && finder:
		// Its id is the provider's to tell, at once.
		a.Outcome, a.Error = postgres.OutcomeInDoubt, sendErr.Error()
	case v.Taken:
		a.Outcome, a.Error, a.HTTPStatus, a.MessageID = postgres.OutcomeSent, sendErr.Error(), http.StatusOK, id
		log.WarnContext(ctx, "notification sent, its id unknown: its replies go on their own", "error", sendErr)
	case c.Attempts+1 >= s.opts.MaxDeliver:
		a.Outcome, a.Error = postgres.OutcomeFailed, sendErr.Error()
	case abandoned:
		// Sent again by whichever sender comes first -- at once when
		// notify stopped, after a backoff when the provider was slow --
		// looked up first where the provider can tell.
		a.Outcome, a.Error = postgres.OutcomeInDoubt, "gave up waiting for "+name+" with the message out: "+sendErr.Error()
		if ctx.Err() == nil {
			a.DueIn = backoff
		}
		log.WarnContext(ctx, "delivery in doubt: sent again, looked up first where the provider can tell", "error", sendErr)
	case v.Retry:
		a.Outcome, a.Error, a.DueIn = postgres.OutcomeRetry, sendErr.Error(), backoff
		if v.RetryAfter > 0 || v.Status >= 400 && v.Status < 500 {
			s.pause(ctx, log, name, backoff, sendErr)
		}
	default:
		a.Outcome, a.Error = postgres.OutcomeFailed, sendErr.Error()
	}
	if a.Outcome == postgres.OutcomeInDoubt {
		s.doubts.WithLabelValues(name).Inc()
	}
	s.record(ctx, log, a)
}

// awaitedInVain reports whether err is a request that timed out after it
// may have reached the provider: not a connection that could not be made.
func awaitedInVain(err error) bool {
	if op, ok := errors.AsType[*net.OpError](err); ok && op.Op == "dial" {
		return false
	}
	ne, ok := errors.AsType[net.Error](err)
	return errors.Is(err, context.DeadlineExceeded) || ok && ne.Timeout()
}

// sendContext is the context of one send: it outlives ctx by the stop
// grace, so that a send in flight when notify stops may finish, and
// renews the claim's lease while it lasts.
func (s *Service) sendContext(ctx context.Context, eventID, name string) (context.Context, context.CancelFunc) {
	sendCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), sendTimeout)
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.opts.StopGrace, cancel)
		context.AfterFunc(sendCtx, func() { t.Stop() })
	})
	go db.KeepLease(sendCtx, s.opts.Lease, func(ctx context.Context) (bool, error) {
		return true, s.deliveries.Renew(ctx, s.replica, eventID, name, s.opts.Lease)
	}, func(err error) {
		s.log.WarnContext(ctx, "renewing a claim failed", "channel", name, "event_id", eventID, "error", err)
	})
	return sendCtx, func() { cancel(); stop() }
}

// outliving is a context that ends StopGrace after ctx does: the work it
// bounds may finish when notify stops.
func (s *Service) outliving(ctx context.Context) (context.Context, context.CancelFunc) {
	out, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(s.opts.StopGrace, cancel)
		context.AfterFunc(out, func() { t.Stop() })
	})
	return out, func() { stop(); cancel() }
}

// pause holds channel name back for d on every replica: its provider
// asked to be left alone, and every message now would be refused too.
func (s *Service) pause(ctx context.Context, log *slog.Logger, name string, d time.Duration, cause error) {
	if err := s.deliveries.Pause(context.WithoutCancel(ctx), name, time.Now().Add(d), cause.Error()); err != nil {
		log.WarnContext(ctx, "pausing a channel failed", "error", err)
		return
	}
	log.WarnContext(ctx, "channel paused: its provider asked to wait", "for", d.String(), "error", cause)
}

// record stores an attempt at a claimed delivery, trying again should
// the database be away for as long as notify runs (and StopGrace after):
// what the provider answered is known only here. A send it cannot record
// stays claimed until its lease ends, and is then in doubt.
func (s *Service) record(ctx context.Context, log *slog.Logger, a postgres.Attempt) {
	ctx, cancel := s.outliving(ctx)
	defer cancel()
	var err error
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, maxRecordWait) {
		err = s.deliveries.Record(ctx, s.replica, a)
		if err == nil || errors.Is(err, postgres.ErrClaimLost) {
			break
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			log.ErrorContext(ctx, "delivery attempt not recorded: its claim decides when its lease ends", "outcome", string(a.Outcome), "error", err)
			return
		case <-t.C:
		}
	}
	if err != nil {
		// Its lease ran out (the database was slow or away) and another
		// sender took it over.
		log.ErrorContext(ctx, "delivery attempt not recorded: another sender took the delivery over, in doubt", "outcome", string(a.Outcome), "error", err)
		return
	}
	s.outcomes.WithLabelValues(a.Channel, string(a.Outcome)).Inc()
	switch a.Outcome {
	case postgres.OutcomeSent:
		log.InfoContext(ctx, "notification sent")
	case postgres.OutcomeFailed:
		log.ErrorContext(ctx, "notification given up", "error", a.Error)
	}
}

// newCounter is a counter by labels, registered with reg unless it is
// nil.
func newCounter(reg prometheus.Registerer, name, help string, labels ...string) *prometheus.CounterVec {
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels)
	if reg != nil {
		reg.MustRegister(c)
	}
	return c
}

// newMetrics are the sender's counters, registered with reg unless it
// is nil.
func newMetrics(reg prometheus.Registerer) (outcomes, doubts, reconciled *prometheus.CounterVec) {
	return newCounter(reg, "vigil_notify_deliveries_total",
			"Delivery attempts by channel and outcome (sent, retry, failed, in_doubt: the provider may have the message, its answer lost).",
			"channel", "outcome"),
		newCounter(reg, "vigil_notify_deliveries_in_doubt_total",
			"Deliveries found in doubt by channel: a sender died, lost its database or gave up waiting with the message out, or the provider's answer could not be read.",
			"channel"),
		newCounter(reg, "vigil_notify_deliveries_reconciled_total",
			"Deliveries in doubt settled by channel and result: found (the provider had the message: its id adopted, nothing sent) or reposted (sent again: with its key where the provider dedupes, marked as a possible repeat where it cannot tell).",
			"channel", "result")
}

// progress is a claimed delivery's parts (channel.Progress), in its row:
// those accepted on earlier attempts, as claimed, and those accepted now,
// recorded as they are.
type progress struct {
	s       *Service
	c       *postgres.Claimed
	channel string
}

func (p *progress) Done(part string) bool { return slices.Contains(p.c.Parts, part) }

func (p *progress) Accepted(ctx context.Context, part string) error {
	if err := p.s.deliveries.Accept(ctx, p.s.replica, p.c.EventID, p.channel, part); err != nil {
		return err
	}
	p.c.Parts = append(p.c.Parts, part)
	return nil
}
