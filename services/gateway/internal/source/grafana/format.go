// Package grafana reads the notifications of Grafana unified alerting's
// webhook contact point (payload version "1") as a source.Format: the
// alerts of one notification group, firing or resolved, with their labels,
// annotations, query values and Grafana's links.
//
// What Grafana sends is mapped so that a repeat of an alert is the same
// alert in Vigil: the labels are the alert's identity (Grafana's own
// fingerprint is not trusted; ingest computes it from the labels), minus
// Grafana's private labels (__name__ style, such as __alert_rule_uid__ or
// __grafana_receiver__), which depend on how the notification was routed
// rather than on what fired. grafana_folder and alertname stay: Grafana's
// own identity of an alert includes them. The query values and links
// become annotations (see the Annotation constants).
package grafana

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// Version is the webhook payload version Grafana sends (unchanged since
// unified alerting, Grafana 8) and the only one read here.
const Version = "1"

// The annotations an alert gets from what Grafana sends beside its rule's
// own annotations. A rule's own annotation of the same name wins.
const (
	// AnnotationValues holds the rule's query and expression results,
	// "B=42.1, C=1", sorted by name and cut to MaxValuesLen.
	AnnotationValues    = "values"
	AnnotationDashboard = "dashboard_url"
	AnnotationPanel     = "panel_url"
	AnnotationSilence   = "silence_url"
	AnnotationImage     = "image_url"
	// AnnotationRuleUID is the rule's UID when Grafana sent it as the
	// private label __alert_rule_uid__ (dropped from the labels).
	AnnotationRuleUID = "grafana_rule_uid"
)

// MaxValuesLen bounds the values annotation: a rule with hundreds of
// queries still gives a short line; the rest are counted, not listed.
const MaxValuesLen = 4 << 10

// message is one notification, as Grafana's webhook notifier marshals it.
// Grafana's rendered text (title, state, message) and the group's labels
// are not read: each alert carries its own.
type message struct {
	Receiver        string  `json:"receiver"`
	Status          string  `json:"status"`
	Alerts          []alert `json:"alerts"`
	ExternalURL     string  `json:"externalURL"`
	Version         string  `json:"version"`
	GroupKey        string  `json:"groupKey"`
	TruncatedAlerts uint64  `json:"truncatedAlerts"`
}

type alert struct {
	Status       string             `json:"status"`
	Labels       map[string]string  `json:"labels"`
	Annotations  map[string]string  `json:"annotations"`
	StartsAt     time.Time          `json:"startsAt"`
	EndsAt       time.Time          `json:"endsAt"`
	GeneratorURL string             `json:"generatorURL"`
	SilenceURL   string             `json:"silenceURL"`
	DashboardURL string             `json:"dashboardURL"`
	PanelURL     string             `json:"panelURL"`
	ImageURL     string             `json:"imageURL"`
	Values       map[string]float64 `json:"values"`
	// ValueString is what Grafana 8 sent instead of Values.
	ValueString string `json:"valueString"`
}

// Format is Grafana's webhook contact point as a source.Format.
type Format struct{}

// Parse implements source.Format. JSON is read strictly (UTF-8, no
// duplicate names, the documented types; unknown members are ignored, as
// later Grafana versions add some); a decoding error is the one violation
// reported, otherwise every Grafana-specific rule broken is listed. The
// limits every source shares are source.Validate's.
func (Format) Parse(body []byte, _ http.Header) (*source.Batch, error) {
	var msg message
	if err := json.Unmarshal(body, &msg); err != nil {
		var bad server.BadRequestError
		field, desc := violation(err)
		bad.Add(field, desc)
		return nil, bad.Err("invalid grafana webhook")
	}
	if err := check(&msg); err != nil {
		return nil, err
	}
	batch := &source.Batch{Truncated: int(min(msg.TruncatedAlerts, source.MaxAlerts))}
	for _, a := range msg.Alerts {
		if out := convert(&msg, a); !isTest(out) {
			batch.Alerts = append(batch.Alerts, out)
		}
	}
	if len(batch.Alerts) == 0 {
		batch.Note = "Grafana's test notification: verified and parsed, nothing stored"
	}
	return batch, nil
}

