package chat

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// Press is a button of an approval card pressed in a chat.
type Press struct {
	Provider access.ChatProvider
	// Account is who pressed, as the chat service vouches for them (a
	// Telegram user id, a Slack TEAM_ID:USER_ID): never anything the
	// button carries.
	Account string
	// Verb and RepairID (or IncidentID, for a verb OnIncident) are what
	// the button carries; Verb is "" for a button that is not Vigil's.
	Verb       approval.Verb
	RepairID   string
	IncidentID string
}

// Aim sets what a button carries: its verb, and the id of the repair, or
// of the incident for a button of an incident's message.
func (p *Press) Aim(v approval.Verb, id string) {
	p.Verb = v
	if v.OnIncident() {
		p.IncidentID = id
	} else {
		p.RepairID = id
	}
}

// Responder tells the person who pressed, the chat's way.
type Responder interface {
	// Answer is the answer to the press, given before Vigil acts on it:
	// a refusal (refused) is shown so it cannot be missed.
	Answer(ctx context.Context, text string, refused bool) error
	// FollowUp tells what went wrong after the answer.
	FollowUp(ctx context.Context, text string) error
}

// Principals says who a chat account acts as (access.Service).
type Principals interface {
	ChatPrincipal(ctx context.Context, p access.ChatProvider, externalID string) (auth.Principal, error)
}

// Repairs reads and snoozes a repair as its caller may (RepairService:
// the repair service answers PermissionDenied outside the app's team).
type Repairs interface {
	GetRepair(ctx context.Context, r *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error)
	PostponeRepair(ctx context.Context, r *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error)
}

// Incidents reads, acknowledges, escalates and snoozes incidents
// (monitor's IncidentService).
type Incidents interface {
	GetIncident(ctx context.Context, r *monitorv1.GetIncidentRequest) (*monitorv1.GetIncidentResponse, error)
	AcknowledgeIncident(ctx context.Context, r *monitorv1.AcknowledgeIncidentRequest) (*monitorv1.AcknowledgeIncidentResponse, error)
	EscalateIncident(ctx context.Context, r *monitorv1.EscalateIncidentRequest) (*monitorv1.EscalateIncidentResponse, error)
	SnoozeIncident(ctx context.Context, r *monitorv1.SnoozeIncidentRequest) (*monitorv1.SnoozeIncidentResponse, error)
}

// Silences creates silences (monitor's SilenceService).
type Silences interface {
	CreateSilence(ctx context.Context, r *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error)
}

// Publisher stores events on the bus (bus.Publisher).
type Publisher interface {
	Publish(ctx context.Context, events ...bus.Event) error
}

// Approvals decides on the buttons of approval cards: who pressed (a
// linked account whose user is an operator of the repair's team), whether
// the repair still waits for an answer, and then what the button asks:
// Approve and Reject are published (repair.approved, repair.rejected) for
// the repair service, which applies them and refuses what it must (a
// second answer, an expired repair, a deny-listed action); Later snoozes
// the approval (the repair service's PostponeRepair, as the presser);
// Silence silences the incident's alerts; Acknowledge, Escalate and
// Snooze act on an incident (monitor's AcknowledgeIncident,
// EscalateIncident, SnoozeIncident, as the presser). Every press is in
// the audit log, refused or not.
type Approvals struct {
	Principals Principals
	// Repairs, Incidents and Silences are called as the presser
	// (auth.WithPrincipal), so the services check the team themselves.
	// Repairs nil: repairs are not available here.
	Repairs   Repairs
	Incidents Incidents
	Silences  Silences
	Publisher Publisher
	// Audit records a press (gateway.Service.Audit); nil: none.
	Audit func(context.Context, auth.AuditEntry)
	Log   *slog.Logger
	// Now is the clock (time.Now when nil).
	Now func() time.Time
	// SnoozeFor is how long the Snooze button snoozes an incident
	// (DefaultSnooze when 0); at most monitor's 24 h.
	SnoozeFor time.Duration
}

// DefaultSnooze is how long the Snooze button snoozes an incident unless
// told otherwise (VIGIL_CHAT_SNOOZE).
const DefaultSnooze = time.Hour

// MaxSnooze is monitor's bound on a snooze (longer is a silence).
const MaxSnooze = 24 * time.Hour

func (a *Approvals) snoozeFor() time.Duration {
	if a.SnoozeFor > 0 {
		return a.SnoozeFor
	}
	return DefaultSnooze
}

// SilenceFor is how long the Silence button silences an incident.
const SilenceFor = 2 * time.Hour

