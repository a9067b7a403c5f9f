package alertmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/prometheus/common/model"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// Limits on the fields only Alertmanager sends; the others are source.Max*.
// They are far above what Alertmanager produces for sane rules and bound the
// work one body can cause; the body size itself is the caller's to limit.
const (
	maxGroupKeyLen = 64 << 10 // holds the route's matchers and the group labels
	maxStringLen   = 16 << 10 // receiver, URLs and other strings
)

// version is the webhook payload version Alertmanager sends (still "4" in
// 0.25) and the only one this package understands.
const version = "4"

// Parse reads an Alertmanager webhook body from r and validates it. A body
// that breaks a rule yields a *server.BadRequestError listing every violation found;
// a failure to read r is returned wrapped, so that, for instance, an
// *http.MaxBytesError stays visible to errors.As.
//
// Unknown fields are ignored, as later Alertmanager versions may add some,
// but known fields must have the right JSON type. An alert without a
// fingerprint gets the one Alertmanager would have computed.
func Parse(r io.Reader) (*Message, error) {
	p := parsers.Get().(*parser)
	defer p.release()
	if _, err := p.body.ReadFrom(r); err != nil {
		return nil, fmt.Errorf("read alertmanager webhook: %w", err)
	}
	return p.parse(p.body.Bytes())
}

// ParseBytes is Parse of a body already read.
func ParseBytes(body []byte) (*Message, error) {
	p := parsers.Get().(*parser)
	defer p.release()
	return p.parse(body)
}

func (p *parser) parse(body []byte) (*Message, error) {
	msg := p.message(body)
	if err := p.bad.Err("invalid alertmanager webhook"); err != nil {
		return nil, err
	}
	return msg, nil
}

// parser collects the violations of one body. Parsers are pooled with their
// buffers: what Parse returns holds copies, never the body's bytes.
type parser struct {
	bad server.BadRequestError

	body  bytes.Buffer
	dec   *jsontext.Decoder
	buf   bytes.Buffer // what dec reads: the object or array at hand, in place
	arena []member     // the members of every object split so far
}

var parsers = sync.Pool{New: func() any { return new(parser) }}

// maxPooledBody and maxPooledMembers bound what a pooled parser keeps: the
// buffers and arena of an exceptionally large body are not held on to.
const (
	maxPooledBody    = 256 << 10
	maxPooledMembers = 4 << 10
)

func (p *parser) release() {
	p.bad = server.BadRequestError{}
	p.buf = bytes.Buffer{}
	if p.body.Cap() > maxPooledBody || cap(p.arena) > maxPooledMembers {
		return
	}
	p.body.Reset()
	p.arena = p.arena[:0]
	parsers.Put(p)
}

func (p *parser) add(field *at, format string, args ...any) {
	p.bad.Addf(field.String(), format, args...)
}

// document checks that body is exactly one JSON object and returns it.
func (p *parser) document(body []byte) (json.RawMessage, bool) {
	if len(bytes.TrimSpace(body)) == 0 {
		p.add(nil, "must be a JSON object, got an empty body")
		return nil, false
	}
	if json.Valid(body) {
		// The common case, checked without allocating; the decoding below
		// runs only to explain what is wrong.
		return p.object(bytes.TrimSpace(body))
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var syntax *json.SyntaxError
		switch {
		case errors.As(err, &syntax):
			// Offset counts the bytes read, the offending one included;
			// report that byte's offset, as for trailing data below.
			p.add(nil, "invalid JSON at byte offset %d: %s", max(syntax.Offset-1, 0), syntax)
		case errors.Is(err, io.ErrUnexpectedEOF):
			p.add(nil, "invalid JSON: unexpected end of input")
		default:
			p.add(nil, "invalid JSON: %s", err)
		}
		return nil, false
	}
	end := dec.InputOffset()
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		rest := body[end:]
		end += int64(len(rest) - len(bytes.TrimLeft(rest, " \t\r\n")))
		p.add(nil, "unexpected data after the JSON value at byte offset %d", end)
		return nil, false
	}
	return p.object(bytes.TrimSpace(raw))
}

func (p *parser) object(raw json.RawMessage) (json.RawMessage, bool) {
	if raw[0] != '{' {
		p.add(nil, "must be a JSON object, got %s", kind(raw))
		return nil, false
	}
	return raw, true
}

