package message

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/types/known/durationpb"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// The data model: what each kind's template sees. Every string from
// outside (an alert, an LLM, a person, a cluster) is already cut to its
// bound and escaped for the channel's markup; times are already in the
// recipient's zone; words of the language (severities, risks, actions,
// durations, channels) are drawn by the shared templates of common.<lang>.tmpl
// from the keys given here. docs/messages.md lists it all.

// Bounds of free text, in characters, cut before escaping so no cut falls
// inside an entity. They keep a message well under Telegram's 4096
// characters, so the lines that matter (the action, the ids) always make
// it.
const (
	maxSummary     = 300
	maxRootCause   = 1500
	maxBlastRadius = 400
	maxCause       = 800
	maxReason      = 200
	maxReasons     = 5
	maxTitle       = 200
	maxShort       = 100 // names: target, container, engine, model, app
	// maxAlertsShown keeps a message readable; the rest are counted.
	maxAlertsShown = 5
)

// IncidentData is what incident.opened and incident.resolved see.
type IncidentData struct{ Incident Incident }

// Incident is an incident.
type Incident struct {
	ID, Title string
	// Severity is a key: critical, warning, info or unknown (the shared
	// template "severity" says it in words); Icon is its emoji.
	Severity, Icon string
	// Priority is P0..P3, "" when monitor set none.
	Priority             string
	App, Team, Namespace string
	// Subject is the workload ("Deployment shop/checkout"), Pod the pod
	// the alerts name; "" when unknown.
	Subject, Pod string
	// Labels are the incident's group labels, by key.
	Labels []Label
	// Alerts are the first alerts of the event's sample; MoreAlerts the
	// incident's other alerts, counted.
	Alerts                              []Alert
	MoreAlerts, AlertCount, FiringCount int
	OpenedAt, ResolvedAt, ResolvedBy    string
	// Duration is from opened to resolved (zero while open).
	Duration Duration
	// URL is the incident in Vigil's API, "" without VIGIL_PUBLIC_URL.
	URL string
}

// Label is a label and its value.
type Label struct{ Key, Value string }

// Alert is one alert of an incident: its summary (or description, or
// alertname), its instance, and a link to its source ("" for none).
type Alert struct{ Summary, Instance, Source string }

// Duration is a length of time in whole units, for the shared template
// "duration" to say in words.
type Duration struct{ Days, Hours, Minutes, Seconds int }

// Part is a number of one unit: day, hour, minute or second.
type Part struct {
	N    int
	Unit string
}

// Parts are d's non-zero units, largest first; 0 seconds for nothing.
func (d Duration) Parts() []Part {
	var out []Part
	for _, p := range []Part{{d.Days, "day"}, {d.Hours, "hour"}, {d.Minutes, "minute"}, {d.Seconds, "second"}} {
		if p.N != 0 {
			out = append(out, p)
		}
	}
	if len(out) == 0 {
		return []Part{{0, "second"}}
	}
	return out
}

func durationOf(d time.Duration) Duration {
	d = d.Round(time.Second)
	return Duration{
		Days: int(d / (24 * time.Hour)), Hours: int(d % (24 * time.Hour) / time.Hour),
		Minutes: int(d % time.Hour / time.Minute), Seconds: int(d % time.Minute / time.Second),
	}
}

var severityIcon = map[typesv1.Severity]string{
	typesv1.Severity_SEVERITY_CRITICAL: "🔴",
	typesv1.Severity_SEVERITY_WARNING:  "🟠",
	typesv1.Severity_SEVERITY_INFO:     "🔵",
}

