package gateway_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeslack"
	"github.com/vigil-ops/vigil/pkg/testkit/faketelegram"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/postgres"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// The approval cards' chats.
const (
	tgChat         = "-1001234567890"
	slackChannel   = "C0VIGIL01"
	telegramSecret = "tg_webhook-Secret01_0123456789abcdef"
)

// The people: Telegram ids and Slack members, and who they are in Vigil.
var (
	tgAlice    = faketelegram.User{ID: 1001, FirstName: "Alice"} // operator of payments
	tgVera     = faketelegram.User{ID: 1002, FirstName: "Vera"}  // viewer of payments
	tgOlga     = faketelegram.User{ID: 1003, FirstName: "Olga"}  // operator of web
	tgStranger = faketelegram.User{ID: 1009, FirstName: "Sam"}   // linked to no one

	slAlice    = fakeslack.User{ID: "UALICE01", Username: "alice"}
	slVera     = fakeslack.User{ID: "UVERA01", Username: "vera"}
	slOlga     = fakeslack.User{ID: "UOLGA01", Username: "olga"}
	slStranger = fakeslack.User{ID: "USAM01", Username: "sam"}

	lnAlice    = "U" + strings.Repeat("a1", 16)
	lnVera     = "U" + strings.Repeat("b2", 16)
	lnOlga     = "U" + strings.Repeat("c3", 16)
	lnStranger = "U" + strings.Repeat("d4", 16)
)

// fakeRepairs is the repair service's API as the gateway sees it: it
// answers repairs as they were put, and refuses a caller outside the
// repair's team as the real one does (auth.CheckTeam).
type fakeRepairs struct {
	repairv1.UnimplementedRepairServiceServer
	mu   sync.Mutex
	byID map[string]*repairv1.Repair
}

func (f *fakeRepairs) put(r *repairv1.Repair) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[r.GetId()] = r
}

func (f *fakeRepairs) GetRepair(ctx context.Context, r *repairv1.GetRepairRequest) (*repairv1.GetRepairResponse, error) {
	f.mu.Lock()
	rp, ok := f.byID[r.GetId()]
	f.mu.Unlock()
	if !ok {
		return nil, status.Errorf(codes.NotFound, "repair %s not found", r.GetId())
	}
	if err := auth.CheckTeam(ctx, rp.GetTeam(), "repair "+r.GetId()); err != nil {
		return nil, err
	}
	return &repairv1.GetRepairResponse{Repair: proto.CloneOf(rp)}, nil
}

// PostponeRepair snoozes a waiting repair, as the repair service does:
// for its team only, cut to its expiry.
func (f *fakeRepairs) PostponeRepair(ctx context.Context, r *repairv1.PostponeRepairRequest) (*repairv1.PostponeRepairResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	rp, ok := f.byID[r.GetId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "repair %s not found", r.GetId())
	}
	if err := auth.CheckTeam(ctx, rp.GetTeam(), "repair "+r.GetId()); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	rp = proto.CloneOf(rp)
	rp.SnoozedUntil, rp.SnoozedBy = rp.GetExpireTime(), p.String()
	f.byID[rp.GetId()] = rp
	return &repairv1.PostponeRepairResponse{Repair: proto.CloneOf(rp)}, nil
}

func (f *fakeRepairs) snoozedBy(id string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.byID[id].GetSnoozedBy()
}

// fakeIncidents is monitor's IncidentService: one incident of payments,
// which can be acknowledged, escalated and snoozed, by someone of its
// team, as monitor does.
type fakeIncidents struct {
	monitorv1.UnimplementedIncidentServiceServer
	mu         sync.Mutex
	incident   *typesv1.Incident
	escalation monitorv1.IncidentEscalation
	// listed are more incidents ListIncidents answers (console tests).
	listed []*typesv1.Incident
}

// reach refuses an unknown incident, and a caller outside its team, as
// monitor does.
func (f *fakeIncidents) reach(ctx context.Context, id string) error {
	if id != f.incident.GetId() {
		return status.Error(codes.NotFound, "incident not found")
	}
	return auth.CheckTeam(ctx, "payments", "incident "+id)
}

// unresolved refuses to act on a resolved incident (f.mu held).
func (f *fakeIncidents) unresolved() error {
	if f.incident.GetStatus() == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		return status.Error(codes.FailedPrecondition, "incident is resolved")
	}
	return nil
}