// producer names the gateway in the events it publishes.
const producer = "gateway"

// outcome is what a press comes to: the answer, and what to do after it.
type outcome struct {
	text    string
	refused bool
	// act runs after the answer, and only when the answer was given
	// (it may note what it did in the audit entry); failed is told when
	// it fails.
	act    func(context.Context) error
	failed string
}

// Handle answers a press through r, then acts on it: the answer comes
// first, so that the person is not left waiting on Vigil's work (and
// Telegram's 15 s for an answer are not spent on it). A press whose
// answer fails is not acted on: Telegram answers only a callback query it
// issued, in time, once, so a failed answerCallbackQuery is the one sign
// of a forged or replayed press; a person whose press was real sees no
// answer and presses again.
func (a *Approvals) Handle(ctx context.Context, p Press, r Responder) {
	e := auth.AuditEntry{
		Time: a.now(), Actor: string(p.Provider) + ":" + p.Account,
		Method: auditPrefix(p.Provider) + auditMethod(p.Verb), Target: "repair/" + p.RepairID, Code: codes.OK,
	}
	switch {
	case p.Verb == "":
		e.Target = ""
	case p.Verb.OnIncident():
		e.Target = "incident/" + p.IncidentID
	}
	o := a.decide(ctx, p, &e)
	level, attrs := slog.LevelInfo, []any{"provider", string(p.Provider), "actor", e.Actor, "verb", string(p.Verb), "target", e.Target}
	if err := r.Answer(ctx, o.text, o.refused); err != nil {
		level, attrs = slog.LevelWarn, append(attrs, "error", err)
		if o.act != nil {
			e.Code, e.Message = codes.Aborted, "not answered, so not acted on: "+err.Error()
		}
	} else if o.act != nil {
		if err := o.act(ctx); err != nil {
			level, attrs = slog.LevelError, append(attrs, "error", err)
			e.Code, e.Message = codes.Unavailable, "not passed on: "+err.Error()
			if c := status.Code(err); c == codes.PermissionDenied || c == codes.InvalidArgument || c == codes.FailedPrecondition {
				e.Code = c
			}
			if err := r.FollowUp(ctx, o.failed); err != nil {
				attrs = append(attrs, "follow_up_error", err)
			}
		}
	}
	a.Log.Log(ctx, level, "chat button pressed", append(attrs, "code", e.Code.String(), "message", e.Message)...)
	if a.Audit != nil {
		a.Audit(ctx, e)
	}
}

// auditPrefix is chat.<provider>/, or email/ for an email's link.
func auditPrefix(p access.ChatProvider) string {
	if p == access.Email {
		return "email/"
	}
	return "chat." + string(p) + "/"
}

// auditMethod names a press in the audit log: chat.<provider>/<this>.
func auditMethod(v approval.Verb) string {
	switch v {
	case approval.Approve:
		return "ApproveRepair"
	case approval.Reject:
		return "RejectRepair"
	case approval.Later:
		return "PostponeRepair"
	case approval.Silence:
		return "SilenceRepair"
	case approval.Acknowledge:
		return "AcknowledgeIncident"
	case approval.Escalate:
		return "EscalateIncident"
	case approval.Snooze:
		return "SnoozeIncident"
	}
	return "PressButton"
}

// refuse records a refusal in e and words it for the presser.
func refuse(e *auth.AuditEntry, code codes.Code, message, text string) outcome {
	e.Code, e.Message = code, message
	return outcome{text: text, refused: true}
}

const tryAgain = "Vigil could not check this just now; try again in a minute."