func (f *format) incident(inc *typesv1.Incident) Incident {
	icon := severityIcon[inc.GetSeverity()]
	if icon == "" {
		icon = "⚪"
	}
	d := Incident{
		ID: f.esc(inc.GetId(), maxShort), Title: f.esc(inc.GetTitle(), maxTitle),
		Severity: severityName(inc.GetSeverity()), Icon: icon, Priority: priorityName(inc.GetPriority()),
		App: f.esc(inc.GetApp(), maxShort), Team: f.esc(inc.GetTeam(), maxShort), Namespace: f.esc(inc.GetNamespace(), maxShort),
		Pod:        f.esc(inc.GetSubject().GetPod(), maxShort),
		AlertCount: int(inc.GetAlertCount()), FiringCount: int(inc.GetFiringCount()),
		ResolvedBy: f.esc(inc.GetResolvedBy(), maxShort), URL: f.incidentURL(inc.GetId()),
	}
	if s := inc.GetSubject(); s.GetName() != "" {
		d.Subject = f.esc(strings.TrimSpace(s.GetKind()+" "+join("/", s.GetNamespace(), s.GetName())), maxShort)
	}
	if t := inc.GetOpenedAt(); t != nil {
		d.OpenedAt = f.time(t.AsTime())
	}
	if t := inc.GetResolvedAt(); t != nil {
		d.ResolvedAt = f.time(t.AsTime())
		if o := inc.GetOpenedAt(); o != nil {
			d.Duration = durationOf(t.AsTime().Sub(o.AsTime()))
		}
	}
	keys := make([]string, 0, len(inc.GetGroupLabels()))
	for k := range inc.GetGroupLabels() {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		d.Labels = append(d.Labels, Label{Key: f.esc(k, maxShort), Value: f.esc(inc.GetGroupLabels()[k], maxReason)})
	}
	alerts := inc.GetAlerts()
	for i, a := range alerts {
		if i == maxAlertsShown {
			break
		}
		ann, labels := a.GetAlert().GetAnnotations(), a.GetAlert().GetLabels()
		al := Alert{Summary: f.esc(oneOf(ann["summary"], oneOf(ann["description"], labels["alertname"])), maxReason), Instance: f.esc(labels["instance"], maxShort)}
		if u := a.GetAlert().GetGeneratorUrl(); strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			al.Source = f.m.Escape(u)
		}
		d.Alerts = append(d.Alerts, al)
	}
	// Events carry a sample of the alerts; the count is the incident's.
	d.MoreAlerts = max(0, int(inc.GetAlertCount())-min(len(alerts), maxAlertsShown))
	return d
}

// EscalatedData is what incident.escalated sees.
type EscalatedData struct {
	Incident Incident
	// Level is the policy's step, from 1; Policy its name ("" when a
	// person escalated by hand).
	Level  int
	Policy string
	// Users and Channels are who is asked to respond.
	Users, Channels []string
	// Reason is a key: unacknowledged, manual or repeat; By is who
	// escalated by hand.
	Reason, By string
}

// Action is a repair's proposed action, for the shared template "action"
// to say: Kind is none, restart, delete_pod, scale, rollback, memory or
// unknown (Code then is its number).
type Action struct {
	Kind, Target string
	Replicas     int
	Revision     int64
	Container    string
	// Size is the new memory limit ("768 MiB"), "" when not stated.
	Size string
	Code int32
}

func (f *format) actionOf(p *typesv1.RepairProposal) Action {
	a := Action{Target: f.m.Escape(targetName(p.GetTarget()))}
	switch p.GetAction() {
	case typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED, typesv1.RepairAction_REPAIR_ACTION_NONE:
		a.Kind = "none"
	case typesv1.RepairAction_REPAIR_ACTION_RESTART_DEPLOYMENT:
		a.Kind = "restart"
	case typesv1.RepairAction_REPAIR_ACTION_DELETE_POD:
		a.Kind = "delete_pod"
	case typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT:
		a.Kind, a.Replicas = "scale", int(p.GetScale().GetReplicas())
	case typesv1.RepairAction_REPAIR_ACTION_ROLLBACK_DEPLOYMENT:
		a.Kind, a.Revision = "rollback", p.GetRollback().GetRevision()
	case typesv1.RepairAction_REPAIR_ACTION_INCREASE_MEMORY_LIMIT:
		m := p.GetMemoryLimit()
		a.Kind, a.Container, a.Size = "memory", f.esc(oneOf(m.GetContainer(), "?"), maxShort), bytesIEC(m.GetLimitBytes())
	default:
		a.Kind, a.Code = "unknown", int32(p.GetAction())
	}
	return a
}

// action is p's action in words.
func (f *format) action(p *typesv1.RepairProposal) (string, error) {
	return f.word("action", f.actionOf(p))
}

// Engine is who analysed: the engine, and for an LLM its model, tokens
// and cost ("" when it cost nothing).
type Engine struct {
	Name, Model               string
	InputTokens, OutputTokens int
	Cost                      string
}