// EscalateIncident takes the next step, as monitor does: for its team,
// not once resolved.
func (f *fakeIncidents) EscalateIncident(ctx context.Context, r *monitorv1.EscalateIncidentRequest) (*monitorv1.EscalateIncidentResponse, error) {
	if err := f.reach(ctx, r.GetId()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.unresolved(); err != nil {
		return nil, err
	}
	f.escalation.Level++
	return &monitorv1.EscalateIncidentResponse{Incident: proto.CloneOf(f.incident), Level: f.escalation.GetLevel()}, nil
}

// SnoozeIncident snoozes the escalation, as monitor does: for its team,
// at most 24 h, not once resolved.
func (f *fakeIncidents) SnoozeIncident(ctx context.Context, r *monitorv1.SnoozeIncidentRequest) (*monitorv1.SnoozeIncidentResponse, error) {
	if d := r.GetDuration().AsDuration(); d <= 0 || d > 24*time.Hour {
		return nil, status.Error(codes.InvalidArgument, "invalid snooze")
	}
	if err := f.reach(ctx, r.GetId()); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.unresolved(); err != nil {
		return nil, err
	}
	f.escalation.SnoozedUntil = timestamppb.New(time.Now().Add(r.GetDuration().AsDuration()))
	f.escalation.SnoozedBy = p.String()
	return &monitorv1.SnoozeIncidentResponse{Incident: proto.CloneOf(f.incident), SnoozedUntil: f.escalation.GetSnoozedUntil()}, nil
}

func (f *fakeIncidents) GetIncident(ctx context.Context, r *monitorv1.GetIncidentRequest) (*monitorv1.GetIncidentResponse, error) {
	if err := f.reach(ctx, r.GetId()); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return &monitorv1.GetIncidentResponse{Incident: proto.CloneOf(f.incident), Escalation: proto.CloneOf(&f.escalation)}, nil
}

func (f *fakeIncidents) AcknowledgeIncident(ctx context.Context, r *monitorv1.AcknowledgeIncidentRequest) (*monitorv1.AcknowledgeIncidentResponse, error) {
	if err := f.reach(ctx, r.GetId()); err != nil {
		return nil, err
	}
	p, _ := auth.FromContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.incident.GetStatus() != typesv1.IncidentStatus_INCIDENT_STATUS_OPEN {
		return nil, status.Error(codes.FailedPrecondition, "incident is not open")
	}
	f.incident.Status, f.incident.AcknowledgedBy = typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, p.String()
	return &monitorv1.AcknowledgeIncidentResponse{Incident: proto.CloneOf(f.incident)}, nil
}

// fakeSilences is monitor's SilenceService: it records what it was asked
// and by whom.
type fakeSilences struct {
	monitorv1.UnimplementedSilenceServiceServer
	mu      sync.Mutex
	created []createdSilence
}

type createdSilence struct {
	by  string
	req *monitorv1.CreateSilenceRequest
	id  string
}

func (f *fakeSilences) CreateSilence(ctx context.Context, r *monitorv1.CreateSilenceRequest) (*monitorv1.CreateSilenceResponse, error) {
	p, _ := auth.FromContext(ctx)
	id := uuid.NewString()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.created = append(f.created, createdSilence{by: p.String(), req: r, id: id})
	return &monitorv1.CreateSilenceResponse{Silence: &monitorv1.Silence{Id: id, Matchers: r.GetMatchers()}}, nil
}

func (f *fakeSilences) all() []createdSilence {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created)
}

// published is an answer the gateway put on the bus, with what the chat
// fakes had recorded when it arrived there: the answer comes first.
type published struct {
	subject string
	event   bus.Event
	// answeredQueries are the Telegram callback queries answered by then.
	answeredQueries map[string]bool
	// responsePosts is how many posts Slack's response_urls had taken.
	responsePosts int
	// lineReplies is how many replies LINE had carried.
	lineReplies int
}

type env struct {
	dsn       string
	keys      *auth.KeySet
	pub       *bus.Publisher
	repairs   *fakeRepairs
	incidents *fakeIncidents
	silences  *fakeSilences
	tg        *faketelegram.Server
	sl        *fakeslack.Server
	ln        *fakeline.Server
	store     *postgres.Store
	// js is the bus the gateway consumes when withBus (console tests).
	js      jetstream.JetStream
	withBus bool

	mu        sync.Mutex
	published []published
}

