package source

import (
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/common/model"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Limits on what one request may carry, whatever its source. They are far
// above what a sane sender produces and bound the work one body causes
// downstream (the body's size is bounded before it is parsed).
const (
	MaxAlerts             = 10_000
	MaxLabels             = 256     // entries per label or annotation set
	MaxNameLen            = 1 << 10 // label and annotation names
	MaxLabelValueLen      = 16 << 10
	MaxAnnotationValueLen = 64 << 10 // descriptions and stack traces run long
	MaxURLLen             = 16 << 10
)

// Validate refuses alerts no retry makes valid: an empty or oversized
// label set, a name that is not a label name, values over the limits or
// not UTF-8, no start. Every violation is listed (up to
// server.MaxViolations), with the alert's index.
func Validate(alerts []*typesv1.Alert) error {
	var bad server.BadRequestError
	if len(alerts) > MaxAlerts {
		bad.Addf("alerts", "at most %d alerts per request, got %d", MaxAlerts, len(alerts))
		return bad.Err("too many alerts")
	}
	for i, a := range alerts {
		path := fmt.Sprintf("alerts[%d]", i)
		if len(a.GetLabels()) == 0 {
			bad.Add(path+".labels", "must not be empty")
		}
		checkSet(&bad, path+".labels", a.GetLabels(), MaxLabelValueLen, true)
		checkSet(&bad, path+".annotations", a.GetAnnotations(), MaxAnnotationValueLen, false)
		if a.GetStartsAt() == nil {
			bad.Add(path+".starts_at", "is required")
		}
		for field, u := range map[string]string{"generator_url": a.GetGeneratorUrl(), "external_url": a.GetExternalUrl()} {
			if len(u) > MaxURLLen || !utf8.ValidString(u) {
				bad.Addf(path+"."+field, "must be UTF-8 of at most %d bytes", MaxURLLen)
			}
		}
	}
	return bad.Err("invalid alerts")
}

func checkSet(bad *server.BadRequestError, path string, set map[string]string, maxValue int, labelNames bool) {
	if len(set) > MaxLabels {
		bad.Addf(path, "must hold at most %d entries, got %d", MaxLabels, len(set))
		return
	}
	for k, v := range set {
		switch {
		case len(k) > MaxNameLen || !utf8.ValidString(k):
			bad.Addf(path, "names must be UTF-8 of at most %d bytes", MaxNameLen)
		case labelNames && !model.UTF8Validation.IsValidLabelName(k):
			bad.Addf(path, "%q is not a valid label name", k)
		case len(v) > maxValue:
			bad.Addf(path+"."+k, "must be at most %d bytes, got %d", maxValue, len(v))
		case !utf8.ValidString(v):
			bad.Addf(path+"."+k, "must be UTF-8")
		}
	}
}
