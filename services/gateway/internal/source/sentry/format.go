package sentry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/timestamppb"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/gateway/internal/source"
)

// The alert names of what Sentry sends.
const (
	AlertIssue  = "SentryIssue"
	AlertMetric = "SentryMetricAlert"
)

// The labels that identify a Sentry alert (besides alertname, severity,
// and app and project, the project's slug).
const (
	LabelIssue       = "sentry_issue_id"
	LabelAlertRule   = "sentry_alert_rule_id"
	LabelMetricAlert = "sentry_metric_alert_id"
)

// The annotations analysis reads (services/analysis): the issue's link,
// when it was first seen, and the release of the event that fired it.
const (
	AnnotationIssueURL  = "sentry_issue_url"
	AnnotationFirstSeen = "sentry_first_seen"
	AnnotationRelease   = "sentry_release"
)

// maxAnnotation bounds one annotation: a title or culprit is a line, a
// message longer than this is cut (at a rune) rather than refused.
const maxAnnotation = 4 << 10

// kubeTags are the event tags worth keeping for people and the analysis
// (as sentry_tag_<name> annotations): where the event happened in
// Kubernetes. They are not labels: the issue webhooks carry no tags.
var kubeTags = map[string]bool{
	"namespace": true, "cluster": true, "deployment": true, "statefulset": true, "daemonset": true,
	"pod": true, "node": true, "container": true, "server_name": true, "app": true,
}

// Format is Sentry's webhook bodies as a source.Format.
type Format struct {
	// Now is when a resolution without a time of its own ended; nil:
	// time.Now.
	Now func() time.Time
}

// Parse implements source.Format. Sentry-Hook-Resource says what the
// body is; a resource that carries no alert (installation, comment,
// seer) or an action that changes none is answered with a note.
func (f Format) Parse(body []byte, h http.Header) (*source.Batch, error) {
	resource := strings.TrimSpace(h.Get(HeaderResource))
	var bad server.BadRequestError
	var w webhook
	if err := decode(body, &w); err != nil {
		bad.Add("body", err.Error())
		return nil, bad.Err("invalid sentry webhook")
	}
	p := parser{now: f.now(), action: w.Action}
	switch resource {
	case "issue":
		return p.issue(w.Data)
	case "error":
		return p.event(w.Data, "error", "created")
	case "event_alert":
		return p.event(w.Data, "event", "triggered")
	case "metric_alert":
		return p.metric(w.Data)
	case "installation", "comment", "seer":
		return &source.Batch{Note: fmt.Sprintf("%s %s: carries no alert", resource, source.Quote(w.Action))}, nil
	case "":
		bad.Addf(HeaderResource, "is required: Sentry sends it with every webhook")
	default:
		bad.Addf(HeaderResource, "%s is not a resource Sentry sends (installation, issue, error, event_alert, metric_alert, comment, seer)", source.Quote(resource))
	}
	return nil, bad.Err("invalid sentry webhook")
}

func (f Format) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

// parser reads one body's data.
type parser struct {
	now    time.Time
	action string
	bad    server.BadRequestError
}

func decode(b []byte, v any) error {
	if err := json.Unmarshal(b, v); err != nil {
		if te, ok := errors.AsType[*json.UnmarshalTypeError](err); ok && te.Field != "" {
			return fmt.Errorf("%s: must be %s, got %s", te.Field, te.Type, te.Value)
		}
		return err
	}
	return nil
}

func (p *parser) data(raw json.RawMessage, v any) bool {
	if len(bytes.TrimSpace(raw)) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		p.bad.Add("data", "is required")
		return false
	}
	if err := decode(raw, v); err != nil {
		p.bad.Add("data", err.Error())
		return false
	}
	return true
}

func (p *parser) done(b *source.Batch) (*source.Batch, error) {
	if err := p.bad.Err("invalid sentry webhook"); err != nil {
		return nil, err
	}
	return b, nil
}