// The repairs of the fixtures.
var (
	incidentID = uuid.NewString()
	rApprove   = uuid.NewString()
	rReject    = uuid.NewString()
	rLater     = uuid.NewString()
	rSilence   = uuid.NewString()
	rDecided   = uuid.NewString()
	rRejected  = uuid.NewString()
	rExpired   = uuid.NewString()
	rUnknown   = uuid.NewString()
)

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	nc, js := testkit.JetStream(t, testkit.NATS(t))
	e := &env{
		dsn: testkit.Postgres(t), keys: auth.NewKeySet(priv), pub: bus.NewPublisher(js, nil), js: js,
		repairs: &fakeRepairs{byID: map[string]*repairv1.Repair{}},
		incidents: &fakeIncidents{incident: &typesv1.Incident{
			Id: incidentID, GroupLabels: map[string]string{"alertname": "HighLatency", "namespace": "shop"},
			Status: typesv1.IncidentStatus_INCIDENT_STATUS_OPEN,
		}},
		silences: &fakeSilences{},
		tg:       faketelegram.New(t, faketelegram.Options{ChatIDs: []string{tgChat}}),
		sl:       fakeslack.New(t, fakeslack.Options{Channels: []fakeslack.Channel{{ID: slackChannel, Name: "ops"}}}),
		ln:       fakeline.New(t, fakeline.Options{To: []string{lnAlice, lnVera, lnOlga, lnStranger}}),
	}
	_, err = nc.Subscribe("repair.*", func(m *nats.Msg) {
		evs, err := bus.Decode(m.Subject, m.Data)
		if err != nil || len(evs) != 1 {
			t.Errorf("undecodable %s: %v", m.Subject, err)
			return
		}
		p := published{subject: m.Subject, event: evs[0], answeredQueries: map[string]bool{}, responsePosts: len(e.sl.ResponsePosts()), lineReplies: len(e.ln.Replies())}
		for _, q := range e.tg.CallbackQueries() {
			if q.Answer != nil {
				p.answeredQueries[q.ID] = true
			}
		}
		e.mu.Lock()
		e.published = append(e.published, p)
		e.mu.Unlock()
	})
	require.NoError(t, err)

	now := time.Now()
	pending := func(id string) *repairv1.Repair {
		return &repairv1.Repair{
			Id: id, IncidentId: incidentID, App: "shop", Team: "payments",
			Status: repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, ExpireTime: timestamppb.New(now.Add(30 * time.Minute)),
		}
	}
	for _, id := range []string{rApprove, rReject, rLater, rSilence} {
		e.repairs.put(pending(id))
	}
	decided := pending(rDecided)
	decided.Status, decided.DecidedBy, decided.DecidedVia = repairv1.RepairStatus_REPAIR_STATUS_QUEUED, "user:bob", "slack"
	e.repairs.put(decided)
	rejected := pending(rRejected)
	rejected.Status, rejected.DecidedBy = repairv1.RepairStatus_REPAIR_STATUS_REJECTED, "user:bob"
	e.repairs.put(rejected)
	expired := pending(rExpired)
	expired.ExpireTime = timestamppb.New(now.Add(-time.Minute))
	e.repairs.put(expired)

	// The people, on the gateway's schema.
	pool, err := db.Open(ctx, e.dsn, gateway.Schema)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	require.NoError(t, db.Migrate(ctx, pool, gateway.Schema, db.Sub(postgres.Migrations, "migrations")))
	e.store = postgres.New(pool)
	hasher := access.NewHasher(access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	acc := access.New(access.Options{}, e.store, e.keys, hasher, "", testkit.Logger(t))
	admin := auth.Principal{Kind: auth.KindBootstrap, Name: "admin", Role: auth.RoleAdmin, AllTeams: true}
	for _, u := range []struct {
		user     access.User
		telegram string
		slack    string
		line     string
	}{
		{access.User{Name: "alice", Role: auth.RoleOperator, Teams: []string{"payments"}, Email: "alice@example.com"}, "1001", "UALICE01", lnAlice},
		{access.User{Name: "vera", Role: auth.RoleViewer, Teams: []string{"payments"}, Email: "vera@example.com"}, "1002", "UVERA01", lnVera},
		{access.User{Name: "olga", Role: auth.RoleOperator, Teams: []string{"web"}, Email: "olga@example.com"}, "1003", "UOLGA01", lnOlga},
	} {
		_, err := acc.CreateUser(ctx, u.user, "correct horse battery")
		require.NoError(t, err)
		_, err = acc.LinkChatIdentity(ctx, admin, u.user.Name, access.Telegram, u.telegram)
		require.NoError(t, err)
		_, err = acc.LinkChatIdentity(ctx, admin, u.user.Name, access.Slack, fakeslack.DefaultTeamID+":"+u.slack)
		require.NoError(t, err)
		_, err = acc.LinkChatIdentity(ctx, admin, u.user.Name, access.Line, u.line)
		require.NoError(t, err)
	}
	return e
}

