package console

import (
	"context"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// The incident page's bounds: an incident has an analysis or two and a
// repair or two; older ones are history, not what someone woken at night
// needs first.
const (
	storyAnalyses = 5
	storyRepairs  = 10
	// storyMessages: an incident's messages per channel are a handful
	// (its announcement, analysis, card, progress, resolution) times the
	// channels that heard of it.
	storyMessages = 100
)

// snoozes are the durations offered to snooze an escalation (at most 24h,
// the API's bound) and to postpone a repair's approval ("Later").
var snoozes = []string{"15m", "1h", "4h", "24h"}

// routeStory routes one incident's page (the whole story: the incident,
// its escalation, analysis and repairs) and the changes made from it.
func (c *Console) routeStory() {
	analyses, repairs := analysisv1.NewAnalysisServiceClient(c.opts.Conn), repairv1.NewRepairServiceClient(c.opts.Conn)
	c.mux.HandleFunc("GET /incidents/{id}", func(w http.ResponseWriter, r *http.Request) { c.incidentPage(w, r, analyses, repairs) })
	in := c.incidents
	for name, do := range map[string]func(ctx context.Context, r *http.Request) error{
		"acknowledge": func(ctx context.Context, r *http.Request) error {
			_, err := in.AcknowledgeIncident(ctx, &monitorv1.AcknowledgeIncidentRequest{Id: r.PathValue("id")})
			return err
		},
		"resolve": func(ctx context.Context, r *http.Request) error {
			_, err := in.ResolveIncident(ctx, &monitorv1.ResolveIncidentRequest{Id: r.PathValue("id")})
			return err
		},
		"escalate": func(ctx context.Context, r *http.Request) error {
			_, err := in.EscalateIncident(ctx, &monitorv1.EscalateIncidentRequest{Id: r.PathValue("id")})
			return err
		},
		"snooze": func(ctx context.Context, r *http.Request) error {
			_, err := in.SnoozeIncident(ctx, &monitorv1.SnoozeIncidentRequest{Id: r.PathValue("id"), Duration: formDuration(r, "duration")})
			return err
		},
		"priority": func(ctx context.Context, r *http.Request) error {
			// An unknown priority goes as unset, for the API to refuse.
			_, err := in.SetIncidentPriority(ctx, &monitorv1.SetIncidentPriorityRequest{Id: r.PathValue("id"), Priority: priorityParam[r.PostFormValue("priority")]})
			return err
		},
	} {
		c.mux.HandleFunc("POST /incidents/{id}/"+name, c.storyAction("done.story."+name, do))
	}
	for name, do := range map[string]func(ctx context.Context, r *http.Request) error{
		"approve": func(ctx context.Context, r *http.Request) error {
			_, err := repairs.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: r.PathValue("repair")})
			return err
		},
		"reject": func(ctx context.Context, r *http.Request) error {
			_, err := repairs.RejectRepair(ctx, &repairv1.RejectRepairRequest{Id: r.PathValue("repair"), Reason: strings.TrimSpace(r.PostFormValue("reason"))})
			return err
		},
		"postpone": func(ctx context.Context, r *http.Request) error {
			_, err := repairs.PostponeRepair(ctx, &repairv1.PostponeRepairRequest{Id: r.PathValue("repair"), For: formDuration(r, "for")})
			return err
		},
	} {
		c.mux.HandleFunc("POST /incidents/{id}/repairs/{repair}/"+name, c.storyAction("done.story."+name, do))
	}
}

// storyAction is a change posted from an incident's page, made with the
// user's token (Console.act), back to the page with its done word.
func (c *Console) storyAction(done string, do func(ctx context.Context, r *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
			return "/incidents/" + url.PathEscape(r.PathValue("id")), done, do(ctx, r)
		})
	}
}

// formDuration is a posted duration ("1h"); one that does not parse goes
// as none, and the API says what it wants.
func formDuration(r *http.Request, field string) *durationpb.Duration {
	d, err := time.ParseDuration(r.PostFormValue(field))
	if err != nil {
		return nil
	}
	return durationpb.New(d)
}