// Source is Grafana's webhook contact point, verified by a Vigil key in
// its Authorization header or basic auth settings.
func Source(keys source.Keys) *source.Source {
	return &source.Source{
		Name: "grafana", Verifier: keys, Format: Format{},
		Unauthenticated: `set the contact point's Authorization Header to "Bearer <key>" (or basic auth with the key as password), a Vigil API key with scope ingest`,
	}
}

// check lists what no retry makes valid, in the body's own field names.
func check(msg *message) error {
	var bad server.BadRequestError
	switch msg.Version {
	case Version:
	case "":
		bad.Addf("version", "is required and must be %q", Version)
	default:
		bad.Addf("version", "must be %q, got %s", Version, source.Quote(msg.Version))
	}
	checkStatus(&bad, "status", msg.Status)
	checkLen(&bad, "externalURL", msg.ExternalURL)
	switch {
	case len(msg.Alerts) == 0:
		bad.Add("alerts", "is required and must hold at least one alert")
	case len(msg.Alerts) > source.MaxAlerts:
		bad.Addf("alerts", "must hold at most %d alerts, got %d", source.MaxAlerts, len(msg.Alerts))
		return bad.Err("invalid grafana webhook")
	}
	for i, a := range msg.Alerts {
		at := fmt.Sprintf("alerts[%d].", i)
		checkStatus(&bad, at+"status", a.Status)
		if a.StartsAt.IsZero() {
			bad.Add(at+"startsAt", "is required")
		}
		switch {
		case a.Status == "resolved" && a.EndsAt.IsZero():
			bad.Add(at+"endsAt", "is required for a resolved alert")
		case a.Status == "resolved" && a.EndsAt.Before(a.StartsAt):
			bad.Add(at+"endsAt", "must not be before startsAt")
		}
		for name, u := range map[string]string{
			"generatorURL": a.GeneratorURL, "silenceURL": a.SilenceURL, "dashboardURL": a.DashboardURL,
			"panelURL": a.PanelURL, "imageURL": a.ImageURL, "valueString": a.ValueString,
		} {
			checkLen(&bad, at+name, u)
		}
		if len(a.Values) > source.MaxLabels {
			bad.Addf(at+"values", "must hold at most %d entries, got %d", source.MaxLabels, len(a.Values))
		}
		for name := range a.Values {
			if len(name) > source.MaxNameLen {
				bad.Addf(at+"values", "names must be at most %d bytes", source.MaxNameLen)
				break
			}
		}
	}
	return bad.Err("invalid grafana webhook")
}

func checkStatus(bad *server.BadRequestError, field, s string) {
	switch s {
	case "firing", "resolved":
	case "":
		bad.Add(field, `is required and must be "firing" or "resolved"`)
	default:
		bad.Addf(field, `must be "firing" or "resolved", got %s`, source.Quote(s))
	}
}

// checkLen bounds a link (or Grafana 8's valueString) as Validate bounds
// the generator's URL.
func checkLen(bad *server.BadRequestError, field, u string) {
	if len(u) > source.MaxURLLen {
		bad.Addf(field, "must be at most %d bytes long, got %d", source.MaxURLLen, len(u))
	}
}

func convert(msg *message, a alert) *typesv1.Alert {
	out := &typesv1.Alert{
		Labels:       make(map[string]string, len(a.Labels)),
		Annotations:  make(map[string]string, len(a.Annotations)+6),
		StartsAt:     timestamppb.New(a.StartsAt),
		GeneratorUrl: a.GeneratorURL,
		Source:       typesv1.AlertSource_ALERT_SOURCE_GRAFANA,
		Status:       typesv1.AlertStatus_ALERT_STATUS_FIRING,
		ExternalUrl:  msg.ExternalURL,
	}
	if a.Status == "resolved" {
		out.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
		out.EndsAt = timestamppb.New(a.EndsAt)
	}
	for k, v := range a.Labels {
		// An empty value is an absent label, as in Prometheus and
		// Alertmanager, so the fingerprint is the same either way.
		if v != "" && !private(k) {
			out.Labels[k] = v
		}
	}
	for k, v := range a.Annotations {
		if !private(k) {
			out.Annotations[k] = v
		}
	}
	values := source.Clip(a.ValueString, MaxValuesLen) // Grafana 8's valueString, bounded as formatValues bounds values
	if len(a.Values) > 0 {
		values = formatValues(a.Values)
	}
	for k, v := range map[string]string{
		AnnotationValues: values, AnnotationDashboard: a.DashboardURL, AnnotationPanel: a.PanelURL,
		AnnotationSilence: a.SilenceURL, AnnotationImage: a.ImageURL, AnnotationRuleUID: a.Labels["__alert_rule_uid__"],
	} {
		if _, own := out.Annotations[k]; v != "" && !own {
			out.Annotations[k] = v
		}
	}
	return out
}