// gw is a running gateway.
type gw struct {
	addr string
	stop func()
}

// webhookURL in Options.TelegramWebhookURL stands for the gateway's own.
const webhookURL = "self"

// start runs a gateway with opts (the chat settings) on the env's
// database, bus and fakes, until the test ends or stop.
func (e *env) start(t *testing.T, opts gateway.Options) *gw {
	t.Helper()
	ctx := context.Background()
	pool, err := db.Open(ctx, e.dsn, gateway.Schema)
	require.NoError(t, err)
	// Every call authenticated, authorised and audited, as in vigil.
	guard := &auth.Guard{Log: testkit.Logger(t)}
	srv := server.New(server.Options{
		GRPCAddr: "127.0.0.1:0", HTTPAddr: "127.0.0.1:0", Logger: testkit.Logger(t),
		UnaryInterceptors: []grpc.UnaryServerInterceptor{guard.Unary()}, StreamInterceptors: []grpc.StreamServerInterceptor{guard.Stream()},
	})
	require.NoError(t, srv.Listen())
	if opts.TelegramWebhookURL == webhookURL {
		opts.TelegramWebhookURL = "http://" + srv.HTTPAddr() + "/api/v1/webhooks/telegram"
	}
	g, err := gateway.New(ctx, opts, gateway.Deps{
		Pool: pool, Keys: e.keys, Publisher: e.pub, Logger: testkit.Logger(t),
		Incidents: e.incidents, Silences: e.silences, Repairs: e.repairs,
		JetStream: busIf(e.withBus, e.js),
	})
	require.NoError(t, err)
	guard.Authn, guard.Audit = g.Authenticator(), g.Audit
	require.NoError(t, g.Register(ctx, srv))
	rctx, cancel := context.WithCancel(ctx)
	srvDone, runDone := make(chan error, 1), make(chan error, 1)
	go func() { srvDone <- srv.Run(rctx) }()
	go func() { runDone <- g.Run(rctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-runDone:
				require.NoError(t, err)
			case <-time.After(15 * time.Second):
				t.Error("the gateway did not stop within 15 s")
			}
			require.NoError(t, <-srvDone)
			pool.Close()
		})
	}
	t.Cleanup(stop)
	return &gw{addr: srv.HTTPAddr(), stop: stop}
}

func busIf(on bool, js jetstream.JetStream) jetstream.JetStream {
	if on {
		return js
	}
	return nil
}

// events are the answers on the bus so far.
func (e *env) events() []published {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.published)
}

// waitEvents waits for n answers on the bus.
func (e *env) waitEvents(t *testing.T, n int) []published {
	t.Helper()
	require.Eventually(t, func() bool { return len(e.events()) >= n }, 10*time.Second, 10*time.Millisecond, "want %d events", n)
	return e.events()
}