// incidentData is the incident page's data: the incident, where its
// escalation is, what the analyses concluded, and its repairs. A section
// the API could not answer says so (its Err word) and the rest shows.
type incidentData struct {
	row
	Alerts     []*typesv1.IncidentAlert
	MoreAlerts bool
	Escalation *monitorv1.IncidentEscalation
	// Stopped is why the escalation has no next step, as a word when the
	// catalogue has one.
	Stopped string
	// Analysis is the newest analysis (nil before any), Earlier the ones
	// before it.
	Analysis    *analysisView
	Earlier     []*analysisView
	AnalysisErr string
	Repairs     []repairView
	RepairsErr  string
	// Messages are what notify told each channel of the incident.
	Messages    []channelMessages
	MessagesErr string
	Snoozes     []string
	Priorities  []string
}

// analysisView is an analysis with its enums as words of the catalogue.
type analysisView struct {
	*analysisv1.Analysis
	Confidence int
	RiskKey    string
	Proposal   proposalView
}

// proposalView is a proposed repair: what, on what, with which parameter
// (its word and value).
type proposalView struct {
	ActionKey       string
	Target          *typesv1.ResourceRef
	ParamKey, Param string
}

// repairView is a repair with its enums as words and its timeline.
type repairView struct {
	*repairv1.Repair
	StatusKey, StatusClass, DecisionKey, RiskKey string
	Confidence                                   int
	Proposal                                     proposalView
	Waiting                                      bool
	Steps                                        []stepView
}

// channelMessages are the messages of an incident on one channel, in the
// order they were queued.
type channelMessages struct {
	Channel, Kind, Target string
	// OpenKey is the word of the links to its messages ("Open in
	// Slack"), "" for a kind that has none.
	OpenKey  string
	Messages []messageView
}

// messageView is one message with its status as a word.
type messageView struct {
	*notifyv1.IncidentMessage
	StatusKey, StatusClass string
}

// stepView is one entry of a repair's timeline.
type stepView struct {
	*repairv1.RepairStep
	KindKey, Class string
}

// incidentPage shows one incident's story. The API answers NotFound or
// PermissionDenied for one the user may not read, and the page with it.
func (c *Console) incidentPage(w http.ResponseWriter, r *http.Request, analyses analysisv1.AnalysisServiceClient, repairs repairv1.RepairServiceClient) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	ctx := withToken(r.Context(), s.access)
	id := r.PathValue("id")
	res, err := c.incidents.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: id})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	in := res.GetIncident()
	d := incidentData{
		row: newRow(in), Alerts: in.GetAlerts(), MoreAlerts: res.GetAlertsNextPageToken() != "", Escalation: res.GetEscalation(),
		Snoozes: snoozes, Priorities: []string{"P0", "P1", "P2", "P3"}, Stopped: res.GetEscalation().GetStopped(),
	}
	if key := "story.stopped." + strings.ReplaceAll(d.Stopped, " ", "_"); catalogue["en"][key] != "" {
		d.Stopped = key
	}
	if as, err := analyses.ListAnalyses(ctx, &analysisv1.ListAnalysesRequest{IncidentId: id, PageSize: storyAnalyses}); err != nil {
		d.AnalysisErr = c.sectionFailed(r, "analyses", err)
	} else {
		for i, a := range as.GetAnalyses() {
			v := newAnalysisView(a)
			if i == 0 {
				d.Analysis = v
			} else {
				d.Earlier = append(d.Earlier, v)
			}
		}
	}
	d.Repairs, err = c.storyRepairs(ctx, repairs, id)
	if err != nil {
		d.RepairsErr = c.sectionFailed(r, "repairs", err)
	}
	if ms, err := c.channelClient().ListIncidentMessages(ctx, &notifyv1.ListIncidentMessagesRequest{IncidentId: id, PageSize: storyMessages}); err != nil {
		// NotFound: notify has not announced the incident (yet, or it
		// heard of no channel for it): no messages, not an error.
		if status.Code(err) != codes.NotFound {
			d.MessagesErr = c.sectionFailed(r, "messages", err)
		}
	} else {
		d.Messages = byChannel(ms.GetMessages())
	}
	c.render(w, r, s, "incident", http.StatusOK, d)
}