// issue reads the issue resource: created and unresolved fire,
// resolved, ignored and archived resolve, assigned changes nothing.
func (p *parser) issue(raw json.RawMessage) (*source.Batch, error) {
	var d struct {
		Issue *issue `json:"issue"`
	}
	if !p.data(raw, &d) {
		return p.done(nil)
	}
	is := d.Issue
	if is == nil {
		p.bad.Add("data.issue", "is required")
		return p.done(nil)
	}
	if !is.ID.int() {
		p.bad.Addf("data.issue.id", "must be the issue's numeric id, got %s", source.Quote(string(is.ID)))
	}
	project := is.Project.Slug
	if project == "" {
		project = string(is.Project.ID)
	}
	if project == "" {
		p.bad.Add("data.issue.project.slug", "is required")
	}
	var at *time.Time
	switch p.action {
	case "created":
		at = is.FirstSeen
		if at == nil {
			p.bad.Add("data.issue.firstSeen", "is required")
		}
	case "unresolved", "resolved", "ignored", "archived":
		at = cmpTime(is.LastSeen, is.FirstSeen)
		if at == nil {
			p.bad.Add("data.issue.lastSeen", "is required")
		}
	case "assigned":
		who := "nobody"
		if is.AssignedTo != nil {
			who = cmpStr(is.AssignedTo.Name, is.AssignedTo.Email)
		}
		return p.done(&source.Batch{Note: fmt.Sprintf("issue %s assigned to %s: its alert is unchanged", source.Quote(string(is.ID)), source.Quote(who))})
	default:
		return p.done(&source.Batch{Note: fmt.Sprintf("issue action %s carries no alert", source.Quote(p.action))})
	}
	if p.bad.Len() > 0 {
		return p.done(nil)
	}
	a := p.alert(AlertIssue, project, is.Level, *at)
	a.Labels[LabelIssue] = string(is.ID)
	a.GeneratorUrl = is.WebURL
	a.ExternalUrl = origin(is.WebURL)
	ann := a.Annotations
	put(ann, "summary", is.Title)
	put(ann, "description", describe(is.Metadata, is.Culprit))
	put(ann, AnnotationIssueURL, is.WebURL)
	put(ann, "sentry_short_id", is.ShortID)
	put(ann, "sentry_culprit", is.Culprit)
	put(ann, "sentry_level", is.Level)
	put(ann, "sentry_status", strings.Trim(is.Status+"/"+is.Substatus, "/"))
	put(ann, "sentry_platform", is.Platform)
	put(ann, "sentry_count", string(is.Count))
	put(ann, "sentry_user_count", string(is.UserCount))
	if is.FirstSeen != nil {
		put(ann, AnnotationFirstSeen, is.FirstSeen.UTC().Format(time.RFC3339Nano))
	}
	if is.LastSeen != nil {
		put(ann, "sentry_last_seen", is.LastSeen.UTC().Format(time.RFC3339Nano))
	}
	if p.action != "created" && p.action != "unresolved" {
		p.resolveAt(a, nil)
	}
	return p.done(&source.Batch{Alerts: []*typesv1.Alert{a}})
}

