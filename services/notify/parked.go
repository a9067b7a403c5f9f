package notify

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/postgres"
)

const (
	// parkedBatch is how many due replies one statement takes.
	parkedBatch = 20
	// parkedLease is how long a taken reply is this replica's to send:
	// longer than a send and its record take (parkedSendTimeout).
	parkedLease = 2 * time.Minute
	// parkedSendTimeout bounds sending one parked reply and recording it.
	parkedSendTimeout = time.Minute
	// maxParkedBackoff bounds the wait before a parked reply is retried.
	maxParkedBackoff = 5 * time.Minute
)

// wake has the parked replies looked at now: a parent was recorded.
func (s *Service) wake() {
	select {
	case s.due <- struct{}{}:
	default: // already woken
	}
}

// sendParked sends the parked replies that are due, at start (replies
// parked or released before a restart), whenever a parent is recorded,
// and every little while for those whose wait is over, until ctx ends.
func (s *Service) sendParked(ctx context.Context) {
	// A reply that waited ReplyWait goes out within a quarter more.
	tick := time.NewTicker(min(max(s.opts.ReplyWait/4, time.Second), 15*time.Second))
	defer tick.Stop()
	for {
		// Each channel on its own, as in handle: a hanging one holds back
		// no other's replies.
		var wg sync.WaitGroup
		for _, ep := range s.channels.Endpoints() {
			wg.Go(func() { s.sendDue(ctx, ep) })
		}
		wg.Wait()
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-s.due:
		}
	}
}

// sendDue sends ep's due parked replies, in the order they were parked.
func (s *Service) sendDue(ctx context.Context, ep *channel.Endpoint) {
	for ctx.Err() == nil {
		taken := time.Now()
		due, err := s.deliveries.TakeDue(ctx, ep.Name, ep.Target, s.opts.ReplyWait, parkedLease, parkedBatch)
		if err != nil {
			if ctx.Err() == nil {
				s.log.WarnContext(ctx, "taking parked replies failed", "channel", ep.Name, "error", err)
			}
			return
		}
		for _, p := range due {
			if ctx.Err() != nil {
				return // the rest are taken again once their lease is over
			}
			// A reply is sent only while its lease outlasts the send: after
			// that another replica may take it (a channel that answers
			// slowly makes a batch outlive its lease), and it would go out
			// twice. The rest are taken again once their lease is over.
			if time.Since(taken) > parkedLease-parkedSendTimeout {
				return
			}
			s.sendOne(ctx, ep, p)
		}
		if len(due) < parkedBatch {
			return
		}
	}
}

// sendOne sends a parked reply under its parent when that was sent, on
// its own otherwise, and records it; a retry makes it due again later. The
// reply in hand is finished when notify stops, as a consumer's is.
func (s *Service) sendOne(ctx context.Context, ep *channel.Endpoint, p postgres.Parked) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), parkedSendTimeout)
	defer cancel()
	n, err := s.parkedNote(ctx, p)
	if err != nil {
		if bus.IsPermanent(err) {
			s.giveUp(ctx, ep, p, err)
			return
		}
		s.log.WarnContext(ctx, "sending a parked reply failed, will retry", "channel", ep.Name, "event_id", p.EventID, "error", err)
		return
	}
	var after string
	if n.after != "" {
		parent, err := s.deliveries.Posted(ctx, n.after, ep.Name, ep.Target)
		if err != nil {
			s.log.WarnContext(ctx, "sending a parked reply failed, will retry", "channel", ep.Name, "event_id", p.EventID, "error", err)
			return
		}
		after = parent.MessageID
	}
	err = s.post(ctx, ep, n, after, p.Attempts+1 >= s.opts.MaxDeliver)
	r, retry := errors.AsType[*retryError](err)
	switch {
	case retry:
		delay := r.delay
		if delay == 0 {
			delay = min(time.Second<<min(p.Attempts, 16), maxParkedBackoff)
		}
		if err := s.deliveries.Postpone(ctx, p.EventID, ep.Name, delay); err != nil {
			s.log.WarnContext(ctx, "postponing a parked reply failed", "channel", ep.Name, "event_id", p.EventID, "error", err)
		}
	case bus.IsPermanent(err):
		s.log.ErrorContext(ctx, "parked reply given up", "channel", ep.Name, "event_id", p.EventID, "error", err)
	case err != nil:
		// Its lease runs out, and it is taken again.
		s.log.WarnContext(ctx, "sending a parked reply failed, will retry", "channel", ep.Name, "event_id", p.EventID, "error", err)
	}
}

// parkedNote is the message of a parked reply's event, drawn anew: an
// approval card that waited shows the decision that came meanwhile.
func (s *Service) parkedNote(ctx context.Context, p postgres.Parked) (note, error) {
	events, err := bus.Decode(p.Subject, p.Payload)
	if err == nil && len(events) != 1 {
		err = fmt.Errorf("%d events, want one", len(events))
	}
	if err != nil {
		return note{}, bus.Permanent(fmt.Errorf("decode parked %s: %w", p.Subject, err))
	}
	return s.noteOf(ctx, events[0])
}

// giveUp records a parked reply that can never be sent as failed, which
// unparks it.
func (s *Service) giveUp(ctx context.Context, ep *channel.Endpoint, p postgres.Parked, cause error) {
	s.log.ErrorContext(ctx, "parked reply given up", "channel", ep.Name, "event_id", p.EventID, "error", cause)
	err := s.deliveries.Record(ctx, postgres.Attempt{
		EventID: p.EventID, Channel: ep.Name, Subject: p.Subject, Target: ep.Target,
		Outcome: postgres.OutcomeFailed, Error: cause.Error(),
	})
	if err != nil {
		s.log.WarnContext(ctx, "recording a parked reply failed", "channel", ep.Name, "event_id", p.EventID, "error", err)
	}
}