func (f *format) engine(name, model string, in, out int32, cost float64) Engine {
	e := Engine{Name: f.esc(oneOf(name, "unknown"), maxShort), Model: f.esc(model, maxShort), InputTokens: int(in), OutputTokens: int(out)}
	if cost > 0 {
		e.Cost = fmt.Sprintf("$%.4f", cost)
	}
	return e
}

// Downtime is an expected downtime: Known when the analysis said, None
// when it said none.
type Downtime struct {
	Known, None bool
	Duration    Duration
}

func downtimeOf(d *durationpb.Duration) Downtime {
	switch {
	case d == nil:
		return Downtime{}
	case d.AsDuration() <= 0:
		return Downtime{Known: true, None: true}
	}
	return Downtime{Known: true, Duration: durationOf(d.AsDuration())}
}

// AnalysisData is what analysis.completed sees.
type AnalysisData struct {
	// Summary is never empty ("" becomes the template's "no summary"
	// only if the template says so: here it is the summary as given);
	// RootCause is "" when it says what the summary says.
	Summary, RootCause string
	// Action is the proposed action in words.
	Action string
	// Confidence is a whole percentage ("85%"); Risk a key (low, medium,
	// high, critical, unknown).
	Confidence, Risk string
	BlastRadiusPods  int
	Downtime         Downtime
	// BlastRadius is the analysis' own words about what a repair touches.
	BlastRadius                      string
	Engine                           Engine
	App, IncidentID, AnalysisID, URL string
}

// Analysis is an incident's analysis.
func Analysis(e *eventsv1.AnalysisCompleted) Message {
	return Message{About: About{Kind: KindAnalysis}, data: func(f *format) any {
		d := AnalysisData{
			Summary: f.esc(e.GetSummary(), maxSummary), Confidence: percent(e.GetConfidence()), Risk: riskName(e.GetRisk()),
			BlastRadiusPods: int(e.GetBlastRadiusPods()), Downtime: downtimeOf(e.GetExpectedDowntime()),
			BlastRadius: f.esc(e.GetBlastRadius(), maxBlastRadius),
			Engine:      f.engine(e.GetEngine(), e.GetModel(), e.GetInputTokens(), e.GetOutputTokens(), e.GetCostUsd()),
			App:         f.esc(e.GetApp(), maxShort), IncidentID: f.esc(e.GetIncidentId(), maxShort), AnalysisID: f.esc(e.GetAnalysisId(), maxShort),
			URL: f.incidentURL(e.GetIncidentId()),
		}
		if rc := e.GetRootCause(); rc != "" && rc != e.GetSummary() {
			d.RootCause = f.esc(rc, maxRootCause)
		}
		d.Action = f.keep(f.action(e.GetProposal()))
		return d
	}}
}

// Via is where a person answered: a key (telegram, slack, line, email,
// api, "" for unsaid, other) and, for other, its name.
type Via struct{ Key, Name string }

func (f *format) via(c string) Via {
	switch c {
	case "", "telegram", "slack", "line", "email", "api":
		return Via{Key: c}
	}
	return Via{Key: "other", Name: f.esc(c, maxShort)}
}

// Decision is how a repair waiting for a person was decided.
type Decision struct {
	// Icon shows the outcome: ✅ ❌ ⌛ or ℹ️.
	Icon string
	// Outcome is a key: approved, rejected, expired, or another word
	// (then shown as it is).
	Outcome, By string
	Via         Via
	At, Reason  string
	RepairID    string
}

func (f *format) decision(e *eventsv1.RepairDecided) Decision {
	d := Decision{
		Icon: outcomeIcon(e.GetOutcome()), Outcome: f.esc(e.GetOutcome(), maxShort), By: f.esc(e.GetDecidedBy(), maxShort), Via: f.via(e.GetChannel()),
		Reason: f.esc(e.GetReason(), maxReason), RepairID: f.esc(e.GetRepairId(), maxShort),
	}
	if t := e.GetDecidedAt(); t != nil {
		d.At = f.time(t.AsTime())
	}
	return d
}

// DecidedData is what repair.decided sees: a decision told on its own,
// when its card is not there to show it.
type DecidedData struct{ Decision Decision }

// Decided is a decision told on its own.
func Decided(e *eventsv1.RepairDecided) Message {
	return Message{About: About{Kind: KindDecided}, data: func(f *format) any { return DecidedData{Decision: f.decision(e)} }}
}

