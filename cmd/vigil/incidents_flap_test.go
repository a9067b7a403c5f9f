package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// A flapping incident says so in `vigil incidents list` and `get`; one
// that does not flaps shows its status alone.
func TestIncidentsShowFlapping(t *testing.T) {
	t.Parallel()
	since := time.Date(2026, 5, 1, 12, 12, 0, 0, time.UTC)
	flapping := &typesv1.Incident{
		Id: "0198a0a0-0000-7000-8000-000000000001", Title: "Flaky in shop", Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN,
		Flapping: true, FlappingSince: timestamppb.New(since), AlertCount: 1,
	}
	steady := &typesv1.Incident{Id: "0198a0a0-0000-7000-8000-000000000002", Title: "Down", Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN}

	var list bytes.Buffer
	printIncidents(&list, []*typesv1.Incident{flapping, steady})
	assert.Contains(t, list.String(), "000000000001  open (flapping)")
	assert.Regexp(t, `000000000002  open\s+-`, list.String())

	var got bytes.Buffer
	printIncident(&got, flapping)
	assert.Contains(t, got.String(), "Status:    open (flapping)\n")
	assert.Contains(t, got.String(), "Flapping:  since "+since.Local().Format(time.DateTime))
	got.Reset()
	printIncident(&got, steady)
	assert.NotContains(t, got.String(), "Flapping")
}
