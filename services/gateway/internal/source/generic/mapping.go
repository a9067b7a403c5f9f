// Package generic is the webhook source an admin declares for a sender
// Vigil has no format of its own for (Datadog, Uptime Kuma, a script with
// curl): a Mapping of CEL expressions turns the sender's JSON into alerts.
//
// CEL (https://cel.dev) is the expression language of Kubernetes'
// validation rules: it is not Turing complete, has no I/O (an expression
// sees only the variables given to it: the body and the headers), and
// every evaluation here is bounded by a cost limit, so an admin's mapping
// and a stranger's body together can do no more than compute strings.
package generic

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/cel-go/cel"
	"github.com/google/cel-go/common/types"
	"github.com/google/cel-go/common/types/ref"
	"github.com/google/cel-go/common/types/traits"
	"github.com/google/cel-go/ext"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// Mapping says how one sender's JSON becomes alerts: each field is a CEL
// expression over `body` (the parsed JSON), `headers` (the request's
// headers, lower-case names, credentials left out) and `item` (the element
// of `alerts` being mapped, or the body itself when Alerts is empty).
type Mapping struct {
	// Alerts yields the list of elements that each become one alert;
	// empty: the body is one alert.
	Alerts string `json:"alerts,omitempty"`
	// Labels name the alert (and so its fingerprint: repeats with the
	// same labels are one alert). A label whose expression yields null,
	// an empty string or an absent optional is left out.
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Status yields "firing" or "resolved"; empty: firing.
	Status string `json:"status,omitempty"`
	// StartsAt and EndsAt yield a timestamp, an RFC 3339 string or Unix
	// seconds; empty: the time the request came (and, for a resolved
	// alert, its end).
	StartsAt     string `json:"starts_at,omitempty"`
	EndsAt       string `json:"ends_at,omitempty"`
	GeneratorURL string `json:"generator_url,omitempty"`
}

// Bounds of a mapping and of its work on one request.
const (
	// MaxExpression bounds one expression's source.
	MaxExpression = 4 << 10
	// CostLimit bounds one evaluation of one expression (CEL's cost
	// units, about one per operation and per 10 bytes a string function
	// reads: Kubernetes' per-call limit).
	CostLimit = 1_000_000
	// RequestCost bounds every evaluation one request causes.
	RequestCost = 50 * CostLimit
	// MaxDepth bounds the nesting of a body's JSON.
	MaxDepth = 64
	// MaxEvalTime bounds the wall-clock time of every evaluation one
	// request causes: cost counts operations, and a costly operation on
	// large values (a map over thousands of items) can take far longer
	// per unit than another.
	MaxEvalTime = 2 * time.Second
	// maxErrorText bounds CEL's error message in a violation: it may
	// quote the body (a key, a value).
	maxErrorText = 256
)

// Program is a compiled Mapping.
type Program struct {
	alerts       cel.Program
	labels       []field
	annotations  []field
	status       cel.Program
	startsAt     cel.Program
	endsAt       cel.Program
	generatorURL cel.Program
	// evalTime bounds one request's evaluations (MaxEvalTime).
	evalTime time.Duration
}

// WithEvalTime returns p with another bound on one request's evaluation
// time than MaxEvalTime: for tests of the other bounds on slow machines.
func (p *Program) WithEvalTime(d time.Duration) *Program {
	q := *p
	q.evalTime = d
	return &q
}

// field is one compiled entry of labels or annotations.
type field struct {
	name, path string
	prg        cel.Program
}

var env = func() *cel.Env {
	e, err := cel.NewEnv(
		cel.Variable("body", cel.DynType),
		cel.Variable("item", cel.DynType),
		cel.Variable("headers", cel.MapType(cel.StringType, cel.StringType)),
		cel.OptionalTypes(),
		ext.Strings(),
	)
	if err != nil {
		panic(err)
	}
	return e
}()