// RepairData is what repair.requested, repair.succeeded, repair.failed and
// repair.blocked see; each uses the fields its event has.
type RepairData struct {
	RepairID string
	// Action is the repair's action in words; Target its resource.
	Action, Target string
	// Auto: nobody was asked (the guardrails allowed it); else ApprovedBy
	// approved it, through Via. DryRun: nothing changes.
	Auto, DryRun bool
	ApprovedBy   string
	Via          Via
	// Verification (succeeded), Reason, Undone and CooldownUntil (failed).
	Verification, Reason string
	Undone               bool
	CooldownUntil        string
	// Reasons the guardrails blocked it (at most 5; MoreReasons counts the
	// rest) and the cause the analysis found (blocked).
	Reasons     []string
	MoreReasons int
	Cause       string
}

func (f *format) repair(id string, p *typesv1.RepairProposal) RepairData {
	d := RepairData{RepairID: f.esc(id, maxShort), Target: f.m.Escape(targetName(p.GetTarget()))}
	d.Action = f.keep(f.action(p))
	return d
}

// RepairRequested says a repair starts to run.
func RepairRequested(e *eventsv1.RepairRequested) Message {
	return Message{About: About{Kind: KindRepairRequested}, data: func(f *format) any {
		d := f.repair(e.GetRepairId(), e.GetProposal())
		d.Auto, d.DryRun = e.GetApprovedBy() == "guardrails", e.GetDryRun()
		d.ApprovedBy, d.Via = f.esc(e.GetApprovedBy(), maxShort), f.via(e.GetChannel())
		return d
	}}
}

// RepairSucceeded says a repair ran and its verification passed.
func RepairSucceeded(e *eventsv1.RepairSucceeded) Message {
	return Message{About: About{Kind: KindRepairSucceeded}, data: func(f *format) any {
		d := f.repair(e.GetRepairId(), e.GetProposal())
		d.Verification = f.esc(e.GetVerification(), maxCause)
		return d
	}}
}

// RepairFailed says a repair did not work.
func RepairFailed(e *eventsv1.RepairFailed) Message {
	return Message{About: About{Kind: KindRepairFailed}, Broadcast: true, data: func(f *format) any {
		d := f.repair(e.GetRepairId(), e.GetProposal())
		d.Reason, d.Undone = f.esc(e.GetReason(), maxCause), e.GetUndone()
		if t := e.GetCooldownUntil(); t != nil {
			d.CooldownUntil = f.time(t.AsTime())
		}
		return d
	}}
}

// RepairBlocked says the guardrails refused a repair.
func RepairBlocked(e *eventsv1.RepairBlocked) Message {
	return Message{About: About{Kind: KindRepairBlocked}, Broadcast: true, data: func(f *format) any {
		d := f.repair(e.GetRepairId(), e.GetProposal())
		d.Reasons, d.MoreReasons = f.reasons(e.GetReasons())
		d.Cause = f.esc(e.GetSummary(), maxCause)
		return d
	}}
}

func (f *format) reasons(rs []string) ([]string, int) {
	var out []string
	for i, r := range rs {
		if i == maxReasons {
			return out, len(rs) - maxReasons
		}
		out = append(out, f.esc(r, maxReason))
	}
	return out, 0
}

// IncidentOpened is a new incident.
func IncidentOpened(inc *typesv1.Incident) Message {
	return Message{About: incidentAbout(KindIncidentOpened, inc), data: func(f *format) any { return IncidentData{Incident: f.incident(inc)} }}
}

// IncidentResolved is a resolved incident, told to the whole
// conversation.
func IncidentResolved(inc *typesv1.Incident) Message {
	return Message{About: incidentAbout(KindIncidentResolved, inc), Broadcast: true, data: func(f *format) any {
		return IncidentData{Incident: f.incident(inc)}
	}}
}

