package bus

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
)

// NewMeta returns the metadata of a new event produced by producer. When the
// event follows from another (cause), it shares that event's correlation id,
// app and tenant, and names it as its causation.
func NewMeta(producer string, cause *eventsv1.EventMeta) *eventsv1.EventMeta {
	id := NewID()
	m := &eventsv1.EventMeta{
		Id:            id,
		OccurredAt:    timestamppb.New(time.Now()),
		Producer:      producer,
		CorrelationId: id,
	}
	if cause != nil {
		m.CausationId = cause.GetId()
		if cause.GetCorrelationId() != "" {
			m.CorrelationId = cause.GetCorrelationId()
		}
		m.App = cause.GetApp()
		m.Tenant = cause.GetTenant()
	}
	return m
}

// NewID returns a UUIDv7: unique and ordered by time, so ids sort in the
// order events happened.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does.
		panic(fmt.Sprintf("bus: uuid v7: %v", err))
	}
	return id.String()
}