// tgCard sends an approval card for repair id to the Telegram chat, as
// notify does; extra buttons carry other callback data.
func (e *env) tgCard(t *testing.T, id string, extra ...string) faketelegram.Message {
	t.Helper()
	var row []map[string]string
	for _, v := range approval.Verbs {
		row = append(row, map[string]string{"text": string(v), "callback_data": approval.CallbackData(v, id)})
	}
	for _, data := range extra {
		row = append(row, map[string]string{"text": data, "callback_data": data})
	}
	body, err := json.Marshal(map[string]any{
		"chat_id": tgChat, "text": "Repair " + id + " waits for an answer",
		"reply_markup": map[string]any{"inline_keyboard": [][]map[string]string{row}},
	})
	require.NoError(t, err)
	resp, err := http.Post(e.tg.URL()+"/bot"+e.tg.Token()+"/sendMessage", "application/json", bytes.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var sent struct {
		OK     bool `json:"ok"`
		Result struct {
			MessageID int64 `json:"message_id"`
		} `json:"result"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&sent))
	require.True(t, sent.OK)
	m, ok := e.tg.Message(tgChat, sent.Result.MessageID)
	require.True(t, ok)
	return m
}

// tgPress presses the button of verb on card as from, and waits for the
// bot's answer.
func (e *env) tgPress(t *testing.T, card faketelegram.Message, data string, from faketelegram.User) (faketelegram.CallbackQuery, faketelegram.CallbackAnswer) {
	t.Helper()
	q := e.tg.Press(t, card, data, from)
	return q, e.tg.WaitForAnswer(t, q.ID, 10*time.Second)
}

func (e *env) audit(t *testing.T, method string) []string {
	t.Helper()
	evs, err := e.store.AuditEvents(context.Background(), postgres.AuditQuery{Method: method, Limit: 100})
	require.NoError(t, err)
	var out []string
	for _, ev := range evs {
		out = append(out, ev.Actor+" "+ev.Target+" "+ev.Code)
	}
	return out
}

// TestTelegramApprovalsByWebhook: the gateway sets its webhook, and every
// press comes to it there: approve and reject go on the bus (after the
// press is answered), later and silence do not; whoever may not decide is
// refused, politely and in the audit log.
func TestTelegramApprovalsByWebhook(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	e.start(t, gateway.Options{
		TelegramBotToken: e.tg.Token(), TelegramAPIURL: e.tg.URL(),
		TelegramWebhookURL: webhookURL, TelegramWebhookSecret: telegramSecret,
	})
	require.Eventually(t, func() bool { _, ok := e.tg.Webhook(); return ok }, 10*time.Second, 10*time.Millisecond, "setWebhook")
	wh, _ := e.tg.Webhook()
	require.Equal(t, telegramSecret, wh.SecretToken)

	card := e.tgCard(t, rApprove, "not-vigils")
	approve := approval.CallbackData(approval.Approve, rApprove)
	refusals := []struct {
		from faketelegram.User
		data string
		want string
	}{
		{tgStranger, approve, "Vigil does not know your Telegram account"},
		{tgVera, approve, "Only an operator of the app's team may decide on repairs; user:vera is a viewer."},
		{tgOlga, approve, "Only an operator of the app's team may decide on this repair; user:olga is not in it."},
		{tgAlice, "not-vigils", "This button is not Vigil's"},
	}
	for _, r := range refusals {
		_, a := e.tgPress(t, card, r.data, r.from)
		require.True(t, a.ShowAlert, r.want)
		require.Contains(t, a.Text, r.want)
	}
	q, a := e.tgPress(t, card, approve, tgAlice)
	require.False(t, a.ShowAlert)
	require.Contains(t, a.Text, "Approved")
	evs := e.waitEvents(t, 1)
	require.Equal(t, bus.SubjectRepairApproved, evs[0].subject)
	ap, ok := evs[0].event.(*eventsv1.RepairApproved)
	require.True(t, ok)
	require.Equal(t, rApprove, ap.GetRepairId())
	require.Equal(t, "user:alice", ap.GetApprovedBy())
	require.Equal(t, "telegram", ap.GetChannel())
	require.Equal(t, "gateway", ap.GetMeta().GetProducer())
	require.Equal(t, "shop", ap.GetMeta().GetApp())
	require.True(t, evs[0].answeredQueries[q.ID], "the press is answered before the approval is published")

	q, a = e.tgPress(t, e.tgCard(t, rReject), approval.CallbackData(approval.Reject, rReject), tgAlice)
	require.Equal(t, "Rejected: the repair will not run.", a.Text)
	evs = e.waitEvents(t, 2)
	rj, ok := evs[1].event.(*eventsv1.RepairRejected)
	require.True(t, ok)
	require.Equal(t, rReject, rj.GetRepairId())
	require.Equal(t, "user:alice", rj.GetRejectedBy())
	require.Equal(t, "telegram", rj.GetChannel())
	require.Equal(t, "rejected in Telegram", rj.GetReason())
	require.True(t, evs[1].answeredQueries[q.ID])

	exp := e.repairs.byID[rLater].GetExpireTime().AsTime().UTC()
	_, a = e.tgPress(t, e.tgCard(t, rLater), approval.CallbackData(approval.Later, rLater), tgAlice)
	require.False(t, a.ShowAlert)
	require.Contains(t, a.Text, "Snoozed: Vigil asks again later, before it expires at ")
	require.Contains(t, a.Text, exp.Format("15:04")+" UTC")
	require.Eventually(t, func() bool { return e.repairs.snoozedBy(rLater) == "user:alice" }, 10*time.Second, 10*time.Millisecond,
		"snoozed in the repair service as the presser")

	_, a = e.tgPress(t, e.tgCard(t, rSilence), approval.CallbackData(approval.Silence, rSilence), tgAlice)
	require.Contains(t, a.Text, "Silencing the incident's alerts for 2 h")
	// The silence is made after the answer.
	require.Eventually(t, func() bool { return len(e.silences.all()) > 0 }, 10*time.Second, 10*time.Millisecond)
	sils := e.silences.all()
	require.Len(t, sils, 1)
	require.Equal(t, "user:alice", sils[0].by)
	require.Equal(t, []string{`alertname="HighLatency"`, `namespace="shop"`}, sils[0].req.GetMatchers())
	require.Equal(t, 2*time.Hour, sils[0].req.GetDuration().AsDuration())
	require.Contains(t, sils[0].req.GetComment(), rSilence)
	require.Contains(t, sils[0].req.GetComment(), "user:alice")
	require.Contains(t, a.Text, "still waits")

	for id, want := range map[string]string{
		rDecided:  "Already approved by user:bob.",
		rRejected: "Already rejected by user:bob.",
		rExpired:  "This approval expired at",
		rUnknown:  "Vigil knows no such repair.",
	} {
		_, a = e.tgPress(t, e.tgCard(t, id), approval.CallbackData(approval.Approve, id), tgAlice)
		require.True(t, a.ShowAlert, want)
		require.Contains(t, a.Text, want)
	}

	// A forged update (no or a wrong secret token) is refused, and does
	// nothing.
	forged := `{"update_id":1,"callback_query":{"id":"999","from":{"id":1001,"is_bot":false,"first_name":"A"},` +
		`"chat_instance":"1","data":"` + approval.CallbackData(approval.Approve, rLater) + `"}}`
	for _, token := range []string{"", "wrong"} {
		req, err := http.NewRequest(http.MethodPost, wh.URL, strings.NewReader(forged))
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("X-Telegram-Bot-Api-Secret-Token", token)
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		_ = resp.Body.Close()
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}

	// Every press was answered, once, and only two were answers.
	for _, q := range e.tg.CallbackQueries() {
		require.NotNil(t, q.Answer, "query %s (%s)", q.ID, q.Data)
	}
	for _, r := range e.tg.Requests() {
		require.Less(t, r.StatusCode, 300, "%s: %s", r.Method, r.Description)
	}
	require.Len(t, e.events(), 2)

	require.ElementsMatch(t, []string{
		"telegram:1009 repair/" + rApprove + " Unauthenticated",
		"user:vera repair/" + rApprove + " PermissionDenied",
		"user:olga repair/" + rApprove + " PermissionDenied",
		"user:alice repair/" + rApprove + " OK",
		"user:alice repair/" + rDecided + " FailedPrecondition",
		"user:alice repair/" + rRejected + " FailedPrecondition",
		"user:alice repair/" + rExpired + " FailedPrecondition",
		"user:alice repair/" + rUnknown + " NotFound",
	}, e.audit(t, "chat.telegram/ApproveRepair"))
	require.Equal(t, []string{"user:alice repair/" + rReject + " OK"}, e.audit(t, "chat.telegram/RejectRepair"))
	require.Equal(t, []string{"user:alice repair/" + rLater + " OK"}, e.audit(t, "chat.telegram/PostponeRepair"))
	require.Equal(t, []string{"user:alice repair/" + rSilence + " OK"}, e.audit(t, "chat.telegram/SilenceRepair"))
	require.Equal(t, []string{"telegram:1001  InvalidArgument"}, e.audit(t, "chat.telegram/PressButton"))
}

// countingProxy forwards to target and counts the Bot API methods called
// through it.
type countingProxy struct {
	url string
	mu  sync.Mutex
	n   map[string]int
}

func newCountingProxy(t *testing.T, target string) *countingProxy {
	t.Helper()
	u, err := url.Parse(target)
	require.NoError(t, err)
	p := &countingProxy{n: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		p.mu.Lock()
		p.n[method]++
		p.mu.Unlock()
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	p.url = srv.URL
	return p
}

func (p *countingProxy) count(method string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n[method]
}

// TestTelegramApprovalsByPolling: without a webhook URL two gateway
// replicas share the bot; exactly one polls (the other waits on the
// lease), every update is handled once, and when the poller stops the
// other takes over.
func TestTelegramApprovalsByPolling(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	proxies := []*countingProxy{newCountingProxy(t, e.tg.URL()), newCountingProxy(t, e.tg.URL())}
	gws := make([]*gw, 2)
	for i, p := range proxies {
		gws[i] = e.start(t, gateway.Options{
			TelegramBotToken: e.tg.Token(), TelegramAPIURL: p.url, TelegramPollRetry: 100 * time.Millisecond,
		})
	}
	require.Eventually(t, func() bool { return proxies[0].count("getUpdates")+proxies[1].count("getUpdates") > 0 },
		10*time.Second, 10*time.Millisecond, "nobody polls")
	_, hasWebhook := e.tg.Webhook()
	require.False(t, hasWebhook)

	// Presses from several people, on several cards, arrive by getUpdates.
	card := e.tgCard(t, rApprove)
	var queries []faketelegram.CallbackQuery
	for _, from := range []faketelegram.User{tgStranger, tgVera, tgOlga, tgAlice} {
		queries = append(queries, e.tg.Press(t, card, approval.CallbackData(approval.Approve, rApprove), from))
	}
	queries = append(queries, e.tg.Press(t, e.tgCard(t, rReject), approval.CallbackData(approval.Reject, rReject), tgAlice))
	for _, q := range queries {
		e.tg.WaitForAnswer(t, q.ID, 10*time.Second)
	}
	evs := e.waitEvents(t, 2)
	require.Equal(t, bus.SubjectRepairApproved, evs[0].subject)
	require.Equal(t, bus.SubjectRepairRejected, evs[1].subject)
	require.True(t, evs[0].answeredQueries[queries[3].ID])
	require.True(t, evs[1].answeredQueries[queries[4].ID])

	// One poller: the other never asked.
	poller, waiting := 0, 1
	if proxies[1].count("getUpdates") > 0 {
		poller, waiting = 1, 0
	}
	require.Zero(t, proxies[waiting].count("getUpdates"), "both replicas polled")

	// The poller goes away; the other takes over and handles what comes.
	start := time.Now()
	gws[poller].stop()
	require.Less(t, time.Since(start), 5*time.Second, "stopping ends the long poll at once")
	q := e.tg.Press(t, e.tgCard(t, rLater), approval.CallbackData(approval.Later, rLater), tgAlice)
	a := e.tg.WaitForAnswer(t, q.ID, 10*time.Second)
	require.Contains(t, a.Text, "Snoozed")
	require.Positive(t, proxies[waiting].count("getUpdates"))
	q = e.tg.Press(t, e.tgCard(t, rApprove), approval.CallbackData(approval.Approve, rApprove), tgAlice)
	e.tg.WaitForAnswer(t, q.ID, 10*time.Second)
	e.waitEvents(t, 3)

	// Each update was handled once: no press answered twice (the fake
	// refuses a second answer), no poll ended by another (409).
	for _, r := range e.tg.Requests() {
		require.NotEqual(t, http.StatusConflict, r.StatusCode, "%s: %s", r.Method, r.Description)
		require.Less(t, r.StatusCode, 300, "%s: %s", r.Method, r.Description)
	}
	require.Len(t, e.events(), 3)
	// The audit row of a decision is written once it is answered, which
	// may be after its event is on the bus.
	require.Eventually(t, func() bool { return len(e.audit(t, "chat.telegram/ApproveRepair")) == 5 },
		10*time.Second, 10*time.Millisecond, "%v", e.audit(t, "chat.telegram/ApproveRepair"))
}

// slCard posts an approval card for repair id to the Slack channel, as
// notify does.
func (e *env) slCard(t *testing.T, id string) fakeslack.Message {
	t.Helper()
	var buttons []map[string]any
	for _, v := range slices.Concat(approval.Verbs, approval.IncidentVerbs()) {
		buttons = append(buttons, map[string]any{
			"type": "button", "text": map[string]any{"type": "plain_text", "text": string(v)},
			"action_id": approval.SlackActionID(v), "value": id,
		})
	}
	body, err := json.Marshal(map[string]any{
		"channel": slackChannel, "text": "Repair " + id + " waits for an answer",
		"blocks": []any{map[string]any{"type": "actions", "elements": buttons}},
	})
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, e.sl.APIURL()+"chat.postMessage", bytes.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+e.sl.BotToken())
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var posted struct {
		OK    bool   `json:"ok"`
		Error string `json:"error"`
		TS    string `json:"ts"`
	}
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&posted))
	require.True(t, posted.OK, posted.Error)
	m, ok := e.sl.Message(slackChannel, posted.TS)
	require.True(t, ok)
	return m
}

// slPress presses the button of verb on a card for repair id as user,
// checks Slack got its 200 in time, and waits for the answer posted to
// the response_url.
func (e *env) slPress(t *testing.T, id string, v approval.Verb, user fakeslack.User) fakeslack.ResponsePost {
	t.Helper()
	in := e.sl.Press(t, e.slCard(t, id), approval.SlackActionID(v), user)
	require.True(t, in.Acknowledged(), "status %d, %s", in.StatusCode, in.Err)
	require.Less(t, in.Elapsed, fakeslack.AckTimeout)
	var post fakeslack.ResponsePost
	require.Eventually(t, func() bool {
		for _, p := range e.sl.ResponsePosts() {
			if p.URL == in.ResponseURL {
				post = p
				return true
			}
		}
		return false
	}, 10*time.Second, 10*time.Millisecond, "no answer to the press")
	require.Equal(t, http.StatusOK, post.StatusCode, post.Error)
	require.Equal(t, "ephemeral", post.ResponseType)
	require.False(t, post.ReplaceOriginal)
	return post
}

// TestSlackApprovals: interactions are verified, acknowledged at once and
// decided after; the person hears back ephemerally.
func TestSlackApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{SlackSigningSecret: e.sl.SigningSecret(), SlackResponseURLBase: e.sl.ResponseURLBase()})
	e.sl.SetInteractivityURL("http://" + g.addr + "/api/v1/webhooks/slack/interactions")

	// Forged and replayed presses: 401, nothing done.
	for name, opt := range map[string]fakeslack.PressOption{
		"forged":   fakeslack.SignWith("not-the-signing-secret"),
		"stale":    fakeslack.SignedAt(time.Now().Add(-6 * time.Minute)),
		"unsigned": fakeslack.Unsigned(),
	} {
		in := e.sl.Press(t, e.slCard(t, rApprove), approval.SlackActionID(approval.Approve), slAlice, opt)
		require.Equal(t, http.StatusUnauthorized, in.StatusCode, name)
	}

	for _, r := range []struct {
		user fakeslack.User
		want string
	}{
		{slStranger, "Vigil does not know your Slack account"},
		{slVera, "user:vera is a viewer"},
		{slOlga, "user:olga is not in it"},
	} {
		require.Contains(t, e.slPress(t, rApprove, approval.Approve, r.user).Text, r.want)
	}
	require.Empty(t, e.events(), "nothing published for a refusal or a forgery")

	post := e.slPress(t, rApprove, approval.Approve, slAlice)
	require.Contains(t, post.Text, "Approved")
	evs := e.waitEvents(t, 1)
	ap, ok := evs[0].event.(*eventsv1.RepairApproved)
	require.True(t, ok)
	require.Equal(t, "user:alice", ap.GetApprovedBy())
	require.Equal(t, "slack", ap.GetChannel())
	require.Equal(t, 4, evs[0].responsePosts, "the press is answered before the approval is published")

	require.Equal(t, "Rejected: the repair will not run.", e.slPress(t, rReject, approval.Reject, slAlice).Text)
	evs = e.waitEvents(t, 2)
	rj, ok := evs[1].event.(*eventsv1.RepairRejected)
	require.True(t, ok)
	require.Equal(t, "rejected in Slack", rj.GetReason())
	require.Equal(t, "slack", rj.GetChannel())

	require.Contains(t, e.slPress(t, rLater, approval.Later, slAlice).Text, "Snoozed: Vigil asks again later, before it expires at ")
	require.Eventually(t, func() bool { return e.repairs.snoozedBy(rLater) == "user:alice" }, 10*time.Second, 10*time.Millisecond)
	post = e.slPress(t, rSilence, approval.Silence, slAlice)
	require.Contains(t, post.Text, "Silencing the incident's alerts")
	require.Eventually(t, func() bool { return len(e.silences.all()) > 0 }, 10*time.Second, 10*time.Millisecond)
	sils := e.silences.all()
	require.Len(t, sils, 1)
	require.Equal(t, "user:alice", sils[0].by)
	require.Contains(t, e.slPress(t, rDecided, approval.Approve, slAlice).Text, "Already approved by user:bob.")
	require.Len(t, e.events(), 2)

	require.Eventually(t, func() bool { return len(e.audit(t, "chat.slack/ApproveRepair")) == 5 }, 5*time.Second, 10*time.Millisecond)
	require.ElementsMatch(t, []string{
		"slack:" + fakeslack.DefaultTeamID + ":USAM01 repair/" + rApprove + " Unauthenticated",
		"user:vera repair/" + rApprove + " PermissionDenied",
		"user:olga repair/" + rApprove + " PermissionDenied",
		"user:alice repair/" + rApprove + " OK",
		"user:alice repair/" + rDecided + " FailedPrecondition",
	}, e.audit(t, "chat.slack/ApproveRepair"))
	require.Equal(t, []string{"user:alice repair/" + rReject + " OK"}, e.audit(t, "chat.slack/RejectRepair"))
}

// Without the signing secret the interactions route is not there.
func TestSlackInteractionsNotSetUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{})
	resp, err := http.Post("http://"+g.addr+"/api/v1/webhooks/slack/interactions", "application/x-www-form-urlencoded", strings.NewReader("payload={}"))
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusNotFound, resp.StatusCode)
}