func (a *Approvals) decide(ctx context.Context, p Press, e *auth.AuditEntry) outcome {
	if p.Verb == "" {
		return refuse(e, codes.InvalidArgument, "not an approval button", "This button is not Vigil's, so it does nothing.")
	}
	who, err := a.Principals.ChatPrincipal(ctx, p.Provider, p.Account)
	switch {
	case errors.Is(err, auth.ErrUnauthenticated):
		return refuse(e, codes.Unauthenticated, "chat account linked to no user", unlinkedText(p.Provider))
	case err != nil:
		a.Log.ErrorContext(ctx, "chat account not looked up", "provider", string(p.Provider), "error", err)
		return refuse(e, codes.Unavailable, "account not looked up", tryAgain)
	}
	e.Actor = who.String()
	if p.Verb.OnIncident() {
		return a.incident(ctx, p, who, e)
	}
	if !who.Has(auth.Operate) {
		return refuse(e, codes.PermissionDenied, fmt.Sprintf("%s has role %s, not operator", who, who.Role),
			fmt.Sprintf("Only an operator of the app's team may decide on repairs; %s is a %s.", who, who.Role))
	}
	if a.Repairs == nil {
		return refuse(e, codes.Unimplemented, "repairs are not available", "Repairs are not available on this Vigil.")
	}
	as := auth.WithPrincipal(ctx, who)
	res, err := a.Repairs.GetRepair(as, &repairv1.GetRepairRequest{Id: p.RepairID})
	switch status.Code(err) {
	case codes.OK:
	case codes.PermissionDenied:
		return refuse(e, codes.PermissionDenied, status.Convert(err).Message(),
			fmt.Sprintf("Only an operator of the app's team may decide on this repair; %s is not in it.", who))
	case codes.NotFound, codes.InvalidArgument:
		return refuse(e, codes.NotFound, "repair not found", "Vigil knows no such repair.")
	default:
		a.Log.ErrorContext(ctx, "repair not read", "repair_id", p.RepairID, "error", err)
		return refuse(e, codes.Unavailable, "repair not read", tryAgain)
	}
	rp := res.GetRepair()
	if text := a.notWaiting(rp); text != "" {
		return refuse(e, codes.FailedPrecondition, "repair "+strings.ToLower(strings.TrimPrefix(rp.GetStatus().String(), "REPAIR_STATUS_")), text)
	}
	channel := string(p.Provider)
	switch p.Verb {
	case approval.Approve:
		ev := &eventsv1.RepairApproved{Meta: meta(rp), RepairId: rp.GetId(), ApprovedBy: who.String(), Channel: channel}
		return outcome{
			text:   "Approved: Vigil runs the repair and shows how it went on the card.",
			act:    func(ctx context.Context) error { return a.Publisher.Publish(ctx, ev) },
			failed: "Vigil could not pass your approval on: press Approve again.",
		}
	case approval.Reject:
		ev := &eventsv1.RepairRejected{
			Meta: meta(rp), RepairId: rp.GetId(), RejectedBy: who.String(), Channel: channel,
			Reason: "rejected in " + providerName(p.Provider),
		}
		return outcome{
			text:   "Rejected: the repair will not run.",
			act:    func(ctx context.Context) error { return a.Publisher.Publish(ctx, ev) },
			failed: "Vigil could not pass your rejection on: press Reject again.",
		}
	case approval.Later:
		text := "Snoozed: Vigil asks again later."
		if exp := rp.GetExpireTime(); exp != nil {
			text = "Snoozed: Vigil asks again later, before it expires at " + a.clock(exp.AsTime()) + "."
		}
		return outcome{
			text: text,
			act: func(ctx context.Context) error {
				_, err := a.Repairs.PostponeRepair(auth.WithPrincipal(ctx, who), &repairv1.PostponeRepairRequest{Id: rp.GetId()})
				return err
			},
			failed: "Vigil could not snooze the approval: press Later again, or run `vigil repairs later " + rp.GetId() + "`.",
		}
	case approval.Silence:
		return a.silence(as, p, rp, who, e)
	}
	return refuse(e, codes.InvalidArgument, "unknown verb", "This button is not Vigil's, so it does nothing.")
}

// notWaiting says why a repair takes no answer, "" when it takes one.
func (a *Approvals) notWaiting(rp *repairv1.Repair) string {
	by := rp.GetDecidedBy()
	switch st := rp.GetStatus(); st {
	case repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL:
		if exp := rp.GetExpireTime(); exp != nil && !a.now().Before(exp.AsTime()) {
			return "This approval expired at " + a.clock(exp.AsTime()) + ": the repair will not run."
		}
		return ""
	case repairv1.RepairStatus_REPAIR_STATUS_EXPIRED:
		if exp := rp.GetExpireTime(); exp != nil {
			return "This approval expired at " + a.clock(exp.AsTime()) + ": the repair will not run."
		}
		return "This approval expired: the repair will not run."
	case repairv1.RepairStatus_REPAIR_STATUS_REJECTED:
		if by != "" {
			return "Already rejected by " + by + "."
		}
		return "Already rejected."
	case repairv1.RepairStatus_REPAIR_STATUS_BLOCKED:
		return "The guardrails blocked this repair: it cannot be approved."
	default:
		if by != "" {
			return "Already approved by " + by + "."
		}
		return "Already decided: the repair is " + strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(st.String(), "REPAIR_STATUS_")), "_", " ") + "."
	}
}