// IncidentEscalated is a step of an incident's escalation, told to the
// whole conversation.
func IncidentEscalated(e *eventsv1.IncidentEscalated) Message {
	return Message{About: incidentAbout(KindIncidentEscalated, e.GetIncident()), Broadcast: true, data: func(f *format) any {
		d := EscalatedData{
			Incident: f.incident(e.GetIncident()), Level: int(e.GetLevel()), Policy: f.esc(e.GetPolicy(), maxShort),
			Reason: f.esc(e.GetReason(), maxShort), By: f.esc(e.GetBy(), maxShort),
		}
		for _, u := range e.GetUsers() {
			d.Users = append(d.Users, f.esc(u, maxShort))
		}
		for _, c := range e.GetChannels() {
			d.Channels = append(d.Channels, f.esc(c, maxShort))
		}
		return d
	}}
}

// FlappingData is what incident.flapping sees: the incident, and since
// when it flaps in the recipient's zone ("" when unknown).
type FlappingData struct {
	Incident Incident
	Since    string
}

// IncidentFlapping says, in the incident's thread, that its alerts flap:
// the one message about it while it does (monitor's incident.updated,
// reason "flapping").
func IncidentFlapping(inc *typesv1.Incident) Message {
	return Message{About: incidentAbout(KindIncidentFlapping, inc), data: func(f *format) any {
		d := FlappingData{Incident: f.incident(inc)}
		if t := inc.GetFlappingSince(); t != nil {
			d.Since = f.time(t.AsTime())
		}
		return d
	}}
}

// Firing is an incident still firing, as notify's routing keeps it: what
// a re-announcement says.
type Firing struct {
	ID, Title     string
	Firing, Alert int
	OpenedAt      time.Time
}

// RepeatedData is what incident.repeated sees: the incident (ID, Title,
// FiringCount, AlertCount, OpenedAt, URL) and how long it has been open.
type RepeatedData struct {
	Incident Incident
	Open     Duration
}

// IncidentRepeated re-announces an incident still firing at now, in its
// thread (a route's repeat_interval).
func IncidentRepeated(inc Firing, now time.Time) Message {
	return Message{About: About{Kind: KindIncidentRepeated, IncidentID: inc.ID, Title: inc.Title}, data: func(f *format) any {
		return RepeatedData{
			Incident: Incident{
				ID: f.esc(inc.ID, maxShort), Title: f.esc(inc.Title, maxTitle), FiringCount: inc.Firing, AlertCount: inc.Alert,
				OpenedAt: f.time(inc.OpenedAt), URL: f.incidentURL(inc.ID),
			},
			Open: durationOf(now.Sub(inc.OpenedAt).Round(time.Minute)),
		}
	}}
}

// ChannelTestData is what channel.test sees: the channel's name and when
// the message was sent, in the recipient's zone.
type ChannelTestData struct{ Channel, At string }

// ChannelTest says a channel reaches its conversation: sent when it is
// created and on request.
func ChannelTest(name string, at time.Time) Message {
	return Message{About: About{Kind: KindChannelTest}, data: func(f *format) any {
		return ChannelTestData{Channel: f.esc(name, maxShort), At: f.time(at)}
	}}
}

// DeployData is what the deploy kinds see; each uses the fields its event
// has.
type DeployData struct{ Deploy Deploy }

// Deploy is a deployment of an app.
type Deploy struct {
	ID, App, Image, RequestedBy string
	// Revision is the deployment's; RollbackTo (started) the revision it
	// returns to, 0 for a deploy; From and To (rolled back) the revisions.
	Revision, RollbackTo, From, To int64
	// Took is how long the rollout took (succeeded).
	Took   Duration
	Reason string
}

func (f *format) deploy(id, app string) Deploy {
	return Deploy{ID: f.esc(id, maxShort), App: f.esc(app, maxShort)}
}

// DeployStarted says a deployment starts.
func DeployStarted(e *eventsv1.DeployRequested) Message {
	return Message{About: About{Kind: KindDeployStarted, App: e.GetApp()}, data: func(f *format) any {
		d := f.deploy(e.GetDeploymentId(), e.GetApp())
		d.Image, d.RequestedBy = f.esc(e.GetImage(), maxReason), f.esc(e.GetRequestedBy(), maxShort)
		d.Revision, d.RollbackTo = e.GetRevision(), e.GetRollbackTo()
		return DeployData{Deploy: d}
	}}
}

// DeploySucceeded says a rollout became available.
func DeploySucceeded(e *eventsv1.DeploySucceeded) Message {
	return Message{About: About{Kind: KindDeploySucceeded, App: e.GetApp()}, data: func(f *format) any {
		d := f.deploy(e.GetDeploymentId(), e.GetApp())
		d.Image, d.Revision, d.Took = f.esc(e.GetImage(), maxReason), e.GetRevision(), durationOf(e.GetDuration().AsDuration())
		return DeployData{Deploy: d}
	}}
}