// event reads the error and event_alert resources: an event of an issue,
// which fires the issue's alert.
func (p *parser) event(raw json.RawMessage, key, fires string) (*source.Batch, error) {
	var d struct {
		Error         *event `json:"error"`
		Event         *event `json:"event"`
		TriggeredRule string `json:"triggered_rule"`
	}
	if !p.data(raw, &d) {
		return p.done(nil)
	}
	e := d.Event
	if key == "error" {
		e = d.Error
	}
	path := "data." + key
	if p.action != fires {
		return p.done(&source.Batch{Note: fmt.Sprintf("%s action %s carries no alert", key, source.Quote(p.action))})
	}
	if e == nil {
		p.bad.Add(path, "is required")
		return p.done(nil)
	}
	if !e.IssueID.int() {
		p.bad.Addf(path+".issue_id", "must be the event's issue's numeric id, got %s", source.Quote(string(e.IssueID)))
	}
	project := projectSlug(e.URL)
	if project == "" {
		project = string(e.Project)
	}
	if project == "" {
		p.bad.Add(path+".project", "is required")
	}
	at, ok := e.at()
	if !ok {
		p.bad.Add(path+".datetime", "is required")
	}
	if p.bad.Len() > 0 {
		return p.done(nil)
	}
	a := p.alert(AlertIssue, project, e.Level, at)
	a.Labels[LabelIssue] = string(e.IssueID)
	link := issueLink(e.WebURL, string(e.IssueID))
	a.GeneratorUrl = link
	a.ExternalUrl = origin(e.WebURL)
	ann := a.Annotations
	put(ann, "summary", e.Title)
	put(ann, "description", describe(e.Metadata, e.Culprit))
	put(ann, AnnotationIssueURL, link)
	put(ann, "sentry_event_url", e.WebURL)
	put(ann, "sentry_event_id", e.EventID)
	put(ann, "sentry_culprit", e.Culprit)
	put(ann, "sentry_level", e.Level)
	put(ann, "sentry_platform", e.Platform)
	put(ann, "sentry_environment", e.Environment)
	put(ann, AnnotationRelease, string(e.Release))
	put(ann, "sentry_triggered_rule", d.TriggeredRule)
	put(ann, "sentry_event_at", at.UTC().Format(time.RFC3339Nano))
	for _, t := range e.Tags {
		if kubeTags[t.Key] {
			put(ann, "sentry_tag_"+t.Key, t.Value)
		}
	}
	return p.done(&source.Batch{Alerts: []*typesv1.Alert{a}})
}

// metric reads the metric_alert resource. Each severity is an alert of
// its own (the severity is a label): critical fires the critical one,
// warning the warning one, resolved resolves both. A critical that falls
// back to warning stays firing until the metric alert resolves: its
// resolution would be its firing's own instance (same labels, same
// start), after which the monitor would ignore the same alert rising to
// critical again.
func (p *parser) metric(raw json.RawMessage) (*source.Batch, error) {
	var d metricAlert
	if !p.data(raw, &d) {
		return p.done(nil)
	}
	switch p.action {
	case "critical", "warning", "resolved":
	default:
		return p.done(&source.Batch{Note: fmt.Sprintf("metric_alert action %s carries no alert", source.Quote(p.action))})
	}
	m := d.MetricAlert
	if m == nil {
		p.bad.Add("data.metric_alert", "is required")
		return p.done(nil)
	}
	if !m.ID.int() {
		p.bad.Addf("data.metric_alert.id", "must be the metric alert's numeric id, got %s", source.Quote(string(m.ID)))
	}
	if !m.AlertRule.ID.int() {
		p.bad.Addf("data.metric_alert.alert_rule.id", "must be the alert rule's numeric id, got %s", source.Quote(string(m.AlertRule.ID)))
	}
	at := cmpTime(m.DateStarted, m.DateDetected)
	if at == nil {
		p.bad.Add("data.metric_alert.date_started", "is required")
	}
	if p.bad.Len() > 0 {
		return p.done(nil)
	}
	projects := m.Projects
	if len(projects) == 0 {
		projects = m.AlertRule.Projects
	}
	project := ""
	if len(projects) == 1 {
		// A rule over several projects is no one app's.
		project = projects[0]
	}
	mk := func(level string) *typesv1.Alert {
		a := p.alert(AlertMetric, project, level, *at)
		a.Labels[LabelAlertRule] = string(m.AlertRule.ID)
		a.Labels[LabelMetricAlert] = string(m.ID)
		a.GeneratorUrl = d.WebURL
		a.ExternalUrl = origin(d.WebURL)
		ann := a.Annotations
		put(ann, "summary", cmpStr(d.DescriptionTitle, m.Title))
		put(ann, "description", d.DescriptionText)
		put(ann, "sentry_alert_url", d.WebURL)
		put(ann, "sentry_alert_rule", m.AlertRule.Name)
		put(ann, "sentry_aggregate", m.AlertRule.Aggregate)
		put(ann, "sentry_query", m.AlertRule.Query)
		put(ann, "sentry_environment", string(m.AlertRule.Environment))
		put(ann, "sentry_projects", strings.Join(projects, ","))
		return a
	}
	var alerts []*typesv1.Alert
	switch p.action {
	case "critical":
		alerts = append(alerts, mk("fatal"))
	case "warning":
		alerts = append(alerts, mk("warning"))
	case "resolved":
		for _, level := range []string{"fatal", "warning"} {
			a := mk(level)
			p.resolveAt(a, m.DateClosed)
			alerts = append(alerts, a)
		}
	}
	return p.done(&source.Batch{Alerts: alerts})
}