func (p *parser) message(body []byte) *Message {
	raw, ok := p.document(body)
	if !ok {
		return nil
	}
	ms, _ := p.members(nil, raw)
	f := p.fields(nil, ms)

	m := &Message{}
	versionPath := &at{name: "version"}
	if v, ok := p.str(versionPath, f.get("version"), maxStringLen); ok {
		switch {
		case v == "":
			p.add(versionPath, "is required and must be %q", version)
		case v != version:
			p.add(versionPath, "must be %q, got %s", version, source.Quote(v))
		}
		m.Version = v
	}
	m.GroupKey, _ = p.str(&at{name: "groupKey"}, f.get("groupKey"), maxGroupKeyLen)
	m.TruncatedAlerts = p.count(&at{name: "truncatedAlerts"}, f.get("truncatedAlerts"))
	m.Status = p.status(&at{name: "status"}, f.get("status"))
	m.Receiver, _ = p.str(&at{name: "receiver"}, f.get("receiver"), maxStringLen)
	m.GroupLabels, _ = p.labelSet(&at{name: "groupLabels"}, f.get("groupLabels"), source.MaxLabelValueLen, false)
	m.CommonLabels, _ = p.labelSet(&at{name: "commonLabels"}, f.get("commonLabels"), source.MaxLabelValueLen, false)
	m.CommonAnnotations, _ = p.labelSet(&at{name: "commonAnnotations"}, f.get("commonAnnotations"), source.MaxAnnotationValueLen, false)
	m.ExternalURL, _ = p.str(&at{name: "externalURL"}, f.get("externalURL"), maxStringLen)
	m.Alerts = p.alerts(&at{name: "alerts"}, f.get("alerts"))
	return m
}

func (p *parser) alerts(path *at, raw json.RawMessage) []Alert {
	if raw == nil || isNull(raw) {
		p.add(path, "is required and must hold at least one alert")
		return nil
	}
	if raw[0] != '[' {
		p.add(path, "must be an array, got %s", kind(raw))
		return nil
	}
	elems, err := p.elements(raw)
	if err != nil {
		p.add(path, "invalid JSON: %s", err)
		return nil
	}
	switch {
	case len(elems) == 0:
		p.add(path, "must not be empty")
		return nil
	case len(elems) > source.MaxAlerts:
		p.add(path, "must hold at most %d alerts, got %d", source.MaxAlerts, len(elems))
		return nil
	}
	alerts := make([]Alert, len(elems))
	for i, e := range elems {
		alerts[i] = p.alert(&at{up: path, index: i, elem: true}, bytes.TrimSpace(e))
	}
	return alerts
}

func (p *parser) alert(path *at, raw json.RawMessage) Alert {
	var a Alert
	if raw[0] != '{' {
		p.add(path, "must be an object, got %s", kind(raw))
		return a
	}
	ms, _ := p.members(path, raw)
	f := p.fields(path, ms)

	a.Status = p.status(&at{up: path, name: "status"}, f.get("status"))

	labelsPath := &at{up: path, name: "labels"}
	before := p.numViolations()
	var seen int
	a.Labels, seen = p.labelSet(labelsPath, f.get("labels"), source.MaxLabelValueLen, true)
	labelsOK := p.numViolations() == before
	if labelsOK && len(a.Labels) == 0 {
		if seen > 0 {
			p.add(labelsPath, "must hold at least one label with a non-empty value")
		} else {
			p.add(labelsPath, "must not be empty")
		}
		labelsOK = false
	}
	a.Annotations, _ = p.labelSet(&at{up: path, name: "annotations"}, f.get("annotations"), source.MaxAnnotationValueLen, false)

	startsPath, endsPath := &at{up: path, name: "startsAt"}, &at{up: path, name: "endsAt"}
	var startsOK, endsOK bool
	a.StartsAt, startsOK = p.time(startsPath, f.get("startsAt"))
	if startsOK && a.StartsAt.IsZero() {
		p.add(startsPath, "is required")
		startsOK = false
	}
	a.EndsAt, endsOK = p.time(endsPath, f.get("endsAt"))
	switch {
	case !endsOK:
	case a.EndsAt.IsZero() && a.Status == StatusResolved:
		p.add(endsPath, "is required for a resolved alert")
	case !a.EndsAt.IsZero() && startsOK && a.EndsAt.Before(a.StartsAt):
		// Alertmanager refuses such alerts on ingestion, too.
		p.add(endsPath, "must not be before startsAt")
	}
	a.GeneratorURL, _ = p.str(&at{up: path, name: "generatorURL"}, f.get("generatorURL"), maxStringLen)

	fpPath := &at{up: path, name: "fingerprint"}
	if fp, ok := p.str(fpPath, f.get("fingerprint"), maxStringLen); ok {
		switch {
		case fp != "":
			if !isFingerprint(fp) {
				p.add(fpPath, "must be 16 hexadecimal digits, got %s", source.Quote(fp))
			}
			a.Fingerprint = strings.ToLower(fp)
		case labelsOK:
			a.Fingerprint = alertlabel.Fingerprint(a.Labels)
		}
	}
	return a
}

