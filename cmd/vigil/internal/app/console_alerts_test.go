package app_test

import (
	"fmt"
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
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
)

// alertsVigil is a running Vigil for the console's alerts part: alerts
// no app claims belong to the default team, payments; its users are an
// admin (ada), an operator of payments (alice), an operator of web
// (olga) and a viewer of payments (vic).
type alertsVigil struct {
	*consoleVigil
	alerts   gatewayv1.AlertServiceClient
	monitor  monitorv1.IncidentServiceClient
	silences monitorv1.SilenceServiceClient
	// inhibitions reads the rules as the admin.
	inhibitions monitorv1.InhibitionServiceClient
}

func startAlertsVigil(t *testing.T, with ...func(*app.Options)) *alertsVigil {
	t.Helper()
	c := startConsole(t, []*gatewayv1.User{
		{Name: "ada", Role: gatewayv1.Role_ROLE_ADMIN},
		{Name: "alice", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
		{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"web"}},
		{Name: "vic", Role: gatewayv1.Role_ROLE_VIEWER, Teams: []string{"payments"}},
	}, append([]func(*app.Options){func(o *app.Options) { o.Gateway.DefaultTeam = "payments" }}, with...)...)
	return &alertsVigil{
		consoleVigil: c, alerts: gatewayv1.NewAlertServiceClient(c.conn),
		monitor: monitorv1.NewIncidentServiceClient(c.conn), silences: monitorv1.NewSilenceServiceClient(c.conn),
		inhibitions: monitorv1.NewInhibitionServiceClient(c.conn),
	}
}

// fire sends alerts with these labels, firing now.
func (v *alertsVigil) fire(t *testing.T, labels ...map[string]string) {
	t.Helper()
	req := &gatewayv1.IngestAlertsRequest{}
	for _, l := range labels {
		req.Alerts = append(req.Alerts, &typesv1.Alert{Labels: l, StartsAt: timestamppb.Now()})
	}
	_, err := v.alerts.IngestAlerts(v.admin, req)
	require.NoError(t, err)
}

// alert is the stored alert whose labels include pod, once monitor has it.
func (v *alertsVigil) alert(t *testing.T, pod string) *typesv1.IncidentAlert {
	t.Helper()
	var got *typesv1.IncidentAlert
	require.Eventually(t, func() bool {
		res, err := v.monitor.ListAlerts(v.admin, &monitorv1.ListAlertsRequest{Filter: []string{`pod="` + pod + `"`}})
		require.NoError(t, err)
		if len(res.GetAlerts()) != 1 {
			return false
		}
		got = res.GetAlerts()[0]
		return true
	}, 30*time.Second, 50*time.Millisecond, "monitor never stored the alert of %s", pod)
	return got
}

// silenceCount is how many silences there are, in any state.
func (v *alertsVigil) silenceCount(t *testing.T) int {
	t.Helper()
	res, err := v.silences.ListSilences(v.admin, &monitorv1.ListSilencesRequest{PageSize: 500})
	require.NoError(t, err)
	return len(res.GetSilences())
}

var (
	alertRowRE   = regexp.MustCompile(`<tr class="alert-([a-z]+)">`)
	silenceIDRE  = regexp.MustCompile(`^/silences/([0-9a-f-]{36})\?done=done\.silence_created$`)
	nextAlertsRE = regexp.MustCompile(`<a href="(/alerts\?[^"]+)" rel="next">`)
)

// alertRows are the states of the rows of a search's page.
func alertRows(p browser.Page) []string {
	var out []string
	for _, m := range alertRowRE.FindAllStringSubmatch(p.Body, -1) {
		out = append(out, m[1])
	}
	return out
}

func crash(pod, severity string) map[string]string {
	return map[string]string{"alertname": "KubePodCrashLooping", "namespace": "shop", "severity": severity, "pod": pod}
}

func checkout(pod string) map[string]string {
	return map[string]string{"alertname": "CheckoutErrors", "namespace": "shop", "severity": "critical", "pod": pod}
}