// DeployFailed says a rollout did not become available.
func DeployFailed(e *eventsv1.DeployFailed) Message {
	return Message{About: About{Kind: KindDeployFailed, App: e.GetApp()}, data: func(f *format) any {
		d := f.deploy(e.GetDeploymentId(), e.GetApp())
		d.Revision, d.Reason = e.GetRevision(), f.esc(e.GetReason(), maxCause)
		return DeployData{Deploy: d}
	}}
}

// DeployRolledBack says an app returned to an earlier revision.
func DeployRolledBack(e *eventsv1.DeployRolledBack) Message {
	return Message{About: About{Kind: KindDeployRolledBack, App: e.GetApp()}, data: func(f *format) any {
		d := f.deploy(e.GetDeploymentId(), e.GetApp())
		d.Revision, d.From, d.To = e.GetRevision(), e.GetFromRevision(), e.GetToRevision()
		return DeployData{Deploy: d}
	}}
}

// targetName is namespace/name, and the cluster when one is named, not
// escaped.
func targetName(r *typesv1.ResourceRef) string {
	name := clip(oneOf(r.GetName(), "?"), maxShort)
	if ns := r.GetNamespace(); ns != "" {
		name = clip(ns, maxShort) + "/" + name
	}
	if c := r.GetCluster(); c != "" {
		name += " (cluster " + clip(c, maxShort) + ")"
	}
	return name
}

// severityName is a severity's key for templates.
func severityName(s typesv1.Severity) string { return nameOr(severityNames, s) }

var severityNames = map[typesv1.Severity]string{
	typesv1.Severity_SEVERITY_CRITICAL: "critical",
	typesv1.Severity_SEVERITY_WARNING:  "warning",
	typesv1.Severity_SEVERITY_INFO:     "info",
}

// priorityName is P0..P3, "" for none.
func priorityName(p typesv1.Priority) string {
	if p < typesv1.Priority_PRIORITY_P0 || p > typesv1.Priority_PRIORITY_P3 {
		return ""
	}
	return fmt.Sprintf("P%d", p-typesv1.Priority_PRIORITY_P0)
}

// riskName is a risk's key for templates.
func riskName(r typesv1.Risk) string { return nameOr(riskNames, r) }

var riskNames = map[typesv1.Risk]string{
	typesv1.Risk_RISK_LOW:      "low",
	typesv1.Risk_RISK_MEDIUM:   "medium",
	typesv1.Risk_RISK_HIGH:     "high",
	typesv1.Risk_RISK_CRITICAL: "critical",
}

// nameOr is k's name in names, "unknown" for one it lacks.
func nameOr[K comparable](names map[K]string, k K) string {
	if n, ok := names[k]; ok {
		return n
	}
	return "unknown"
}

// percent shows a 0..1 confidence as a whole percentage.
func percent(c float64) string {
	if math.IsNaN(c) {
		c = 0
	}
	return fmt.Sprintf("%.0f%%", math.Round(min(max(c, 0), 1)*100))
}

// bytesIEC writes a size the way Kubernetes quantities are read: whole GiB
// or MiB when it is one, else MiB with a decimal; "" for none.
func bytesIEC(n int64) string {
	const (
		mib = 1 << 20
		gib = 1 << 30
	)
	switch {
	case n <= 0:
		return ""
	case n%gib == 0:
		return fmt.Sprintf("%d GiB", n/gib)
	case n%mib == 0:
		return fmt.Sprintf("%d MiB", n/mib)
	case n < mib:
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%.1f MiB", float64(n)/mib)
}

func oneOf(s, fallback string) string {
	if strings.TrimSpace(s) == "" {
		return fallback
	}
	return s
}

// join is parts but the empty ones, joined with sep (and the templates'
// join, around pieces already escaped).
func join(sep string, parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(s string) bool { return s == "" }), sep)
}

// clip cuts s to at most n characters, ending it with "…" when it cuts.
// It works on the text before escaping: no entity can be cut.
func clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return strings.TrimSpace(string(r[:n-1])) + "…"
}
