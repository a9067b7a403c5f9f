package notify_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Of an incident's updates notify tells only that it flaps: once, in the
// incident's thread, however often the update is delivered; its other
// updates (counts, reasons of monitor's) say nothing.
func TestFlappingIsToldOnceInTheThread(t *testing.T) {
	t.Parallel()
	e := start(t, chatID)
	open := opened()
	first := e.openIncident(t, open)

	update := func(reason string, mutate func(*typesv1.Incident)) *eventsv1.IncidentUpdated {
		inc := proto.CloneOf(open.GetIncident())
		mutate(inc)
		return &eventsv1.IncidentUpdated{Meta: bus.NewMeta("monitor", nil), Incident: inc, Reason: reason}
	}
	counted := update("alert_added", func(inc *typesv1.Incident) { inc.AlertCount, inc.FiringCount = 2, 2 })
	flapping := update("flapping", func(inc *typesv1.Incident) {
		inc.AlertCount, inc.FiringCount, inc.Flapping = 2, 0, true
		inc.FlappingSince = timestamppb.New(time.Date(2026, 5, 1, 12, 12, 0, 0, time.UTC))
	})
	e.publish(t, counted, flapping)
	msgs := e.tg.WaitForMessages(t, 2, 30*time.Second)
	told := msgs[1]
	assert.Contains(t, told.PlainText, "Flapping: DiskFull in <prod>")
	assert.Contains(t, told.PlainText, "flapping since 2026-05-01 12:12:00 UTC")
	assert.Contains(t, told.PlainText, "0 of 2 alerts firing now")
	assert.Equal(t, first.MessageID, told.ReplyToMessageID, "in the incident's thread")

	// Delivered again (JetStream redelivers at least once): not told twice.
	m, err := bus.Encode(context.Background(), flapping)
	require.NoError(t, err)
	m.ID = "redelivered-copy"
	require.NoError(t, bus.NewPublisher(e.js, nil).PublishMessages(context.Background(), m))
	require.Never(t, func() bool { return len(e.tg.Messages()) > 2 }, 2*time.Second, 100*time.Millisecond)
	assert.Empty(t, e.attempts(t, counted.GetMeta().GetId()), "an ordinary update is not told")
}
