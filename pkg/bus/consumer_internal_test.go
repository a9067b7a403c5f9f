package bus

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// An event's age is its meta.occurred_at's, or, when its producer left that
// unset, its message's storage time's; an event of unknown age is fresh.
func TestIsStale(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	old, fresh := now.Add(-2*time.Hour), now.Add(-time.Minute)
	for _, tc := range []struct {
		name        string
		occurred    *timestamppb.Timestamp
		stored      time.Time
		maxEventAge time.Duration
		want        bool
	}{
		{name: "occurred long ago", occurred: timestamppb.New(old), stored: fresh, maxEventAge: time.Hour, want: true},
		{name: "occurred lately, stored long ago", occurred: timestamppb.New(fresh), stored: old, maxEventAge: time.Hour, want: false},
		{name: "no occurred_at, stored long ago", stored: old, maxEventAge: time.Hour, want: true},
		{name: "zero occurred_at, stored lately", occurred: &timestamppb.Timestamp{}, stored: fresh, maxEventAge: time.Hour, want: false},
		{name: "age unknown", maxEventAge: time.Hour, want: false},
		{name: "in the future", occurred: timestamppb.New(now.Add(time.Hour)), maxEventAge: time.Hour, want: false},
		{name: "no max age", occurred: timestamppb.New(old), stored: old, want: false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := &Consumer{cfg: ConsumerConfig{MaxEventAge: tc.maxEventAge}}
			d := &Delivery{
				Event: &eventsv1.AlertFired{Meta: &eventsv1.EventMeta{Id: "x", OccurredAt: tc.occurred}},
				in:    &inbound{stored: tc.stored},
			}
			assert.Equal(t, tc.want, c.isStale(d, now))
		})
	}
}