// silence silences the incident's alerts (by its group labels) for
// SilenceFor, as the presser, and leaves the repair waiting. What can be
// checked is checked before the answer; the silence is made after it, as
// any other action.
func (a *Approvals) silence(as context.Context, p Press, rp *repairv1.Repair, who auth.Principal, e *auth.AuditEntry) outcome {
	if a.Incidents == nil || a.Silences == nil {
		return refuse(e, codes.Unimplemented, "silences are not available", "Silences are not available on this Vigil.")
	}
	inc, err := a.Incidents.GetIncident(as, &monitorv1.GetIncidentRequest{Id: rp.GetIncidentId(), AlertsPageSize: 1})
	switch status.Code(err) {
	case codes.OK:
	case codes.PermissionDenied:
		return refuse(e, codes.PermissionDenied, status.Convert(err).Message(),
			fmt.Sprintf("Only an operator of the app's team may silence its incident; %s is not in it.", who))
	case codes.NotFound:
		return refuse(e, codes.FailedPrecondition, "incident not found", "The repair's incident is gone: there is nothing to silence.")
	default:
		a.Log.ErrorContext(as, "incident not read", "incident_id", rp.GetIncidentId(), "error", err)
		return refuse(e, codes.Unavailable, "incident not read", tryAgain)
	}
	matchers := Matchers(inc.GetIncident().GetGroupLabels())
	if len(matchers) == 0 {
		return refuse(e, codes.FailedPrecondition, "incident has no group labels",
			"The incident has no labels to silence it by: create a silence with `vigil silences create`.")
	}
	req := &monitorv1.CreateSilenceRequest{
		Matchers: matchers, Duration: durationpb.New(SilenceFor),
		Comment: fmt.Sprintf("Silenced from %s by %s while repair %s waits for an answer.", providerName(p.Provider), who, rp.GetId()),
	}
	return outcome{
		text: fmt.Sprintf("Silencing the incident's alerts for %s (`vigil silences list` shows it); the repair still waits for an answer.", hours(SilenceFor)),
		// e is the press's own audit entry: the silence's id goes in it.
		act: func(ctx context.Context) error {
			// The presser's identity, on the work's own context.
			s, err := a.Silences.CreateSilence(auth.WithPrincipal(ctx, who), req)
			if err != nil {
				return err
			}
			e.Message = "silence " + s.GetSilence().GetId()
			return nil
		},
		failed: "Vigil could not create the silence: press Silence again, or create one with `vigil silences create`.",
	}
}