// The alert search takes the matchers of `vigil alerts list` and pages on
// the server; a bad matcher is answered with the API's field error and
// the form as typed; who may not search every alert is told to search
// an incident's, and may.
func TestConsoleAlertsSearch(t *testing.T) {
	v := startAlertsVigil(t)
	var alerts []map[string]string
	for i := range 55 {
		alerts = append(alerts, crash(fmt.Sprintf("web-%02d", i), "critical"))
	}
	for i := range 3 {
		alerts = append(alerts, crash(fmt.Sprintf("batch-%d", i), "warning"))
	}
	alerts = append(alerts, checkout("checkout-1"))
	v.fire(t, alerts...)
	v.alert(t, "checkout-1")
	v.alert(t, "web-54")

	ada := v.login(t, "ada")
	search := "/alerts?" + url.Values{"filter": {`alertname=~"Kube.*", severity="critical"`}, "state": {"firing"}, "since": {"1h"}}.Encode()
	first := ada.Get(search)
	require.Equal(t, http.StatusOK, first.Code, first.Body)
	require.Len(t, alertRows(first), 50)
	require.NotContains(t, first.Body, `severity=&#34;warning&#34;`)
	require.NotContains(t, first.Body, "CheckoutErrors")
	require.Contains(t, first.Body, `value="alertname=~&#34;Kube.*&#34;, severity=&#34;critical&#34;"`, "the form keeps the search")
	require.Regexp(t, `href="/incidents/[0-9a-f-]{36}"`, first.Body, "each alert links to its incident")
	next := nextAlertsRE.FindStringSubmatch(first.Body)
	require.NotNil(t, next, "a second page")
	second := ada.Get(html.UnescapeString(next[1]))
	require.Equal(t, http.StatusOK, second.Code)
	require.Len(t, alertRows(second), 5)
	require.NotRegexp(t, nextAlertsRE, second.Body, "the last page")
	for _, p := range []browser.Page{first, second} {
		require.Equal(t, strings.Count(p.Body, `<tr class="alert-`), strings.Count(p.Body, `severity=&#34;critical&#34;</code>`))
	}

	// A matcher the API cannot parse: its field error, the form as typed.
	bad := ada.Get("/alerts?" + url.Values{"filter": {`alertname=~"(unclosed"`}}.Encode())
	require.Equal(t, http.StatusBadRequest, bad.Code)
	require.Contains(t, bad.Body, "filter[0]")
	require.Contains(t, bad.Body, `value="alertname=~&#34;(unclosed&#34;"`)
	require.Empty(t, alertRows(bad))
	// A time the console cannot read is refused the same way.
	bad = ada.Get("/alerts?since=yesterday-ish")
	require.Equal(t, http.StatusBadRequest, bad.Code)
	require.Contains(t, bad.Body, "since: want a time")
	require.Contains(t, bad.Body, `value="yesterday-ish"`)

	// Alice reaches payments, not every team: the API refuses to search
	// every alert, offers her incidents' alerts instead, and searches
	// those.
	alice := v.login(t, "alice")
	inc := v.alert(t, "checkout-1").GetIncidentId()
	p := alice.Get("/alerts?" + url.Values{"filter": {`pod="checkout-1"`}}.Encode())
	require.Equal(t, http.StatusForbidden, p.Code)
	require.Contains(t, p.Body, "enter one of your incidents")
	require.Empty(t, alertRows(p))
	within := "/alerts?" + url.Values{"filter": {`pod="checkout-1"`}, "incident": {inc}}.Encode()
	require.Contains(t, p.Body, `<a href="`+html.EscapeString(within)+`">`)
	p = alice.Get(within)
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Equal(t, []string{"firing"}, alertRows(p))
	require.Contains(t, p.Body, `pod=&#34;checkout-1&#34;`)
	require.Contains(t, p.Body, `href="/incidents/`+inc+`"`)

	// Silence similar: the form with the alert's labels as matchers.
	similar := regexp.MustCompile(`<a class="silence-new" href="([^"]+)">`).FindStringSubmatch(p.Body)
	require.NotNil(t, similar)
	p = alice.Get(html.UnescapeString(similar[1]))
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, ">alertname=&#34;CheckoutErrors&#34;\nnamespace=&#34;shop&#34;\npod=&#34;checkout-1&#34;\nseverity=&#34;critical&#34;</textarea>")
}

