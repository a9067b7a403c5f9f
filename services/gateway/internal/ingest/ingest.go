// Package ingest turns alerts from any source into alert.fired and
// alert.resolved events and stores them on the bus in one batch.
package ingest

import (
	"context"
	"fmt"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Producer names the gateway in the events it publishes.
const Producer = "gateway"

// Publisher stores events durably.
type Publisher interface {
	Publish(ctx context.Context, events ...bus.Event) error
}

// Ingester publishes alerts as events.
type Ingester struct{ pub Publisher }

// New returns an Ingester.
func New(pub Publisher) *Ingester { return &Ingester{pub: pub} }

// Ingest publishes one event per alert and returns once all are stored. A
// missing fingerprint is computed from the labels with Alertmanager's
// algorithm.
func (i *Ingester) Ingest(ctx context.Context, alerts []*typesv1.Alert) error {
	events := make([]bus.Event, 0, len(alerts))
	for _, a := range alerts {
		if a.GetFingerprint() == "" {
			a.Fingerprint = alertlabel.Fingerprint(a.GetLabels())
		}
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
		return fmt.Errorf("ingest %d alerts: %w", len(alerts), err)
	}
	return nil
}