// Compile checks every expression of m and compiles it; a
// *server.BadRequestError names each expression CEL refused (fields
// under "mapping.") with CEL's message.
func Compile(m Mapping) (*Program, error) {
	var bad server.BadRequestError
	one := func(path, expr string) cel.Program {
		if expr == "" {
			return nil
		}
		if len(expr) > MaxExpression {
			bad.Addf(path, "must be at most %d bytes, got %d", MaxExpression, len(expr))
			return nil
		}
		ast, iss := env.Compile(expr)
		if iss.Err() != nil {
			bad.Add(path, strings.TrimSpace(iss.Err().Error()))
			return nil
		}
		// Checked for interruption every 100 iterations of a
		// comprehension, so the request's deadline stops a long one.
		prg, err := env.Program(ast, cel.CostLimit(CostLimit), cel.InterruptCheckFrequency(100))
		if err != nil {
			bad.Add(path, err.Error())
			return nil
		}
		return prg
	}
	set := func(path string, exprs map[string]string, labelNames bool) []field {
		if len(exprs) > source.MaxLabels {
			bad.Addf(path, "must hold at most %d entries, got %d", source.MaxLabels, len(exprs))
			return nil
		}
		var out []field
		for _, name := range slices.Sorted(maps.Keys(exprs)) {
			p := path + "." + name
			switch {
			case labelNames && !model.UTF8Validation.IsValidLabelName(name):
				bad.Addf(path, "%q is not a valid label name", name)
				continue
			case name == "" || len(name) > source.MaxNameLen:
				bad.Addf(path, "names must be 1 to %d bytes", source.MaxNameLen)
				continue
			case exprs[name] == "":
				bad.Add(p, "must not be empty")
				continue
			}
			if prg := one(p, exprs[name]); prg != nil {
				out = append(out, field{name: name, path: strings.TrimPrefix(p, "mapping."), prg: prg})
			}
		}
		return out
	}
	if len(m.Labels) == 0 {
		bad.Add("mapping.labels", "must name at least one label (alertname, say)")
	}
	p := &Program{
		evalTime:     MaxEvalTime,
		alerts:       one("mapping.alerts", m.Alerts),
		labels:       set("mapping.labels", m.Labels, true),
		annotations:  set("mapping.annotations", m.Annotations, false),
		status:       one("mapping.status", m.Status),
		startsAt:     one("mapping.starts_at", m.StartsAt),
		endsAt:       one("mapping.ends_at", m.EndsAt),
		generatorURL: one("mapping.generator_url", m.GeneratorURL),
	}
	if err := bad.Err("invalid mapping"); err != nil {
		return nil, err
	}
	return p, nil
}

// hiddenHeaders are not shown to a mapping: credentials do not belong in
// labels.
var hiddenHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "X-Vigil-Signature"}

// eval is one request's evaluation: what it has spent, and its variables.
type eval struct {
	ctx      context.Context //nolint:containedctx // one request's evaluations share its deadline
	spent    uint64
	evalTime time.Duration
	vars     map[string]any
	path     string // of the alert being mapped: "alerts[3]"
	bad      server.BadRequestError
	aborted  bool
}