// numViolations counts the violations found so far.
func (p *parser) numViolations() int { return p.bad.Len() }

// labelSet decodes a label or annotation set: an object of string values
// whose names are valid label names. dropEmpty drops empty values, which
// Prometheus and Alertmanager treat as absent labels.
// It also returns how many entries the object had.
func (p *parser) labelSet(path *at, raw json.RawMessage, maxValueLen int, dropEmpty bool) (map[string]string, int) {
	ms, ok := p.members(path, raw)
	if !ok {
		return map[string]string{}, 0
	}
	if len(ms) > source.MaxLabels {
		p.add(path, "must hold at most %d entries, got %d", source.MaxLabels, len(ms))
		return map[string]string{}, len(ms)
	}
	out := make(map[string]string, len(ms))
	for _, m := range ms {
		if len(m.name) > source.MaxNameLen {
			// Keep the oversized name out of the field path.
			p.add(path, "name %s is %d bytes long, must be at most %d", source.Quote(m.name), len(m.name), source.MaxNameLen)
			continue
		}
		field := &at{up: path, name: m.name}
		switch {
		case m.duplicate:
			p.add(field, "must appear only once")
			continue
		case !m.nameUTF8:
			p.add(field, "name must be valid UTF-8")
			continue
		case !model.UTF8Validation.IsValidLabelName(m.name):
			p.add(field, "name must be a valid label name")
			continue
		case isNull(m.value):
			p.add(field, "must be a string, got null")
			continue
		}
		v, ok := p.str(field, m.value, maxValueLen)
		if !ok || (dropEmpty && v == "") {
			continue
		}
		out[m.name] = v
	}
	return out, len(ms)
}

func (p *parser) status(path *at, raw json.RawMessage) Status {
	s, ok := p.str(path, raw, maxStringLen)
	if !ok {
		return ""
	}
	switch st := Status(s); st {
	case StatusFiring, StatusResolved:
		return st
	case "":
		p.add(path, "is required and must be %q or %q", StatusFiring, StatusResolved)
	default:
		p.add(path, "must be %q or %q, got %s", StatusFiring, StatusResolved, source.Quote(s))
	}
	return ""
}

// time decodes an RFC 3339 time. Absent, null and "" yield the zero time.
func (p *parser) time(path *at, raw json.RawMessage) (time.Time, bool) {
	s, ok := p.str(path, raw, maxStringLen)
	if !ok || s == "" {
		return time.Time{}, ok
	}
	var t time.Time
	if err := t.UnmarshalText([]byte(s)); err != nil {
		p.add(path, "must be an RFC 3339 time, got %s", source.Quote(s))
		return time.Time{}, false
	}
	return t, true
}

// count decodes a non-negative integer. Absent and null yield 0.
func (p *parser) count(path *at, raw json.RawMessage) uint64 {
	if raw == nil || isNull(raw) {
		return 0
	}
	var n uint64
	if err := json.Unmarshal(raw, &n); err != nil {
		got := kind(raw)
		if got == "a number" {
			got = source.Quote(string(raw))
		}
		p.add(path, "must be a non-negative integer, got %s", got)
		return 0
	}
	return n
}

func isFingerprint(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= '0' && c <= '9', c >= 'a' && c <= 'f', c >= 'A' && c <= 'F':
		default:
			return false
		}
	}
	return true
}