// A silence made from an incident's page mutes the incident's group: the
// group's next alert is shown silenced, linked to the silence, which
// says who made it and why; expired, the group's alerts reach the
// incident again. A viewer's direct POST and another team's operator
// are refused, and nothing changes.
func TestConsoleAlertsSilenceFromIncident(t *testing.T) {
	v := startAlertsVigil(t)
	v.fire(t, checkout("checkout-1"))
	inc := v.alert(t, "checkout-1").GetIncidentId()
	require.NotEmpty(t, inc)

	alice := v.login(t, "alice")
	form := alice.Get("/silences/new?incident=" + inc)
	require.Equal(t, http.StatusOK, form.Code, form.Body)
	require.Contains(t, form.Body, "alertname=&#34;CheckoutErrors&#34;\nnamespace=&#34;shop&#34;</textarea>", "the group's labels as matchers")
	require.Contains(t, form.Body, `href="/incidents/`+inc+`"`)

	made := alice.Post("/silences", url.Values{
		"matchers": {"alertname=\"CheckoutErrors\"\r\nnamespace=\"shop\"\r\n"}, "duration": {"2h"}, "comment": {"rolling back the checkout release"},
	})
	require.Equal(t, http.StatusSeeOther, made.Code, made.Body)
	m := silenceIDRE.FindStringSubmatch(made.Header.Get("Location"))
	require.NotNil(t, m, made.Header.Get("Location"))
	id := m[1]
	page := alice.Get(made.Header.Get("Location"))
	require.Equal(t, http.StatusOK, page.Code)
	require.Contains(t, page.Body, "Silence created.")
	require.Contains(t, page.Body, `<dd class="created-by">alice · `)
	require.Contains(t, page.Body, `<dd class="comment">rolling back the checkout release</dd>`)
	require.Contains(t, page.Body, `action="/silences/`+id+`/expire"`)
	require.Contains(t, page.Body, `data-confirm="Expire this silence now?`)
	list := alice.Get("/silences")
	require.Contains(t, list.Body, `id="silence-`+id+`"`)
	require.Contains(t, list.Body, `href="/silences/new"`)

	// The group's next alert is muted: silenced, in no incident.
	v.fire(t, checkout("checkout-2"))
	muted := v.alert(t, "checkout-2")
	require.Equal(t, id, muted.GetSilencedBy())
	require.Empty(t, muted.GetIncidentId())
	ada := v.login(t, "ada")
	p := ada.Get("/alerts?" + url.Values{"filter": {`alertname="CheckoutErrors"`}, "state": {"silenced"}}.Encode())
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Equal(t, []string{"silenced"}, alertRows(p))
	require.Contains(t, p.Body, `pod=&#34;checkout-2&#34;`)
	require.Contains(t, p.Body, `href="/silences/`+id+`"`)

	// Vic, a viewer of payments, sees it but no button; his direct POSTs
	// are refused and change nothing.
	vic := v.login(t, "vic")
	p = vic.Get("/silences/" + id)
	require.Equal(t, http.StatusOK, p.Code)
	require.NotContains(t, p.Body, "/expire")
	require.NotContains(t, p.Body, "Alerts it muted", "a search only admins may make")
	require.NotContains(t, vic.Get("/silences").Body, `href="/silences/new"`)
	p = vic.Get("/alerts?incident=" + inc)
	require.Equal(t, http.StatusOK, p.Code)
	require.Equal(t, []string{"firing"}, alertRows(p))
	require.NotContains(t, p.Body, "silence-new")
	require.Equal(t, http.StatusForbidden, vic.Get("/silences/new?incident="+inc).Code)
	before := v.silenceCount(t)
	p = vic.Post("/silences", url.Values{"matchers": {`alertname="CheckoutErrors"` + "\n" + `namespace="shop"`}, "duration": {"1h"}, "comment": {"vic"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/silences/"+id+"/expire", nil).Code)
	require.Equal(t, before, v.silenceCount(t))
	requireSilenceState(t, v, id, monitorv1.SilenceState_SILENCE_STATE_ACTIVE)

	// Olga, an operator of web, may not silence payments' namespace nor
	// expire payments' silence.
	olga := v.login(t, "olga")
	require.NotContains(t, olga.Get("/silences/"+id).Body, "/expire")
	require.Equal(t, http.StatusForbidden, olga.Get("/silences/new?incident="+inc).Code, "payments' incident is not hers to read")
	p = olga.Post("/silences", url.Values{"matchers": {`alertname="CheckoutErrors"` + "\n" + `namespace="shop"`}, "duration": {"1h"}, "comment": {"olga"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	require.Equal(t, http.StatusForbidden, olga.Post("/silences/"+id+"/expire", nil).Code)
	require.Equal(t, before, v.silenceCount(t))
	requireSilenceState(t, v, id, monitorv1.SilenceState_SILENCE_STATE_ACTIVE)

	// A form the API refuses shows its field error and creates nothing.
	p = alice.Post("/silences", url.Values{"matchers": {`namespace="shop"`}, "duration": {"soon"}, "comment": {"x"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "duration: want a positive duration")
	// The form again, as typed: nothing is lost.
	require.Contains(t, p.Body, `<form method="post" action="/silences" class="form silence-form">`)
	require.Contains(t, p.Body, `>namespace=&#34;shop&#34;</textarea>`)
	require.Contains(t, p.Body, `name="duration" value="soon"`)
	require.Contains(t, p.Body, `name="comment" value="x"`)
	p = alice.Post("/silences", url.Values{
		"matchers": {`namespace="shop"`}, "duration": {"30d"}, "comment": {"x"},
		"recurring": {"on"}, "day": {"sat"}, "window_start": {"25:00"}, "window_end": {"02:00"}, "time_zone": {"Europe/Berlin"},
	})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "schedule.windows[0].start: &#34;25:00&#34; is not a time of day")
	require.Contains(t, p.Body, `name="recurring" value="on" checked`)
	require.Contains(t, p.Body, `name="day" value="sat" checked`)
	require.NotContains(t, p.Body, `name="day" value="sun" checked`)
	require.Contains(t, p.Body, `name="window_start" value="25:00"`)
	require.Contains(t, p.Body, `name="time_zone" value="Europe/Berlin"`)
	require.Equal(t, before, v.silenceCount(t))

	// A weekly maintenance window in a time zone.
	p = alice.Post("/silences", url.Values{
		"matchers": {`namespace="shop"` + "\n" + `alertname="Backup"`}, "duration": {"30d"}, "comment": {"nightly backup"},
		"recurring": {"on"}, "day": {"sat", "sun"}, "window_start": {"22:00"}, "window_end": {"02:00"}, "time_zone": {"Europe/Berlin"},
	})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	p = alice.Get(p.Header.Get("Location"))
	require.Contains(t, p.Body, "Europe/Berlin: sat,sun 22:00–02:00")

	// A silence for later, its times typed in alice's zone (the page's
	// script keeps it in the vigil_tz cookie): pending until it starts.
	p = alice.Do(http.MethodPost, "/silences", url.Values{
		"csrf": {alice.Cookie("vigil_csrf")}, "matchers": {`namespace="shop"`}, "comment": {"release window"},
		"starts_at": {"2030-01-02T09:00"}, "ends_at": {"2030-01-02T11:00"}, "duration": {"2h"},
	}, "Cookie", "vigil_tz=Asia%2FTaipei")
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	later, err := v.silences.GetSilence(v.admin, &monitorv1.GetSilenceRequest{Id: silenceIDRE.FindStringSubmatch(p.Header.Get("Location"))[1]})
	require.NoError(t, err)
	require.Equal(t, time.Date(2030, 1, 2, 1, 0, 0, 0, time.UTC), later.GetSilence().GetStartsAt().AsTime())
	require.Equal(t, time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC), later.GetSilence().GetEndsAt().AsTime())
	require.Contains(t, alice.Get("/silences?state=pending").Body, `id="silence-`+later.GetSilence().GetId()+`"`)

	// In Traditional Chinese.
	vic.Lang = "zh-TW"
	p = vic.Get("/silences/" + id)
	require.Contains(t, p.Body, "<h1 id=\"silence-"+id+"\">靜默 <span class=\"badge ss-active\">生效中</span></h1>")

	// Alice expires hers: it says who and when, and the group's next
	// alert reaches the incident again.
	p = alice.Post("/silences/"+id+"/expire", nil)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/silences/"+id+"?done=done.silence_expired", p.Header.Get("Location"))
	requireSilenceState(t, v, id, monitorv1.SilenceState_SILENCE_STATE_EXPIRED)
	p = alice.Get("/silences/" + id)
	require.Contains(t, p.Body, `<dd class="expired-by">`)
	require.NotContains(t, p.Body, "/expire")
	require.NotContains(t, alice.Get("/silences").Body, `id="silence-`+id+`"`)
	require.Contains(t, alice.Get("/silences?state=expired").Body, `id="silence-`+id+`"`)
	v.fire(t, checkout("checkout-3"))
	require.Equal(t, inc, v.alert(t, "checkout-3").GetIncidentId())
}

func requireSilenceState(t *testing.T, v *alertsVigil, id string, want monitorv1.SilenceState) {
	t.Helper()
	res, err := v.silences.GetSilence(v.admin, &monitorv1.GetSilenceRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, want, res.GetSilence().GetState())
}

// The inhibition rules: everyone may read them; an admin applies edited
// YAML, a rule the API refuses is named with its field, and an edit of
// an old version is a conflict; an operator's direct POST is refused.
// Nothing refused changes the rules.
func TestConsoleAlertsInhibitions(t *testing.T) {
	v := startAlertsVigil(t)
	version := func() int64 {
		res, err := v.inhibitions.GetInhibitionRules(v.admin, &monitorv1.GetInhibitionRulesRequest{})
		require.NoError(t, err)
		return res.GetRules().GetVersion()
	}

	ada := v.login(t, "ada")
	p := ada.Get("/settings/inhibitions")
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Contains(t, p.Body, "No rules applied yet.")
	require.Contains(t, p.Body, `<input type="hidden" name="version" value="0">`)
	require.Contains(t, p.Body, "inhibit_rules: []\n</textarea>")

	for yaml, want := range map[string]string{
		"inhibit_rules:\n- source_matchers: ['severity=~\"(\"']\n  target_matchers: ['severity=\"warning\"']\n": "rules[0].source_matchers[0]",
		"inhibit_rules:\n- source_matchers: ['severity=\"critical\"']\n  equals: [node]\n":                      "unknown field",
		"rules: []\n": "no inhibit_rules",
	} {
		p = ada.Post("/settings/inhibitions", url.Values{"version": {"0"}, "rules": {yaml}})
		require.Equal(t, http.StatusBadRequest, p.Code, yaml)
		require.Contains(t, p.Body, want, yaml)
		// The editor again, with the text as typed.
		require.Contains(t, p.Body, ">"+html.EscapeString(yaml)+"</textarea>", yaml)
	}
	require.Zero(t, version())

	good := "inhibit_rules:\n- source_matchers: ['alertname=\"NodeDown\"']\n  target_matchers: ['severity=\"warning\"']\n  equal: [node]\n"
	p = ada.Post("/settings/inhibitions", url.Values{"version": {"0"}, "rules": {good}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/settings/inhibitions?done=done.inhibitions_applied", p.Header.Get("Location"))
	require.Equal(t, int64(1), version())
	p = ada.Get(p.Header.Get("Location"))
	require.Contains(t, p.Body, "Inhibition rules applied.")
	require.Contains(t, p.Body, "<code>alertname=&#34;NodeDown&#34;</code>")
	require.Contains(t, p.Body, "Version 1 · ada")

	// An edit of version 0, applied after version 1: a conflict.
	p = ada.Post("/settings/inhibitions", url.Values{"version": {"0"}, "rules": {"inhibit_rules: []\n"}})
	require.Equal(t, http.StatusConflict, p.Code)
	require.Contains(t, p.Body, `<input type="hidden" name="version" value="0">`)
	require.Contains(t, p.Body, ">inhibit_rules: []\n</textarea>")
	require.Equal(t, int64(1), version())

	// Alice, an operator, reads the rules but has no editor, and her
	// direct POST is refused.
	alice := v.login(t, "alice")
	p = alice.Get("/settings/inhibitions")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "<code>alertname=&#34;NodeDown&#34;</code>")
	require.NotContains(t, p.Body, `action="/settings/inhibitions"`)
	p = alice.Post("/settings/inhibitions", url.Values{"version": {"1"}, "rules": {"inhibit_rules: []\n"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	require.Equal(t, int64(1), version())
}

// TestConsoleAlertsInBrowser drives the alerts part in headless Chromium
// against a running Vigil: an admin searches alerts with matchers,
// silences an incident's group from the form the incident's Silence
// button opens, finds the group's next alert silenced, and expires the
// silence after confirming. Screenshots: alerts-search, alerts-silence-new,
// alerts-silence, alerts-silenced, alerts-phone.
func TestConsoleAlertsInBrowser(t *testing.T) {
	// Grouped by alertname alone: the form adds the incident's namespace,
	// which an operator's silence needs.
	v := startAlertsVigil(t, func(o *app.Options) { o.Monitor.GroupBy = []string{"alertname"} })
	v.fire(t, checkout("checkout-1"), crash("web-1", "critical"), crash("web-2", "warning"))
	inc := v.alert(t, "checkout-1").GetIncidentId()
	v.alert(t, "web-2")
	text := textOf

	ada := browser.New(t)
	ada.Do(30*time.Second, signIn(v.base+"/alerts", "ada", `table#alerts`))
	require.Equal(t, "Alerts", text(ada, "h1"))
	count := func() int {
		return browser.Get(ada, chromedp.Evaluate[int](`document.querySelectorAll("#alerts tbody tr[class^=alert-]").length`))
	}
	require.Equal(t, 3, count())

	// Search: the critical ones of Kubernetes.
	ada.Do(30*time.Second,
		chromedp.SetValue(chromedp.CSS(`input[name=filter]`), `alertname=~"Kube.*", severity="critical"`),
		chromedp.Click(chromedp.CSS(`form.search button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`input[name=filter][value*="critical"]`)),
	)
	require.Equal(t, 1, count())
	require.Contains(t, text(ada, `#alerts tbody`), `pod="web-1"`)
	require.NotContains(t, text(ada, `#alerts tbody`), "CheckoutErrors")
	shots := []string{ada.Screenshot("alerts-search")}

	// A matcher the API refuses: its field error, the search as typed.
	ada.Do(30*time.Second,
		chromedp.SetValue(chromedp.CSS(`input[name=filter]`), `severity=~"(oops"`),
		chromedp.Click(chromedp.CSS(`form.search button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.detail`)),
	)
	require.Contains(t, text(ada, "p.detail"), "filter[0]")
	require.Equal(t, `severity=~"(oops"`, browser.Get(ada, chromedp.Value(chromedp.CSS(`input[name=filter]`))))

	// The incident's Silence button opens the form with its group and
	// its namespace.
	ada.Do(30*time.Second,
		chromedp.Navigate(v.base+"/silences/new?incident="+inc),
		chromedp.WaitVisible(chromedp.CSS(`form.silence-form`)),
	)
	require.Equal(t, "alertname=\"CheckoutErrors\"\nnamespace=\"shop\"", browser.Get(ada, chromedp.Value(chromedp.CSS(`textarea[name=matchers]`))))
	ada.Do(30*time.Second, chromedp.SendKeys(chromedp.CSS(`input[name=comment]`), "rolling back checkout"))
	shots = append(shots, ada.Screenshot("alerts-silence-new"))
	ada.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`form.silence-form button[type=submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	)
	require.Equal(t, "Silence created.", text(ada, "p.done"))
	require.True(t, strings.HasPrefix(text(ada, "dd.created-by"), "ada · "), text(ada, "dd.created-by"))
	require.Equal(t, "rolling back checkout", text(ada, "dd.comment"))
	shots = append(shots, ada.Screenshot("alerts-silence"))
	list, err := v.silences.ListSilences(v.admin, &monitorv1.ListSilencesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSilences(), 1)
	id := list.GetSilences()[0].GetId()

	// The group's next alert is silenced, and says by what.
	v.fire(t, checkout("checkout-2"))
	require.Equal(t, id, v.alert(t, "checkout-2").GetSilencedBy())
	ada.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`a[href^="/alerts?"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#alerts tr.alert-silenced a[href="/silences/`+id+`"]`)),
	)
	require.Contains(t, text(ada, `#alerts tr.alert-silenced`), `pod="checkout-2"`)
	shots = append(shots, ada.Screenshot("alerts-silenced"))

	// Expire, after the question console.js asks.
	ada.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`a[href="/silences/`+id+`"]`)),
		chromedp.WaitVisible(chromedp.CSS(`form[action$="/expire"]`)),
	)
	asked := make(chan string, 1)
	ada.Do(30*time.Second,
		answerEachDialog(true, asked),
		chromedp.Click(chromedp.CSS(`form[action$="/expire"] button`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	)
	require.Contains(t, <-asked, "Expire this silence now?")
	require.Equal(t, "Silence expired.", text(ada, "p.done"))
	require.Contains(t, text(ada, "dd.expired-by"), "ada")
	requireSilenceState(t, v, id, monitorv1.SilenceState_SILENCE_STATE_EXPIRED)

	// On a phone: the search's rows are cards, nothing of the part wider
	// than the screen.
	ada.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(v.base+"/alerts?state=silenced"),
		chromedp.WaitVisible(chromedp.CSS(`#alerts tr.alert-silenced`)),
	)
	require.Equal(t, "none", browser.Get(ada, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#alerts thead")).display`)))
	require.True(t, browser.Get(ada, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	shots = append(shots, ada.Screenshot("alerts-phone"))
	for path, sel := range map[string]string{"/silences?state=all": `#silences tr[id^="silence-"]`, "/silences/new": `form.silence-form`, "/silences/" + id: `dl.facts`} {
		ada.Do(30*time.Second, chromedp.Navigate(v.base+path), chromedp.WaitVisible(chromedp.CSS(sel)))
		require.True(t, browser.Get(ada, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling on %s", path)
	}
	for _, p := range shots {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}
