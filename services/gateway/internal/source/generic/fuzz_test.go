package generic_test

import (
	"errors"
	"net/http"
	"testing"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/generic"
)

// FuzzMap runs the shipped mappings over arbitrary bodies: a body is
// mapped or refused as a bad request, never a panic, an endless
// evaluation or more alerts than a request may carry.
func FuzzMap(f *testing.F) {
	var prgs []*generic.Program
	for _, dir := range []string{"datadog", "uptime-kuma", "curl"} {
		prg, err := generic.Compile(exampleMapping(f, dir))
		if err != nil {
			f.Fatal(err)
		}
		prgs = append(prgs, prg)
	}
	for _, name := range []string{"datadog/payload.json", "datadog/recovered.json", "uptime-kuma/down.json", "uptime-kuma/test.json", "curl/payload.json"} {
		f.Add(example(f, name))
	}
	f.Add([]byte(`{"alerts":[{"name":null}]}`))
	f.Add([]byte(`[[[[[[[[]]]]]]]]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, prg := range prgs {
			alerts, err := prg.Map(body, http.Header{"X-Test": {"1"}}, now)
			if err != nil {
				if _, ok := errors.AsType[*server.BadRequestError](err); !ok {
					t.Fatalf("%T: %v", err, err)
				}
				continue
			}
			if len(alerts) > source.MaxAlerts {
				t.Fatalf("%d alerts", len(alerts))
			}
		}
	})
}
