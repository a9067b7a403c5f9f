package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/vigil-ops/vigil/pkg/telemetry"
)

func TestLogLinesCarryTheTraceID(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "json", slog.LevelInfo)
	require.NoError(t, err)
	ctx, span := sdktrace.NewTracerProvider().Tracer("test").Start(context.Background(), "op")
	defer span.End()

	log.With("component", "x").InfoContext(ctx, "inside a span")
	log.InfoContext(context.Background(), "outside")

	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	require.Len(t, lines, 2)
	var in, out map[string]any
	require.NoError(t, json.Unmarshal(lines[0], &in))
	require.NoError(t, json.Unmarshal(lines[1], &out))
	assert.Equal(t, span.SpanContext().TraceID().String(), in["trace_id"])
	assert.Equal(t, "x", in["component"])
	assert.NotContains(t, out, "trace_id")
}

func TestUnknownLogFormat(t *testing.T) {
	t.Parallel()
	_, err := telemetry.NewLogger(&bytes.Buffer{}, "xml", slog.LevelInfo)
	require.ErrorContains(t, err, `"xml"`)
}