// private says whether name is one of Grafana's internal labels or
// annotations (__alert_rule_uid__, __grafana_receiver__, __values__, ...):
// Grafana strips most before notifying, but not in every version.
func private(name string) bool {
	return len(name) > 4 && strings.HasPrefix(name, "__") && strings.HasSuffix(name, "__")
}

// formatValues spells values as "B=42.1, C=1", sorted by name.
func formatValues(values map[string]float64) string {
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	var sb strings.Builder
	for i, k := range names {
		entry := k + "=" + strconv.FormatFloat(values[k], 'g', -1, 64)
		// Room is kept for the count of those left out.
		if sb.Len()+len(entry)+2 > MaxValuesLen-len(", … (1000 more)") {
			fmt.Fprintf(&sb, ", … (%d more)", len(names)-i)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(entry)
	}
	return sb.String()
}

// isTest says whether a is the alert of Grafana's "Test" button on a
// contact point with its default labels: it would open an incident that
// nothing ever resolves, so it proves the set-up and is not stored.
func isTest(a *typesv1.Alert) bool {
	ls := a.GetLabels()
	return len(ls) == 2 && ls["alertname"] == "TestAlert" && ls["instance"] == "Grafana"
}

// violation turns a decoding error into a field violation in the body's
// own field names.
func violation(err error) (field, desc string) {
	if se, ok := errors.AsType[*jsontext.SyntacticError](err); ok {
		field = fieldOf(se.JSONPointer)
		switch {
		case errors.Is(se.Err, jsontext.ErrDuplicateName):
			return field, "must appear only once"
		case se.Err != nil && se.Err.Error() == "unexpected EOF":
			return field, "invalid JSON: unexpected end of input"
		default:
			return field, fmt.Sprintf("invalid JSON at byte offset %d: %v", se.ByteOffset, se.Err)
		}
	}
	if se, ok := errors.AsType[*json.SemanticError](err); ok {
		desc := "must be " + expected(se.GoType) + ", got " + kind(se.JSONKind)
		if pe, ok := errors.AsType[*time.ParseError](se.Err); ok {
			desc += " " + source.Quote(pe.Value)
		} else if se.JSONValue != nil && (se.JSONKind == '"' || se.JSONKind == '0') {
			desc += " " + source.Quote(string(se.JSONValue))
		}
		return fieldOf(se.JSONPointer), desc
	}
	return "", "invalid JSON: " + err.Error()
}

var timeType = reflect.TypeFor[time.Time]()

func expected(t reflect.Type) string {
	if t == timeType {
		return "an RFC 3339 time"
	}
	if t == nil {
		return "valid"
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float64:
		return "a number"
	default:
		return "a " + t.Kind().String()
	}
}

// kind names k for a violation; k is 0 when the decoder could not tell.
func kind(k jsontext.Kind) string {
	if k == 0 {
		return "something else"
	}
	return source.Kind(byte(k))
}

// fieldOf spells a JSON pointer as the Alertmanager parser spells paths:
// "alerts[1].labels.team", `alerts[0].labels["k8s.pod"]`.
func fieldOf(p jsontext.Pointer) string {
	var sb strings.Builder
	i := 0
	for tok := range p.Tokens() {
		switch {
		case i == 1 && sb.String() == "alerts" && isIndex(tok):
			sb.WriteString("[" + tok + "]")
		case source.IsIdentifier(tok) && i == 0:
			sb.WriteString(tok)
		case source.IsIdentifier(tok):
			sb.WriteString("." + tok)
		default:
			sb.WriteString("[" + strconv.Quote(tok) + "]")
		}
		i++
	}
	return sb.String()
}

func isIndex(s string) bool {
	_, err := strconv.Atoi(s)
	return err == nil
}
