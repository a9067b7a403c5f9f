// Package ingest turns alerts from any source into alert.fired and
// alert.resolved events and stores them on the bus in one batch. A key of
// one team may send only the alerts whose subject is its team's or
// nobody's (pkg/subject): the alerts of another team's namespace are
// refused, whatever their labels say.
package ingest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/subject"
)

// Producer names the gateway in the events it publishes.
const Producer = "gateway"

// StreamFullRetryAfter is when a sender refused because the ALERTS
// stream is full (bus.ErrStreamFull) is told to try again: room comes
// back as the oldest alerts age out, not within a second.
const StreamFullRetryAfter = 30 * time.Second

// Publisher stores events durably.
type Publisher interface {
	Publish(ctx context.Context, events ...bus.Event) error
}

// Owners is what Vigil knows of who owns the namespaces and apps the
// label sets name (appteam.IndexFor over the gateway's projection).
type Owners func(ctx context.Context, labelSets ...map[string]string) (*subject.Index, error)

// Ingester publishes alerts as events.
type Ingester struct {
	pub     Publisher
	owners  Owners
	refused prometheus.Counter
	full    prometheus.Counter
}

// New returns an Ingester; owners decides whose each alert is for keys
// of one team (nil: no alert belongs to a team, as before any app or
// mapping is known); reg, when set, gets the refusals' counter.
func New(pub Publisher, owners Owners, reg prometheus.Registerer) *Ingester {
	i := &Ingester{pub: pub, owners: owners, refused: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_gateway_alerts_refused_foreign_total",
		Help: "Alerts refused because the sender's key belongs to a team that does not own the alert's subject.",
	}), full: prometheus.NewCounter(prometheus.CounterOpts{
		Name: "vigil_gateway_alerts_refused_stream_full_total",
		Help: "Alerts refused (503 with Retry-After) because the ALERTS stream is full: monitor is far behind, or the stream is too small for the alerts of its max age.",
	})}
	if reg != nil {
		reg.MustRegister(i.refused, i.full)
	}
	return i
}

// ForeignError refuses a batch with an alert whose subject belongs to a
// team the sender is not of. Nothing of the batch is stored.
type ForeignError struct {
	// Index of the first such alert in the batch, and its subject.
	Index   int
	Subject *typesv1.Subject
	Sender  string
	Count   int
}

func (e *ForeignError) Error() string {
	return fmt.Sprintf("alert %d of %d is about %s, which belongs to team %s: %s may send only its own team's alerts (or alerts of no team's)",
		e.Index, e.Count, subject.Describe(e.Subject), e.Subject.GetTeam(), e.Sender)
}

// Ingest publishes one event per alert and returns once all are stored.
// The fingerprint is Alertmanager's hash of the labels, whatever the
// sender said (IngestAlerts refuses one that differs): a sender cannot
// address another alert by its fingerprint. The caller in ctx (nil: a
// trusted sender in the process) must reach each alert's subject's team.
func (i *Ingester) Ingest(ctx context.Context, alerts []*typesv1.Alert) error {
	if p, ok := auth.FromContext(ctx); ok && !p.AllTeams && i.owners != nil {
		if err := i.check(ctx, p, alerts); err != nil {
			return err
		}
	}
	events := make([]bus.Event, 0, len(alerts))
	for _, a := range alerts {
		a.Fingerprint = alertlabel.Fingerprint(a.GetLabels())
		meta := bus.NewMeta(Producer, nil)
		meta.App = alertlabel.App(a.GetLabels())
		if a.GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
			events = append(events, &eventsv1.AlertResolved{Meta: meta, Alert: a})
		} else {
			a.Status = typesv1.AlertStatus_ALERT_STATUS_FIRING
			events = append(events, &eventsv1.AlertFired{Meta: meta, Alert: a})
		}
	}
	if err := i.pub.Publish(ctx, events...); err != nil {
		if errors.Is(err, bus.ErrStreamFull) {
			i.full.Add(float64(len(alerts)))
		}
		return fmt.Errorf("ingest %d alerts: %w", len(alerts), err)
	}
	return nil
}

// check refuses alerts whose subject belongs to a team p is not of.
func (i *Ingester) check(ctx context.Context, p auth.Principal, alerts []*typesv1.Alert) error {
	sets := make([]map[string]string, len(alerts))
	for n, a := range alerts {
		sets[n] = a.GetLabels()
	}
	ix, err := i.owners(ctx, sets...)
	if err != nil {
		return fmt.Errorf("owners of %d alerts: %w", len(alerts), err)
	}
	for n, ls := range sets {
		s := ix.Resolve(ls)
		if s.GetTeam() != "" && !slices.Contains(p.Teams, s.GetTeam()) {
			i.refused.Add(float64(len(alerts)))
			return &ForeignError{Index: n, Subject: s, Sender: p.String(), Count: len(alerts)}
		}
	}
	return nil
}