// alert is a firing alert of project with the labels every Sentry alert
// has.
func (p *parser) alert(name, project, level string, at time.Time) *typesv1.Alert {
	labels := map[string]string{"alertname": name, "severity": Severity(level)}
	if project != "" {
		// The Sentry project is the app: one project per service is
		// Sentry's own advice, and the project is in every payload.
		labels["project"] = project
		labels["app"] = project
	}
	return &typesv1.Alert{
		Labels: labels, Annotations: map[string]string{},
		StartsAt: timestamppb.New(at), Source: typesv1.AlertSource_ALERT_SOURCE_SENTRY,
		Status: typesv1.AlertStatus_ALERT_STATUS_FIRING,
	}
}

// resolveAt resolves a, ended at end (now when unknown).
func (p *parser) resolveAt(a *typesv1.Alert, end *time.Time) {
	at := p.now
	if end != nil && !end.IsZero() {
		at = *end
	}
	if start := a.GetStartsAt().AsTime(); at.Before(start) {
		at = start
	}
	a.Status = typesv1.AlertStatus_ALERT_STATUS_RESOLVED
	a.EndsAt = timestamppb.New(at)
}

// Severity is the alert severity of a Sentry level: fatal and error are
// critical (an exception in production code, that someone's alert rule
// chose to send, and never held by deploy quiet), warning is warning,
// info, debug and sample are info; an unknown level is a warning.
func Severity(level string) string {
	switch strings.ToLower(level) {
	case "fatal", "error":
		return "critical"
	case "info", "debug", "sample":
		return "info"
	}
	return "warning"
}

// projectRE finds the project's slug in an event's API URL
// (.../api/0/projects/<org>/<project>/events/<id>/): the event itself
// names its project by id only.
var projectRE = regexp.MustCompile(`/projects/[^/]+/([^/]+)/events/`)

func projectSlug(apiURL string) string {
	if m := projectRE.FindStringSubmatch(apiURL); m != nil {
		if s, err := url.PathUnescape(m[1]); err == nil {
			return s
		}
	}
	return ""
}

// issueLink is the issue's page from one of its events' pages
// (.../issues/<id>/events/<event>/ → .../issues/<id>/).
func issueLink(eventURL, id string) string {
	marker := "/issues/" + id + "/"
	if i := strings.Index(eventURL, marker); i >= 0 {
		return eventURL[:i+len(marker)]
	}
	return eventURL
}

// origin is the Sentry that sent the alert (https://sentry.io).
func origin(link string) string {
	u, err := url.Parse(link)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func describe(m metadata, culprit string) string {
	switch {
	case m.Type != "" && m.Value != "":
		return m.Type + ": " + m.Value
	case m.Value != "":
		return m.Value
	}
	return culprit
}

// put sets a non-empty annotation, made valid UTF-8 and cut to maxAnnotation.
func put(ann map[string]string, k, v string) {
	if v = strings.TrimSpace(v); v != "" {
		ann[k] = source.Clip(strings.ToValidUTF8(v, "\uFFFD"), maxAnnotation)
	}
}

func cmpStr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cmpTime(a, b *time.Time) *time.Time {
	if a != nil && !a.IsZero() {
		return a
	}
	if b != nil && !b.IsZero() {
		return b
	}
	return nil
}