// incident acts on the press's incident as the presser, through monitor
// (which checks the team again and records who): Acknowledge,
// Escalate or Snooze, checked before the answer, done after it.
// Incidents nil: not available here.
func (a *Approvals) incident(ctx context.Context, p Press, who auth.Principal, e *auth.AuditEntry) outcome {
	what := string(p.Verb) // "acknowledge", "escalate", "snooze"
	if !who.Has(auth.Operate) {
		return refuse(e, codes.PermissionDenied, fmt.Sprintf("%s has role %s, not operator", who, who.Role),
			fmt.Sprintf("Only an operator of the incident's team may %s it; %s is a %s.", what, who, who.Role))
	}
	if a.Incidents == nil {
		return refuse(e, codes.Unimplemented, "incidents are not available", "Incidents are not available on this Vigil.")
	}
	as := auth.WithPrincipal(ctx, who)
	res, err := a.Incidents.GetIncident(as, &monitorv1.GetIncidentRequest{Id: p.IncidentID, AlertsPageSize: 1})
	switch status.Code(err) {
	case codes.OK:
	case codes.PermissionDenied:
		return refuse(e, codes.PermissionDenied, status.Convert(err).Message(),
			fmt.Sprintf("Only an operator of the incident's team may %s it; %s is not in it.", what, who))
	case codes.NotFound, codes.InvalidArgument:
		return refuse(e, codes.NotFound, "incident not found", "Vigil knows no such incident.")
	default:
		a.Log.ErrorContext(ctx, "incident not read", "incident_id", p.IncidentID, "error", err)
		return refuse(e, codes.Unavailable, "incident not read", tryAgain)
	}
	inc := res.GetIncident()
	if inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		return refuse(e, codes.FailedPrecondition, "incident resolved", "The incident is resolved already.")
	}
	acked := inc.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED
	ackedBy := "Already acknowledged"
	if by := inc.GetAcknowledgedBy(); by != "" {
		ackedBy += " by " + by
	}
	id := p.IncidentID
	switch p.Verb {
	case approval.Escalate:
		// Asking for help stays possible once someone has acknowledged.
		return outcome{
			text: "Escalating: Vigil takes the incident's next escalation step now, as asked by " + who.String() + ".",
			act: func(ctx context.Context) error {
				r, err := a.Incidents.EscalateIncident(auth.WithPrincipal(ctx, who), &monitorv1.EscalateIncidentRequest{Id: id})
				if err == nil {
					e.Message = fmt.Sprintf("level %d", r.GetLevel())
				}
				return err
			},
			failed: "Vigil could not escalate the incident: press Escalate again, or run `vigil incidents escalate " + id + "`.",
		}
	case approval.Snooze:
		if acked {
			// An acknowledgement has stopped the escalation: a snooze
			// would hold nothing.
			return refuse(e, codes.FailedPrecondition, "incident acknowledged", ackedBy+": its escalation has stopped, there is nothing to snooze.")
		}
		d := a.snoozeFor()
		return outcome{
			text: fmt.Sprintf("Snoozed for %s by %s: no escalation step until %s; acknowledging still stops it.", hours(d), who, a.clock(a.now().Add(d))),
			act: func(ctx context.Context) error {
				r, err := a.Incidents.SnoozeIncident(auth.WithPrincipal(ctx, who), &monitorv1.SnoozeIncidentRequest{Id: id, Duration: durationpb.New(d)})
				if err == nil {
					e.Message = "snoozed until " + r.GetSnoozedUntil().AsTime().UTC().Format(time.RFC3339)
				}
				return err
			},
			failed: "Vigil could not snooze the incident: press Snooze again, or run `vigil incidents snooze " + id + " --for " + d.String() + "`.",
		}
	}
	if acked {
		return refuse(e, codes.FailedPrecondition, "incident acknowledged", ackedBy+".")
	}
	return outcome{
		text: "Acknowledged by " + who.String() + ": the incident is yours.",
		act: func(ctx context.Context) error {
			_, err := a.Incidents.AcknowledgeIncident(auth.WithPrincipal(ctx, who), &monitorv1.AcknowledgeIncidentRequest{Id: id})
			return err
		},
		failed: "Vigil could not acknowledge the incident: press Acknowledge again, or run `vigil incidents ack " + id + "`.",
	}
}

// plainLabel is a label name that needs no quotes in a matcher.
var plainLabel = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// Matchers are the matchers (name="value", sorted by name) that select
// exactly the alerts with labels.
func Matchers(labels map[string]string) []string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]string, 0, len(names))
	for _, n := range names {
		name := n
		if !plainLabel.MatchString(n) {
			name = strconv.Quote(n)
		}
		out = append(out, name+"="+strconv.Quote(labels[n]))
	}
	return out
}

func meta(rp *repairv1.Repair) *eventsv1.EventMeta {
	m := bus.NewMeta(producer, nil)
	m.App = rp.GetApp()
	return m
}

func (a *Approvals) now() time.Time {
	if a.Now != nil {
		return a.Now()
	}
	return time.Now()
}

// clock words t for a chat: "14:05 UTC" today, "Mar 4 14:05 UTC" on
// another day.
func (a *Approvals) clock(t time.Time) string {
	t = t.UTC()
	if y, m, d := a.now().UTC().Date(); t.Year() == y && t.Month() == m && t.Day() == d {
		return t.Format("15:04") + " UTC"
	}
	return t.Format("Jan 2 15:04") + " UTC"
}

func hours(d time.Duration) string {
	if d%time.Hour == 0 {
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return d.String()
}

func providerName(p access.ChatProvider) string {
	switch p {
	case access.Slack:
		return "Slack"
	case access.Line:
		return "LINE"
	case access.Email:
		return "email"
	}
	return "Telegram"
}

func unlinkedText(p access.ChatProvider) string {
	switch p {
	case access.Slack:
		return "Vigil does not know your Slack account. Link it first: run `vigil users link-code --provider slack`, then type /vigil link CODE here."
	case access.Email:
		return "Vigil knows no single user with this email address, so the link cannot act: ask an admin to set it on your user (`vigil users update NAME --email ADDRESS`)."
	case access.Line:
		return "Vigil does not know your LINE account. Link it first: run `vigil users link-code --provider line`, then send /link CODE to the bot in a 1:1 chat."
	}
	return "Vigil does not know your Telegram account. Link it first: run `vigil users link-code --provider telegram`, then send /link CODE to the bot."
}
