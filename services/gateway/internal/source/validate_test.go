package source_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

func valid() *typesv1.Alert {
	return &typesv1.Alert{
		Labels:      map[string]string{"alertname": "HighErrorRate", "namespace": "shop"},
		Annotations: map[string]string{"summary": "5xx above 5 %"},
		StartsAt:    timestamppb.Now(),
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, source.Validate([]*typesv1.Alert{valid()}))
	require.NoError(t, source.Validate(nil), "a request without alerts is the source's to judge")

	for _, tc := range []struct {
		name  string
		mut   func(a *typesv1.Alert)
		field string
	}{
		{"no labels", func(a *typesv1.Alert) { a.Labels = nil }, "alerts[0].labels"},
		{"empty label name", func(a *typesv1.Alert) { a.Labels[""] = "x" }, "alerts[0].labels"},
		{"label value too long", func(a *typesv1.Alert) { a.Labels["x"] = strings.Repeat("v", source.MaxLabelValueLen+1) }, "alerts[0].labels.x"},
		{"label value not UTF-8", func(a *typesv1.Alert) { a.Labels["x"] = "\xff" }, "alerts[0].labels.x"},
		{"annotation name not UTF-8", func(a *typesv1.Alert) { a.Annotations["\xff"] = "x" }, "alerts[0].annotations"},
		{"annotation too long", func(a *typesv1.Alert) { a.Annotations["d"] = strings.Repeat("v", source.MaxAnnotationValueLen+1) }, "alerts[0].annotations.d"},
		{"too many labels", func(a *typesv1.Alert) {
			for i := range source.MaxLabels {
				a.Labels["l"+strings.Repeat("x", i)] = "v"
			}
		}, "alerts[0].labels"},
		{"no start", func(a *typesv1.Alert) { a.StartsAt = nil }, "alerts[0].starts_at"},
		{"link too long", func(a *typesv1.Alert) { a.GeneratorUrl = strings.Repeat("u", source.MaxURLLen+1) }, "alerts[0].generator_url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			a := valid()
			tc.mut(a)
			err := source.Validate([]*typesv1.Alert{a})
			var bad *server.BadRequestError
			require.ErrorAs(t, err, &bad)
			require.NotEmpty(t, bad.Violations)
			assert.Equal(t, tc.field, bad.Violations[0].Field)
		})
	}

	many := make([]*typesv1.Alert, source.MaxAlerts+1)
	for i := range many {
		many[i] = valid()
	}
	require.Error(t, source.Validate(many))
}
