package app_test

import (
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
	"github.com/vigil-ops/vigil/pkg/testkit/fakewebhook"
)

// The secrets of the people tests' channel: its signing secret, and the
// tokens its URL carries, as Slack's and many webhooks' URLs do.
const (
	peopleSecret    = "s3cret-signing-value"
	peoplePathToken = "T0KEN-in-the-path"
)

// peopleVigil is a running Vigil with a webhook sink for channels, and
// users: ada (admin), alice (operator of payments), vic (viewer of
// payments).
type peopleVigil struct {
	*consoleVigil
	sink     *fakewebhook.Sink
	channels notifyv1.ChannelServiceClient
	routes   notifyv1.RouteServiceClient
	policies monitorv1.EscalationServiceClient
	oncall   monitorv1.OnCallServiceClient
}

func startPeople(t *testing.T) *peopleVigil {
	t.Helper()
	c := startConsole(t, []*gatewayv1.User{
		{Name: "ada", Role: gatewayv1.Role_ROLE_ADMIN},
		{Name: "alice", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
		{Name: "vic", Role: gatewayv1.Role_ROLE_VIEWER, Teams: []string{"payments"}},
	}, func(o *app.Options) { o.Notify.EncryptionKey = testKey() })
	return &peopleVigil{
		consoleVigil: c, sink: fakewebhook.New(t, peopleSecret),
		channels: notifyv1.NewChannelServiceClient(c.conn), routes: notifyv1.NewRouteServiceClient(c.conn),
		policies: monitorv1.NewEscalationServiceClient(c.conn), oncall: monitorv1.NewOnCallServiceClient(c.conn),
	}
}

// hookURL is the channel's URL: the sink's, with tokens in it.
func (p *peopleVigil) hookURL() string {
	return p.sink.URL + "/hooks/" + peoplePathToken + "?key=" + peoplePathToken
}

// requireNoSecret fails if a page shows any of the channel's secrets.
func requireNoSecret(t *testing.T, page browser.Page) {
	t.Helper()
	for _, s := range []string{peopleSecret, peoplePathToken} {
		require.NotContains(t, page.Body, s)
	}
}

// TestConsolePeopleChannels: an operator creates a team channel through
// the console, tests it, changes it; the API has it as typed, and no
// page ever shows its secret or its URL's tokens. Bad input shows the
// API's field error and stores nothing; a viewer is refused the list,
// and a viewer's direct POST to delete it is refused and changes
// nothing.
func TestConsolePeopleChannels(t *testing.T) {
	p := startPeople(t)
	alice := p.login(t, "alice")

	page := alice.Get("/settings/channels")
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, `action="/settings/channels"`, "an operator may create channels")

	page = alice.Post("/settings/channels", url.Values{
		"name": {"pay-hook"}, "kind": {"webhook"}, "target": {p.hookURL()}, "team": {"payments"},
		"credential": {peopleSecret}, "language": {"en"}, "time_zone": {"Asia/Taipei"},
	})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	require.Equal(t, "/settings/channels/pay-hook?done=done.channel_created", page.Header.Get("Location"))
	require.Len(t, p.sink.WaitFor(t, 1, 10*time.Second), 1, "the API tested the channel before storing it")

	got, err := p.channels.GetChannel(p.admin, &notifyv1.GetChannelRequest{Name: "pay-hook"})
	require.NoError(t, err)
	require.Equal(t, "payments", got.GetChannel().GetTeam())
	require.Equal(t, p.hookURL(), got.GetChannel().GetTarget())
	require.True(t, got.GetChannel().GetHasCredential())
	require.Equal(t, "user:alice", got.GetChannel().GetCreatedBy())

	for _, path := range []string{"/settings/channels", "/settings/channels/pay-hook", "/settings/channels/pay-hook?done=done.channel_created"} {
		page = alice.Get(path)
		require.Equal(t, http.StatusOK, page.Code, path)
		requireNoSecret(t, page)
		require.Contains(t, page.Body, p.sink.URL+"/…", path)
	}
	require.Contains(t, alice.Get("/settings/channels/pay-hook?done=done.channel_created").Body, "Channel created.")

	// Test: the provider's answer is shown.
	page = alice.Post("/settings/channels/pay-hook/test", nil)
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "The test message was delivered.")
	requireNoSecret(t, page)
	require.Len(t, p.sink.WaitFor(t, 2, 10*time.Second), 2)
	// And the provider's refusal.
	p.sink.Fail(http.StatusInternalServerError)
	page = alice.Post("/settings/channels/pay-hook/test", nil)
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "The test message was not delivered (HTTP 500)")
	requireNoSecret(t, page)

	// A change leaves the credential and the URL, not typed again, as they were.
	page = alice.Post("/settings/channels/pay-hook", url.Values{
		"target": {""}, "credential": {""}, "team": {"payments"}, "language": {"zh-TW"}, "time_zone": {"Asia/Taipei"},
	})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	got, err = p.channels.GetChannel(p.admin, &notifyv1.GetChannelRequest{Name: "pay-hook"})
	require.NoError(t, err)
	require.Equal(t, "zh-TW", got.GetChannel().GetLanguage())
	require.Equal(t, p.hookURL(), got.GetChannel().GetTarget())
	require.True(t, got.GetChannel().GetHasCredential())

	// Saved unchanged: nothing sent (no test message either).
	sent := len(p.sink.Accepted())
	page = alice.Post("/settings/channels/pay-hook", url.Values{"team": {"payments"}, "language": {"zh-TW"}, "time_zone": {"Asia/Taipei"}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	require.Equal(t, "/settings/channels/pay-hook", page.Header.Get("Location"))
	require.Len(t, p.sink.Accepted(), sent)

	// Bad input: the API's field error, nothing stored.
	page = alice.Post("/settings/channels", url.Values{
		"name": {"Bad_Name"}, "kind": {"webhook"}, "target": {p.hookURL()}, "team": {"payments"}, "credential": {peopleSecret},
	})
	require.Equal(t, http.StatusBadRequest, page.Code)
	require.Contains(t, page.Body, "channel.name")
	requireNoSecret(t, page)
	list, err := p.channels.ListChannels(p.admin, &notifyv1.ListChannelsRequest{})
	require.NoError(t, err)
	names := []string{}
	for _, ch := range list.GetChannels() {
		names = append(names, ch.GetName())
	}
	require.NotContains(t, names, "Bad_Name")
	require.Contains(t, names, "pay-hook")

	// A viewer: no list (channels are for operators), and a direct POST
	// is refused with nothing changed.
	vic := p.login(t, "vic")
	require.Equal(t, http.StatusForbidden, vic.Get("/settings/channels").Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/channels/pay-hook/delete", nil).Code)
	_, err = p.channels.GetChannel(p.admin, &notifyv1.GetChannelRequest{Name: "pay-hook"})
	require.NoError(t, err, "the viewer's delete changed nothing")

	// Her own personal channel: hers to manage, though of no team.
	page = alice.Post("/settings/channels", url.Values{
		"name": {"alice-hook"}, "kind": {"webhook"}, "target": {p.hookURL()}, "user": {"alice"}, "credential": {peopleSecret}, "no_test": {"1"},
	})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	page = alice.Get("/settings/channels/alice-hook")
	require.Contains(t, page.Body, `id="edit-channel"`)
	require.Contains(t, page.Body, `id="test-channel"`)
	requireNoSecret(t, page)

	// Delete, with the confirmation the page asks for.
	require.Contains(t, alice.Get("/settings/channels/pay-hook").Body, `data-confirm="Delete this channel?`)
	page = alice.Post("/settings/channels/pay-hook/delete", nil)
	require.Equal(t, http.StatusSeeOther, page.Code)
	_, err = p.channels.GetChannel(p.admin, &notifyv1.GetChannelRequest{Name: "pay-hook"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

// payRoutes sends payments' incidents to pay-hook, the rest nowhere.
const payRoutes = `route:
  routes:
    - name: payments
      teams: [payments]
      receivers: [pay-hook]
`

// TestConsolePeopleRoutes: an admin applies a routing tree through the
// console and asks where an alert would go; a tree the API refuses
// shows its field errors with the text kept; an operator sees no editor
// and a direct POST is refused with nothing applied.
func TestConsolePeopleRoutes(t *testing.T) {
	p := startPeople(t)
	_, err := p.channels.CreateChannel(p.admin, &notifyv1.CreateChannelRequest{
		Channel: &notifyv1.Channel{Name: "pay-hook", Kind: "webhook", Target: p.hookURL(), Team: "payments"}, Credential: peopleSecret, NoTest: true,
	})
	require.NoError(t, err)
	ada, alice := p.login(t, "ada"), p.login(t, "alice")

	page := ada.Get("/settings/routes")
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "No routes applied")
	require.Contains(t, page.Body, `id="routes-apply"`)

	page = ada.Post("/settings/routes", url.Values{"document": {payRoutes}, "version": {"0"}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	cur, err := p.routes.GetRoutes(p.admin, &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 1, cur.GetCurrent().GetVersion())
	require.Equal(t, "ada", cur.GetCurrent().GetAppliedBy())
	require.Equal(t, []string{"pay-hook"}, cur.GetCurrent().GetConfig().GetRoute().GetRoutes()[0].GetReceivers())

	page = ada.Get("/settings/routes?done=done.routes_applied")
	require.Contains(t, page.Body, "Routes applied.")
	require.Contains(t, page.Body, `id="route-tree"`)
	require.Contains(t, page.Body, "<strong>pay-hook</strong>")

	// Where would this alert go?
	page = alice.Get("/settings/routes?" + url.Values{"labels": {"alertname=CheckoutErrors\nseverity=critical"}, "team": {"payments"}}.Encode())
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, `<strong class="channel">pay-hook</strong>`)
	page = alice.Get("/settings/routes?" + url.Values{"labels": {"alertname=X"}, "team": {"web"}}.Encode())
	require.Contains(t, page.Body, "no channel")
	require.NotContains(t, page.Body, `<strong class="channel">`)

	// The API's validation, with the text as typed.
	bad := "route:\n  routes:\n    - receivers: [nope]\n      repeat_interval: 4 hours\n"
	page = ada.Post("/settings/routes", url.Values{"document": {bad}, "version": {"1"}})
	require.Equal(t, http.StatusBadRequest, page.Code)
	require.Contains(t, page.Body, "route.routes[0].receivers[0]")
	require.Contains(t, page.Body, "no channel named nope")
	require.Contains(t, page.Body, "4 hours")
	// A version applied since: a conflict, and the editor keeps the
	// version it was written against, so sending it again is refused too.
	page = ada.Post("/settings/routes", url.Values{"document": {payRoutes}, "version": {"0"}})
	require.Equal(t, http.StatusConflict, page.Code)
	require.Contains(t, page.Body, `name="version" value="0"`)

	// An operator: no editor, and a direct POST is refused.
	page = alice.Get("/settings/routes")
	require.NotContains(t, page.Body, `id="routes-apply"`)
	require.Equal(t, http.StatusForbidden, alice.Post("/settings/routes", url.Values{"document": {"route: {}\n"}, "version": {"1"}}).Code)
	cur, err = p.routes.GetRoutes(p.admin, &notifyv1.GetRoutesRequest{})
	require.NoError(t, err)
	require.EqualValues(t, 1, cur.GetCurrent().GetVersion(), "nothing applied")
}

const payPolicy = `name: payments
team: payments
priorities: [P1]
steps:
  - schedules: [payments]
  - delay: 10m
    users: [mei]
`

const paySchedule = `name: payments
team: payments
zone: Asia/Taipei
layers:
  - participants: [alice, ben]
    rotation_days: 7
    handoff: "09:00"
    start: "2026-01-05"
`

// TestConsolePeopleOnCall: an operator creates an escalation policy and
// a schedule through the console, puts someone on call with an override
// typed in their own time zone, and sees who is on call; the API has
// them as typed. Bad input shows the API's field errors; a viewer sees
// no buttons and a viewer's direct POSTs are refused with nothing
// changed.
func TestConsolePeopleOnCall(t *testing.T) {
	p := startPeople(t)
	alice := p.login(t, "alice")

	page := alice.Post("/settings/escalation", url.Values{"document": {payPolicy}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	require.Equal(t, "/settings/escalation/payments?done=done.policy_created", page.Header.Get("Location"))
	pol, err := p.policies.GetPolicy(p.admin, &monitorv1.GetPolicyRequest{Name: "payments"})
	require.NoError(t, err)
	require.Len(t, pol.GetPolicy().GetSteps(), 2)
	require.Equal(t, 10*time.Minute, pol.GetPolicy().GetSteps()[1].GetDelay().AsDuration())
	page = alice.Get("/settings/escalation/payments")
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "10m0s")
	require.Contains(t, page.Body, `<a href="/settings/oncall/payments">payments</a>`)
	require.Contains(t, alice.Get("/settings/escalation").Body, `id="policy-payments"`)

	// A step without a target: the API's field error, the text kept.
	page = alice.Post("/settings/escalation/payments", url.Values{"document": {"team: payments\nsteps:\n  - delay: 5m\n"}})
	require.Equal(t, http.StatusBadRequest, page.Code)
	require.Contains(t, page.Body, "policy.steps[0]")
	require.Contains(t, page.Body, "delay: 5m")

	page = alice.Post("/settings/oncall", url.Values{"document": {paySchedule}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	page = alice.Post("/settings/oncall", url.Values{"document": {strings.Replace(paySchedule, "name: payments", "name: payments-2", 1) + "    handoff: 9am\n"}})
	require.Equal(t, http.StatusBadRequest, page.Code, page.Body)

	// An override typed in Taipei time (the user's zone, as the page's
	// script tells the server): ben, from an hour ago for three hours.
	taipei, err := time.LoadLocation("Asia/Taipei")
	require.NoError(t, err)
	now := time.Now().In(taipei).Truncate(time.Minute)
	from, to := now.Add(-time.Hour), now.Add(2*time.Hour)
	form := url.Values{"who": {"ben"}, "from": {from.Format("2006-01-02T15:04")}, "to": {to.Format("2006-01-02T15:04")}, "csrf": {alice.Cookie("vigil_csrf")}}
	page = alice.Do(http.MethodPost, "/settings/oncall/payments/override", form, "Cookie", "vigil_tz=Asia%2FTaipei")
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	sc, err := p.oncall.GetSchedule(p.admin, &monitorv1.GetScheduleRequest{Name: "payments"})
	require.NoError(t, err)
	require.Len(t, sc.GetSchedule().GetOverrides(), 1)
	require.True(t, from.Equal(sc.GetSchedule().GetOverrides()[0].GetStart().AsTime()), "the override starts at the time typed, in the user's zone")
	require.True(t, to.Equal(sc.GetSchedule().GetOverrides()[0].GetEnd().AsTime()))
	who, err := p.oncall.WhoIsOnCall(p.admin, &monitorv1.WhoIsOnCallRequest{Schedule: "payments"})
	require.NoError(t, err)
	require.Equal(t, "ben", who.GetUser())

	page = alice.Do(http.MethodGet, "/settings/oncall", nil, "Cookie", "vigil_tz=Asia%2FTaipei")
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "<strong>ben</strong>")
	page = alice.Do(http.MethodGet, "/settings/oncall/payments", nil, "Cookie", "vigil_tz=Asia%2FTaipei")
	require.Contains(t, page.Body, to.Format("2006-01-02 15:04:05 MST"), "the override's end in the user's zone")
	require.Contains(t, page.Body, `id="add-override"`)
	// The schedule's editor round-trips: saved as shown, with a layer
	// changed, it keeps its override.
	doc := editorText(t, page.Body, "edit-schedule")
	require.Contains(t, doc, "who: ben")
	page = alice.Post("/settings/oncall/payments", url.Values{"document": {strings.Replace(doc, "rotation_days: 7", "rotation_days: 1", 1)}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	sc, err = p.oncall.GetSchedule(p.admin, &monitorv1.GetScheduleRequest{Name: "payments"})
	require.NoError(t, err)
	require.EqualValues(t, 1, sc.GetSchedule().GetLayers()[0].GetRotationDays())
	require.Len(t, sc.GetSchedule().GetOverrides(), 1)
	require.True(t, from.Equal(sc.GetSchedule().GetOverrides()[0].GetStart().AsTime()))
	// So does the policy's, its delays and priorities as people write them.
	doc = editorText(t, alice.Get("/settings/escalation/payments").Body, "edit-policy")
	require.Contains(t, doc, "delay: 10m0s")
	require.Contains(t, doc, "- P1")
	page = alice.Post("/settings/escalation/payments", url.Values{"document": {doc + "repeat: 2\n"}})
	require.Equal(t, http.StatusSeeOther, page.Code, page.Body)
	pol, err = p.policies.GetPolicy(p.admin, &monitorv1.GetPolicyRequest{Name: "payments"})
	require.NoError(t, err)
	require.EqualValues(t, 2, pol.GetPolicy().GetRepeat())
	require.Equal(t, 10*time.Minute, pol.GetPolicy().GetSteps()[1].GetDelay().AsDuration())

	// An override the API refuses (it ends before it starts).
	form.Set("to", from.Add(-time.Hour).Format("2006-01-02T15:04"))
	page = alice.Do(http.MethodPost, "/settings/oncall/payments/override", form, "Cookie", "vigil_tz=Asia%2FTaipei")
	require.Equal(t, http.StatusBadRequest, page.Code)
	require.Contains(t, page.Body, "override")

	// A viewer reads, sees no buttons, and is refused.
	vic := p.login(t, "vic")
	for path, shows := range map[string]string{
		"/settings/oncall/payments": "<strong>ben</strong>", "/settings/escalation/payments": "mei",
		"/settings/oncall": "<strong>ben</strong>", "/settings/escalation": `id="policy-payments"`,
	} {
		page = vic.Get(path)
		require.Equal(t, http.StatusOK, page.Code)
		require.Contains(t, page.Body, shows)
		require.NotContains(t, page.Body, `method="post" action="/settings/`, path)
	}
	vic.Lang = "zh-TW"
	require.Contains(t, vic.Get("/settings/oncall").Body, "<h1>值班表</h1>")
	vic.Lang = ""
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/oncall/payments/override", url.Values{"who": {"vic"}, "from": {from.Format("2006-01-02T15:04")}, "to": {to.Format("2006-01-02T15:04")}}).Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/escalation/payments/delete", nil).Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/oncall/payments/delete", nil).Code)
	sc, err = p.oncall.GetSchedule(p.admin, &monitorv1.GetScheduleRequest{Name: "payments"})
	require.NoError(t, err)
	require.Len(t, sc.GetSchedule().GetOverrides(), 1, "the viewer's override changed nothing")
	_, err = p.policies.GetPolicy(p.admin, &monitorv1.GetPolicyRequest{Name: "payments"})
	require.NoError(t, err, "the viewer's delete changed nothing")

	// The operator deletes both.
	require.Equal(t, http.StatusSeeOther, alice.Post("/settings/escalation/payments/delete", nil).Code)
	require.Equal(t, http.StatusSeeOther, alice.Post("/settings/oncall/payments/delete", nil).Code)
	_, err = p.oncall.GetSchedule(p.admin, &monitorv1.GetScheduleRequest{Name: "payments"})
	require.Equal(t, codes.NotFound, status.Code(err))
}

// editorText is the text of the document editor of form id on a page.
func editorText(t *testing.T, body, id string) string {
	t.Helper()
	m := regexp.MustCompile(`(?s)<form[^>]*id="` + id + `".*?<textarea[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
	require.NotNil(t, m, "no editor %s", id)
	return html.UnescapeString(m[1])
}

// TestConsolePeopleInBrowser: in a real Chromium, an operator creates a
// webhook channel with the form and tests it, creates a schedule and
// takes the on-call with the override form; an admin applies routes and
// asks where an alert goes. No page shows the channel's secrets, none
// runs inline script, and the on-call page fits a phone. Screenshots
// for docs/console (browser.ArtefactDir).
func TestConsolePeopleInBrowser(t *testing.T) {
	p := startPeople(t)
	text := func(tab *browser.Tab, sel string) string {
		return strings.TrimSpace(browser.Get(tab, chromedp.Text(chromedp.CSS(sel))))
	}
	login := func(tab *browser.Tab, name string) {
		tab.Do(30*time.Second,
			chromedp.Navigate(p.base+"/login"),
			chromedp.WaitVisible(chromedp.CSS(`input[name=username]`)),
			chromedp.SendKeys(chromedp.CSS(`input[name=username]`), name),
			chromedp.SendKeys(chromedp.CSS(`input[name=password]`), password(name)),
			chromedp.Submit(chromedp.CSS(`form[action="/login"]`)),
			chromedp.WaitVisible(chromedp.CSS(`table#incidents`)),
		)
	}
	noSecret := func(tab *browser.Tab) {
		html := browser.Get(tab, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		require.NotContains(t, html, peopleSecret)
		require.NotContains(t, html, peoplePathToken)
		require.Zero(t, browser.Get(tab, chromedp.Evaluate[int](`document.querySelectorAll("script:not([src]), [style]").length`)))
	}

	alice := browser.New(t)
	login(alice, "alice")
	alice.Do(30*time.Second,
		chromedp.Navigate(p.base+"/settings/channels"),
		chromedp.WaitVisible(chromedp.CSS(`#new-channel summary`)),
		chromedp.Click(chromedp.CSS(`#new-channel summary`)),
		chromedp.SendKeys(chromedp.CSS(`#new-channel input[name=name]`), "pay-hook"),
		chromedp.SetValue(chromedp.CSS(`#new-channel select[name=kind]`), "webhook"),
		chromedp.SendKeys(chromedp.CSS(`#new-channel input[name=target]`), p.hookURL()),
		chromedp.SendKeys(chromedp.CSS(`#new-channel input[name=credential]`), peopleSecret),
		chromedp.SendKeys(chromedp.CSS(`#new-channel input[name=team]`), "payments"),
		chromedp.SendKeys(chromedp.CSS(`#new-channel input[name=time_zone]`), "Asia/Taipei"),
		chromedp.Submit(chromedp.CSS(`#new-channel form`)),
		chromedp.WaitVisible(chromedp.CSS(`#test-channel`)),
	)
	require.Equal(t, "Channel created.", text(alice, "p.done"))
	noSecret(alice)
	alice.Do(30*time.Second, chromedp.Click(chromedp.CSS(`#test-channel`)), chromedp.WaitVisible(chromedp.CSS(`#test-result`)))
	require.Contains(t, text(alice, "#test-result"), "delivered")
	noSecret(alice)
	channelShot := alice.Screenshot("people-channel")
	_, err := p.channels.GetChannel(p.admin, &notifyv1.GetChannelRequest{Name: "pay-hook"})
	require.NoError(t, err)

	// A schedule from the editor's sample, then "I take it": the
	// override form's defaults are now for 12 hours, alice.
	alice.Do(30*time.Second,
		chromedp.Navigate(p.base+"/settings/oncall"),
		chromedp.WaitVisible(chromedp.CSS(`#new-schedule textarea`)),
		chromedp.SetValue(chromedp.CSS(`#new-schedule textarea`), paySchedule),
		chromedp.Submit(chromedp.CSS(`#new-schedule`)),
		chromedp.WaitVisible(chromedp.CSS(`#add-override`)),
		chromedp.SetValue(chromedp.CSS(`#add-override input[name=who]`), "ben"),
		chromedp.Submit(chromedp.CSS(`#add-override`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	)
	require.Equal(t, "Override added.", text(alice, "p.done"))
	require.Contains(t, text(alice, "#oncall-now"), "ben")
	scheduleShot := alice.Screenshot("people-schedule")
	alice.Do(30*time.Second, chromedp.Navigate(p.base+"/settings/oncall"), chromedp.WaitVisible(chromedp.CSS(`#schedule-payments`)))
	require.Equal(t, "ben", text(alice, "#schedule-payments .oncall-now"))
	oncallShot := alice.Screenshot("people-oncall")
	who, err := p.oncall.WhoIsOnCall(p.admin, &monitorv1.WhoIsOnCallRequest{Schedule: "payments"})
	require.NoError(t, err)
	require.Equal(t, "ben", who.GetUser())

	// A policy whose first step asks the schedule.
	alice.Do(30*time.Second,
		chromedp.Navigate(p.base+"/settings/escalation"),
		chromedp.WaitVisible(chromedp.CSS(`#new-policy textarea`)),
		chromedp.SetValue(chromedp.CSS(`#new-policy textarea`), payPolicy),
		chromedp.Submit(chromedp.CSS(`#new-policy`)),
		chromedp.WaitVisible(chromedp.CSS(`table#steps`)),
	)
	require.Equal(t, "Policy created.", text(alice, "p.done"))
	policyShot := alice.Screenshot("people-policy")

	// On a phone: nothing wider than the screen.
	alice.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(p.base+"/settings/oncall/payments"),
		chromedp.WaitVisible(chromedp.CSS(`#add-override`)),
	)
	require.True(t, browser.Get(alice, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	phoneShot := alice.Screenshot("people-oncall-phone")

	// The admin applies routes and asks where an alert would go.
	ada := browser.New(t)
	login(ada, "ada")
	ada.Do(30*time.Second,
		chromedp.Navigate(p.base+"/settings/routes"),
		chromedp.WaitVisible(chromedp.CSS(`#routes-apply textarea`)),
		chromedp.SetValue(chromedp.CSS(`#routes-apply textarea`), payRoutes),
		chromedp.Submit(chromedp.CSS(`#routes-apply`)),
		chromedp.WaitVisible(chromedp.CSS(`#route-tree`)),
		chromedp.SendKeys(chromedp.CSS(`#routes-test textarea`), "alertname=CheckoutErrors"),
		chromedp.SendKeys(chromedp.CSS(`#routes-test input[name=team]`), "payments"),
		chromedp.Submit(chromedp.CSS(`#routes-test`)),
		chromedp.WaitVisible(chromedp.CSS(`#routes-result`)),
	)
	require.Equal(t, "pay-hook", text(ada, "#routes-result strong.channel"))
	noSecret(ada)
	routesShot := ada.Screenshot("people-routes")
	ada.Do(30*time.Second, chromedp.Navigate(p.base+"/settings/channels"), chromedp.WaitVisible(chromedp.CSS(`#channel-pay-hook`)))
	noSecret(ada)

	for _, s := range []string{channelShot, scheduleShot, oncallShot, policyShot, phoneShot, routesShot} {
		st, err := os.Stat(s)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}