// storyRepairs are the incident's repairs, newest first, each with its
// timeline (which only GetRepair carries).
func (c *Console) storyRepairs(ctx context.Context, repairs repairv1.RepairServiceClient, incident string) ([]repairView, error) {
	list, err := repairs.ListRepairs(ctx, &repairv1.ListRepairsRequest{IncidentId: incident, PageSize: storyRepairs})
	if err != nil {
		return nil, err
	}
	var out []repairView
	for _, x := range list.GetRepairs() {
		g, err := repairs.GetRepair(ctx, &repairv1.GetRepairRequest{Id: x.GetId()})
		if err != nil {
			return nil, err
		}
		out = append(out, newRepairView(g.GetRepair()))
	}
	return out, nil
}

// byChannel groups messages by their channel, in the order each channel
// was first told.
func byChannel(ms []*notifyv1.IncidentMessage) []channelMessages {
	var out []channelMessages
	at := map[string]int{}
	for _, m := range ms {
		i, ok := at[m.GetChannel()]
		if !ok {
			i = len(out)
			at[m.GetChannel()] = i
			out = append(out, channelMessages{Channel: m.GetChannel(), Kind: m.GetKind(), Target: m.GetTarget()})
			if m.GetKind() == "slack" || m.GetKind() == "telegram" {
				out[i].OpenKey = "story.messages.open_" + m.GetKind()
			}
		}
		key := "story.messages.status." + m.GetStatus()
		if catalogue["en"][key] == "" {
			key = "story.messages.status.unknown"
		}
		out[i].Messages = append(out[i].Messages, messageView{IncidentMessage: m, StatusKey: key, StatusClass: m.GetStatus()})
	}
	return out
}

// sectionFailed logs why a section of the page is missing, once, and
// answers the word the page shows in its place.
func (c *Console) sectionFailed(r *http.Request, section string, err error) string {
	if status.Code(err) == codes.PermissionDenied {
		return "error.forbidden"
	}
	c.opts.Log.WarnContext(r.Context(), "console: incident section unavailable", "section", section, "error", err)
	return "error.unavailable"
}

func newAnalysisView(a *analysisv1.Analysis) *analysisView {
	return &analysisView{Analysis: a, Confidence: percent(a.GetConfidence()), RiskKey: enumKey("story.risk.", a.GetRisk().String(), "RISK_"), Proposal: newProposalView(a.GetProposal())}
}

func newRepairView(x *repairv1.Repair) repairView {
	v := repairView{
		Repair: x, StatusKey: enumKey("story.repair.", x.GetStatus().String(), "REPAIR_STATUS_"),
		DecisionKey: enumKey("story.decision.", x.GetDecision().String(), "DECISION_"), RiskKey: enumKey("story.risk.", x.GetRisk().String(), "RISK_"),
		Confidence: percent(x.GetConfidence()), Proposal: newProposalView(x.GetProposal()),
		Waiting: x.GetStatus() == repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL,
	}
	v.StatusClass = strings.TrimPrefix(v.StatusKey, "story.repair.")
	for _, st := range x.GetSteps() {
		key := enumKey("story.step.", st.GetKind().String(), "STEP_KIND_")
		v.Steps = append(v.Steps, stepView{RepairStep: st, KindKey: key, Class: strings.TrimPrefix(key, "story.step.")})
	}
	return v
}

func newProposalView(p *typesv1.RepairProposal) proposalView {
	v := proposalView{ActionKey: enumKey("story.action.", p.GetAction().String(), "REPAIR_ACTION_"), Target: p.GetTarget()}
	switch {
	case p.GetRollback() != nil:
		v.ParamKey, v.Param = "story.param.revision", strconv.FormatInt(p.GetRollback().GetRevision(), 10)
	case p.GetScale() != nil:
		v.ParamKey, v.Param = "story.param.replicas", strconv.Itoa(int(p.GetScale().GetReplicas()))
	case p.GetMemoryLimit() != nil:
		v.ParamKey, v.Param = "story.param.memory", p.GetMemoryLimit().GetContainer()+" "+strconv.FormatInt(p.GetMemoryLimit().GetLimitBytes()>>20, 10)+" MiB"
	}
	return v
}

// enumKey is the catalogue's word for an enum value: prefix and the
// value's name without its type's prefix, in lower case
// (RISK_MEDIUM: "story.risk.medium").
func enumKey(prefix, name, trim string) string {
	return prefix + strings.ToLower(strings.TrimPrefix(name, trim))
}

// percent is a confidence (0..1) in whole percent.
func percent(f float64) int { return int(math.Round(f * 100)) }