// Map turns one request (body and headers) into alerts at now. A
// *server.BadRequestError for a body that is not JSON, or an expression
// that fails or yields what its field cannot take, naming the field.
func (p *Program) Map(body []byte, h http.Header, now time.Time) ([]*typesv1.Alert, error) {
	doc, err := decode(body)
	if err != nil {
		return nil, server.InvalidArgument("invalid body", server.FieldViolation{Field: "body", Description: err.Error()})
	}
	headers := make(map[string]string, len(h))
	for k, vs := range h {
		if !slices.Contains(hiddenHeaders, http.CanonicalHeaderKey(k)) {
			headers[strings.ToLower(k)] = strings.Join(vs, ", ")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.evalTime)
	defer cancel()
	e := &eval{ctx: ctx, evalTime: p.evalTime, vars: map[string]any{"body": doc, "item": doc, "headers": headers}}
	items := []any{doc}
	if p.alerts != nil {
		v, ok := e.run("alerts", p.alerts)
		if !ok {
			return nil, e.bad.Err("the mapping failed")
		}
		list, ok := v.(traits.Lister)
		if !ok {
			return nil, server.InvalidArgument("the mapping failed", server.FieldViolation{Field: "alerts", Description: "must yield a list, got " + string(v.Type().TypeName())})
		}
		n, _ := list.Size().Value().(int64)
		if n > source.MaxAlerts {
			return nil, server.InvalidArgument("the mapping failed", server.FieldViolation{Field: "alerts", Description: fmt.Sprintf("yields %d elements, at most %d are taken", n, source.MaxAlerts)})
		}
		items = make([]any, n)
		for i := range n {
			items[i] = list.Get(types.Int(i))
		}
	}
	out := make([]*typesv1.Alert, 0, len(items))
	for i, it := range items {
		e.vars["item"] = it
		if p.alerts != nil {
			e.path = fmt.Sprintf("alerts[%d].", i)
		}
		a := p.alert(e, now)
		if e.aborted {
			break
		}
		out = append(out, a)
	}
	if err := e.bad.Err("the mapping failed"); err != nil {
		return nil, err
	}
	return out, nil
}

func (p *Program) alert(e *eval, now time.Time) *typesv1.Alert {
	a := &typesv1.Alert{
		Labels: map[string]string{}, Source: typesv1.AlertSource_ALERT_SOURCE_GENERIC,
		Status: typesv1.AlertStatus_ALERT_STATUS_FIRING, StartsAt: timestamppb.New(now),
	}
	for _, f := range p.labels {
		if s, ok := e.text(f.path, f.prg); ok && s != "" {
			a.Labels[f.name] = s
		}
	}
	for _, f := range p.annotations {
		if s, ok := e.text(f.path, f.prg); ok && s != "" {
			if a.Annotations == nil {
				a.Annotations = map[string]string{}
			}
			a.Annotations[f.name] = s
		}
	}
	if p.status != nil {
		if s, ok := e.text("status", p.status); ok {
			switch strings.ToLower(s) {
			case "firing":
			case "resolved":
				a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
			default:
				e.bad.Addf(e.path+"status", "must yield \"firing\" or \"resolved\", got %s", source.Quote(s))
			}
		}
	}
	if t, ok := e.time("starts_at", p.startsAt); ok {
		a.StartsAt = timestamppb.New(t)
	}
	if t, ok := e.time("ends_at", p.endsAt); ok {
		a.EndsAt = timestamppb.New(t)
	}
	if a.Status == typesv1.AlertStatus_ALERT_STATUS_RESOLVED && a.EndsAt == nil {
		a.EndsAt = timestamppb.New(now)
	}
	if p.generatorURL != nil {
		a.GeneratorUrl, _ = e.text("generator_url", p.generatorURL)
	}
	return a
}

// run evaluates prg, charging the request's budget; false when it failed
// (recorded as a violation of field).
func (e *eval) run(field string, prg cel.Program) (ref.Val, bool) {
	if e.aborted {
		return nil, false
	}
	v, det, err := prg.ContextEval(e.ctx, e.vars)
	if det != nil && det.ActualCost() != nil {
		e.spent += *det.ActualCost()
	}
	if e.ctx.Err() != nil {
		e.bad.Addf(e.path+field, "the mapping's evaluation of this request took too long (at most %s)", e.evalTime)
		e.aborted = true
		return nil, false
	}
	if err != nil {
		msg := err.Error()
		if len(msg) > maxErrorText {
			msg = strings.ToValidUTF8(msg[:maxErrorText], "") + "..."
		}
		e.bad.Add(e.path+field, msg)
		return nil, false
	}
	if e.spent > RequestCost {
		e.bad.Addf(e.path+field, "the mapping's evaluation of this request exceeded its cost limit (%d)", RequestCost)
		e.aborted = true
		return nil, false
	}
	if o, ok := v.(*types.Optional); ok {
		if !o.HasValue() {
			return types.NullValue, true
		}
		v = o.GetValue()
	}
	return v, true
}

// text is what a label, an annotation, the status or a link takes: a
// string, a number or a bool written as text; null as "".
func (e *eval) text(field string, prg cel.Program) (string, bool) {
	v, ok := e.run(field, prg)
	if !ok {
		return "", false
	}
	switch v := v.(type) {
	case types.String:
		return string(v), true
	case types.Int:
		return strconv.FormatInt(int64(v), 10), true
	case types.Uint:
		return strconv.FormatUint(uint64(v), 10), true
	case types.Double:
		return strconv.FormatFloat(float64(v), 'f', -1, 64), true
	case types.Bool:
		return strconv.FormatBool(bool(v)), true
	case types.Null:
		return "", true
	case types.Timestamp:
		return v.Time.UTC().Format(time.RFC3339Nano), true
	}
	e.bad.Addf(e.path+field, "must yield a string, a number or a bool, got %s", v.Type().TypeName())
	return "", false
}

// time reads a timestamp, an RFC 3339 string or Unix seconds; false for
// no expression, null, or a failure (recorded).
func (e *eval) time(field string, prg cel.Program) (time.Time, bool) {
	if prg == nil {
		return time.Time{}, false
	}
	v, ok := e.run(field, prg)
	if !ok {
		return time.Time{}, false
	}
	switch v := v.(type) {
	case types.Timestamp:
		return v.Time, true
	case types.String:
		t, err := time.Parse(time.RFC3339Nano, string(v))
		if err == nil {
			return t, true
		}
		e.bad.Addf(e.path+field, "must yield a timestamp, got %s: not RFC 3339 (write timestamp(...) or parse it in the expression)", source.Quote(string(v)))
	case types.Int:
		return time.Unix(int64(v), 0), true
	case types.Double:
		return time.UnixMilli(int64(float64(v) * 1000)), true
	case types.Null:
	default:
		e.bad.Addf(e.path+field, "must yield a timestamp, got %s", v.Type().TypeName())
	}
	return time.Time{}, false
}

// decode parses a body as JSON, refusing more than MaxDepth levels of
// nesting and anything after the value.
func decode(body []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("not JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("not JSON: more than one value")
	}
	if depth(v, 0) > MaxDepth {
		return nil, fmt.Errorf("JSON nested deeper than %d levels", MaxDepth)
	}
	return v, nil
}

func depth(v any, d int) int {
	if d > MaxDepth {
		return d
	}
	deepest := d
	switch v := v.(type) {
	case map[string]any:
		for _, c := range v {
			deepest = max(deepest, depth(c, d+1))
		}
	case []any:
		for _, c := range v {
			deepest = max(deepest, depth(c, d+1))
		}
	}
	return deepest
}
