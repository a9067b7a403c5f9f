package app_test

import (
	"bytes"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/chat/webhook"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
)

// guardVigil is a running Vigil with sources (an encryption key) and the
// users of the guard tests: ada (admin), vic (viewer) and olly (operator
// of payments), each logged in to the console over HTTP.
type guardVigil struct {
	*consoleVigil
	repair repairv1.RepairServiceClient
	src    gatewayv1.SourceServiceClient
	esc    monitorv1.EscalationServiceClient
}

func startGuardVigil(t *testing.T) *guardVigil {
	t.Helper()
	c := startConsole(t, []*gatewayv1.User{
		{Name: "ada", Role: gatewayv1.Role_ROLE_ADMIN},
		{Name: "vic", Role: gatewayv1.Role_ROLE_VIEWER, Teams: []string{"payments"}},
		{Name: "olly", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
	}, func(o *app.Options) { o.Gateway.EncryptionKey = testKey() })
	return &guardVigil{
		consoleVigil: c,
		repair:       repairv1.NewRepairServiceClient(c.conn), src: gatewayv1.NewSourceServiceClient(c.conn),
		esc: monitorv1.NewEscalationServiceClient(c.conn),
	}
}

func (g *guardVigil) guardrails(t *testing.T, scope string) *repairv1.GetGuardrailsResponse {
	t.Helper()
	res, err := g.repair.GetGuardrails(g.admin, &repairv1.GetGuardrailsRequest{Scope: scope})
	require.NoError(t, err)
	return res
}

// TestConsoleGuardGuardrails: an admin changes guardrails of the global
// and an app scope and flips the kill switch through the console, and
// the API says so; the banner shows on every page while the switch is
// on; bad input shows the API's field error and changes nothing; a
// viewer sees no controls, and its direct POSTs are refused and change
// nothing.
func TestConsoleGuardGuardrails(t *testing.T) {
	g := startGuardVigil(t)
	ada, vic := g.login(t, "ada"), g.login(t, "vic")

	p := ada.Get("/guardrails")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, `action="/guardrails/kill-switch" data-confirm="Stop ALL automatic repairs?`)
	require.Contains(t, p.Body, `name="max_auto_per_hour"`, "the global scope shows its own fields")

	// Global: two fields set; the others are not sent, so they stay unset.
	p = ada.Post("/guardrails", url.Values{"scope": {"global"}, "min_confidence": {"0.9"}, "cooldown": {"15m"}, "max_memory_bytes": {"2Gi"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "/guardrails?done=done.guard.saved&scope=global", p.Header.Get("Location"))
	set := g.guardrails(t, "global").GetSet()
	require.InDelta(t, 0.9, set.GetMinConfidence(), 1e-9)
	require.Equal(t, 15*time.Minute, set.GetCooldown().AsDuration())
	require.Equal(t, int64(2<<30), set.GetMaxMemoryBytes())
	require.Nil(t, set.MaxAutoPerHour)
	require.Contains(t, ada.Get("/guardrails?done=done.guard.saved").Body, "Guardrails saved.")

	// An app's scope: its own fields only; the effective values merge.
	p = ada.Post("/guardrails", url.Values{"scope": {"app/shop"}, "auto": {"true"}, "deny": {"DELETE_POD", "SCALE_DEPLOYMENT"}, "max_pods_affected": {"1"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	app := g.guardrails(t, "app/shop")
	require.True(t, app.GetSet().GetAuto())
	require.Equal(t, int32(1), app.GetSet().GetMaxPodsAffected())
	require.ElementsMatch(t, []typesv1.RepairAction{typesv1.RepairAction_REPAIR_ACTION_DELETE_POD, typesv1.RepairAction_REPAIR_ACTION_SCALE_DEPLOYMENT}, app.GetSet().GetDeny())
	require.InDelta(t, 0.9, app.GetEffective().GetMinConfidence(), 1e-9, "inherited from global")
	p = ada.Get("/guardrails?scope=app/shop")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, `value="DELETE_POD" checked`)
	require.NotContains(t, p.Body, `name="max_auto_per_hour"`, "global-only fields are not offered for an app")

	// Emptying a field clears it: it inherits again.
	p = ada.Post("/guardrails", url.Values{"scope": {"app/shop"}, "auto": {"true"}, "deny": {"DELETE_POD", "SCALE_DEPLOYMENT"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Nil(t, g.guardrails(t, "app/shop").GetSet().MaxPodsAffected)

	// Bad input: the API's field error, and nothing changes (cooldown
	// was valid, but the request is refused whole).
	before := g.guardrails(t, "global").GetSet()
	p = ada.Post("/guardrails", url.Values{"scope": {"global"}, "min_confidence": {"2"}, "cooldown": {"20m"}, "max_memory_bytes": {"2Gi"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "guardrails.min_confidence: must be between 0 and 1, got 2")
	require.True(t, proto.Equal(before, g.guardrails(t, "global").GetSet()))
	p = ada.Post("/guardrails", url.Values{"scope": {"global"}, "min_confidence": {"0.9"}, "cooldown": {"a while"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "guardrails.cooldown: &#34;a while&#34; is not a duration")
	require.True(t, proto.Equal(before, g.guardrails(t, "global").GetSet()))
	p = ada.Post("/guardrails", url.Values{"scope": {"app/Not A Name"}, "auto": {"true"}})
	require.Equal(t, http.StatusBadRequest, p.Code)

	// The kill switch: on through the console, on in the API, and a
	// banner on every page; then off again.
	require.NotContains(t, ada.Get("/").Body, `class="killed"`)
	p = ada.Post("/guardrails/kill-switch", url.Values{"paused": {"true"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.True(t, g.guardrails(t, "global").GetEffective().GetPaused())
	for _, path := range []string{"/", "/settings", "/guardrails"} {
		require.Contains(t, ada.Get(path).Body, "Automatic repairs are stopped (kill switch on)", path)
	}
	p = ada.Get("/guardrails")
	require.Contains(t, p.Body, `<button type="submit" id="kill-switch">Resume automatic repairs</button>`)
	p = ada.Post("/guardrails/kill-switch", url.Values{"paused": {"false"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.False(t, g.guardrails(t, "global").GetEffective().GetPaused())
	require.NotContains(t, ada.Get("/").Body, `class="killed"`)

	// A viewer reads, without controls; its direct POSTs are refused by
	// the API and change nothing.
	p = vic.Get("/guardrails")
	require.Equal(t, http.StatusOK, p.Code)
	require.NotContains(t, p.Body, "kill-switch")
	require.NotContains(t, p.Body, `name="min_confidence"`)
	before = g.guardrails(t, "global").GetSet()
	p = vic.Post("/guardrails/kill-switch", url.Values{"paused": {"true"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	p = vic.Post("/guardrails", url.Values{"scope": {"global"}, "min_confidence": {"0.1"}})
	require.Equal(t, http.StatusForbidden, p.Code)
	after := g.guardrails(t, "global")
	require.True(t, proto.Equal(before, after.GetSet()))
	require.False(t, after.GetEffective().GetPaused())

	// Only admins set guardrails (the API's policy): an operator is
	// shown no switch either, and refused the same.
	olly := g.login(t, "olly")
	require.NotContains(t, olly.Get("/guardrails").Body, "kill-switch")
	require.Equal(t, http.StatusForbidden, olly.Post("/guardrails/kill-switch", url.Values{"paused": {"true"}}).Code)
	require.False(t, g.guardrails(t, "global").GetEffective().GetPaused())

	// In Traditional Chinese.
	vic.Lang = "zh-TW"
	p = vic.Get("/guardrails")
	require.Contains(t, p.Body, "<h1>防護規則</h1>")
	require.Contains(t, p.Body, "緊急停止開關")
}

var secretRE = regexp.MustCompile(`id="source-secret">([0-9a-f]{64})<`)

// TestConsoleGuardSources: an admin declares an hmac source; its secret
// is shown once, signs a webhook the gateway accepts, and no later page
// shows it; a sample body is tried through the form's mapping; a mapping
// that does not compile is refused with CEL's field error, the form kept
// and nothing stored; rotation shows a new secret once; a viewer is
// refused and changes nothing; deletion asks first and deletes.
func TestConsoleGuardSources(t *testing.T) {
	g := startGuardVigil(t)
	ada, vic := g.login(t, "ada"), g.login(t, "vic")
	mapping, err := os.ReadFile("../../../../docs/sources/examples/curl/mapping.yaml")
	require.NoError(t, err)
	payload, err := os.ReadFile("../../../../docs/sources/examples/curl/payload.json")
	require.NoError(t, err)

	require.Contains(t, ada.Get("/settings").Body, `href="/settings/sources"`)
	require.NotContains(t, vic.Get("/settings").Body, `href="/settings/sources"`, "only admins may list sources")
	p := ada.Get("/settings/sources/new")
	require.Equal(t, http.StatusOK, p.Code)

	form := url.Values{"new": {"true"}, "name": {"backups"}, "team": {"payments"}, "auth": {"hmac"}, "mapping": {string(mapping)}, "body": {string(payload)}}
	p = ada.Post("/settings/sources", form)
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Equal(t, "no-store", p.Header.Get("Cache-Control"))
	m := secretRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, p.Body)
	secret := m[1]
	require.Contains(t, p.Body, "/api/v1/webhooks/sources/backups")

	// The secret shown is the source's: a body signed with it is taken.
	req, err := http.NewRequest(http.MethodPost, g.base+"/api/v1/webhooks/sources/backups", bytes.NewReader(payload))
	require.NoError(t, err)
	req.Header.Set(webhook.SignatureHeader, webhook.Sign(secret, payload, time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	_ = resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)

	// Never shown again.
	for _, path := range []string{"/settings/sources", "/settings/sources/backups", "/settings"} {
		p := ada.Get(path)
		require.Equal(t, http.StatusOK, p.Code, path)
		require.NotContains(t, p.Body, secret, path)
	}
	p = ada.Get("/settings/sources/backups")
	require.Contains(t, p.Body, "stored (never shown again)")
	require.Contains(t, p.Body, "item.?severity.orValue")

	// Try the sample body through the form's mapping: the alerts it makes.
	p = ada.Post("/settings/sources/test", url.Values{"new": {"false"}, "name": {"backups"}, "team": {"payments"}, "auth": {"hmac"}, "mapping": {string(mapping)}, "body": {string(payload)}})
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	require.Contains(t, p.Body, "alertname=BackupFailed")
	require.Contains(t, p.Body, "alertname=CertExpiring")
	require.Regexp(t, `(?s)st-resolved.*alertname=CertExpiring`, p.Body)
	require.NotContains(t, p.Body, secret)

	// A body the mapping cannot read: the error, as the webhook would answer.
	p = ada.Post("/settings/sources/test", url.Values{"new": {"false"}, "name": {"backups"}, "auth": {"hmac"}, "mapping": {string(mapping)}, "body": {`{"checks": []}`}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "alerts")
	require.Contains(t, p.Body, "no such key")

	// A change of team and proof: a key source turning to a signature
	// gets a secret, shown once.
	p = ada.Post("/settings/sources/backups", url.Values{"name": {"backups"}, "team": {"web"}, "auth": {"key"}, "mapping": {string(mapping)}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	got, err := g.src.GetSource(g.admin, &gatewayv1.GetSourceRequest{Name: "backups"})
	require.NoError(t, err)
	require.Equal(t, "web", got.GetSource().GetTeam())
	require.Equal(t, "key", got.GetSource().GetAuth())
	p = ada.Post("/settings/sources/backups", url.Values{"name": {"backups"}, "team": {"payments"}, "auth": {"hmac"}, "mapping": {string(mapping)}})
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	m = secretRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m, p.Body)
	require.NotEqual(t, secret, m[1])
	secret = m[1]
	require.NotContains(t, ada.Get("/settings/sources/backups").Body, secret)

	// A mapping CEL refuses: the field error, the form as typed, nothing stored.
	bad := url.Values{"new": {"true"}, "name": {"broken"}, "auth": {"key"}, "mapping": {"labels:\n  alertname: item.name +\n"}}
	p = ada.Post("/settings/sources", bad)
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "source.generic.mapping.labels.alertname")
	require.Contains(t, p.Body, "  alertname: item.name &#43;\n</textarea>", "the form as typed")
	p = ada.Post("/settings/sources", url.Values{"new": {"true"}, "name": {"broken"}, "auth": {"key"}, "mapping": {"labels: [unclosed"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "source.generic.mapping: not a mapping in YAML")
	list, err := g.src.ListSources(g.admin, &gatewayv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSources(), 1)

	// Rotation: a new secret, shown once; the old one is refused.
	p = ada.Post("/settings/sources/backups/secret", nil)
	require.Equal(t, http.StatusOK, p.Code, p.Body)
	m = secretRE.FindStringSubmatch(p.Body)
	require.NotNil(t, m)
	require.NotEqual(t, secret, m[1])
	require.NotContains(t, ada.Get("/settings/sources/backups").Body, m[1])

	// A viewer: refused, nothing changed.
	require.Equal(t, http.StatusForbidden, vic.Get("/settings/sources").Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/sources", url.Values{"new": {"true"}, "name": {"mine"}, "auth": {"key"}, "mapping": {string(mapping)}}).Code)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/sources/backups/delete", nil).Code)
	list, err = g.src.ListSources(g.admin, &gatewayv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSources(), 1)

	// Deletion asks first (data-confirm), then deletes.
	require.Contains(t, ada.Get("/settings/sources/backups").Body, `action="/settings/sources/backups/delete" data-confirm="Delete this source?`)
	p = ada.Post("/settings/sources/backups/delete", nil)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	list, err = g.src.ListSources(g.admin, &gatewayv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetSources())
}

// TestConsoleGuardPriority: an admin replaces the priority rules and a
// response target through the console, and the API has them in the
// form's order; a matcher the API refuses shows its field error and
// changes nothing; a viewer's POST is refused and changes nothing.
func TestConsoleGuardPriority(t *testing.T) {
	g := startGuardVigil(t)
	ada, vic := g.login(t, "ada"), g.login(t, "vic")

	p := ada.Get("/settings/priority")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "The defaults apply")
	rows := url.Values{
		"matchers":  {`alertname="PaymentsDown", severity=~"crit.*"`, "", ""},
		"app":       {"", "shop", ""},
		"team":      {"", "", ""},
		"namespace": {"", "prod", ""},
		"priority":  {"P0", "P1", ""},
		"target_P0": {"2m"}, "target_P1": {"30m"},
	}
	p = ada.Post("/settings/priority", rows)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	res, err := g.esc.GetPriorityRules(g.admin, &monitorv1.GetPriorityRulesRequest{})
	require.NoError(t, err)
	rules := res.GetRules()
	require.Len(t, rules.GetRules(), 2)
	require.Equal(t, []string{`alertname="PaymentsDown"`, `severity=~"crit.*"`}, rules.GetRules()[0].GetMatchers())
	require.Equal(t, typesv1.Priority_PRIORITY_P0, rules.GetRules()[0].GetPriority())
	require.Equal(t, "shop", rules.GetRules()[1].GetApp())
	require.Equal(t, "prod", rules.GetRules()[1].GetNamespace())
	require.Len(t, rules.GetTargets(), 2)
	p = ada.Get("/settings/priority")
	require.Contains(t, p.Body, `value="alertname=&#34;PaymentsDown&#34;, severity=~&#34;crit.*&#34;"`)
	require.Contains(t, p.Body, `name="target_P0" value="2m"`)

	// The API's refusal, and nothing changed.
	p = ada.Post("/settings/priority", url.Values{"matchers": {`alertname=~"("`}, "app": {""}, "team": {""}, "namespace": {""}, "priority": {"P2"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "rules.rules[0].matchers")
	p = ada.Post("/settings/priority", url.Values{"matchers": {""}, "app": {"shop"}, "team": {""}, "namespace": {""}, "priority": {"P2"}, "target_P0": {"0s"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "rules.targets[0].target: must be more than 0")
	again, err := g.esc.GetPriorityRules(g.admin, &monitorv1.GetPriorityRulesRequest{})
	require.NoError(t, err)
	require.True(t, proto.Equal(rules, again.GetRules()))

	// A viewer sees the rules without a form; its POST is refused.
	p = vic.Get("/settings/priority")
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "PaymentsDown")
	require.NotContains(t, p.Body, `id="priority-save"`)
	require.Equal(t, http.StatusForbidden, vic.Post("/settings/priority", url.Values{"matchers": {""}, "app": {""}, "team": {""}, "namespace": {""}, "priority": {""}}).Code)
	again, err = g.esc.GetPriorityRules(g.admin, &monitorv1.GetPriorityRulesRequest{})
	require.NoError(t, err)
	require.True(t, proto.Equal(rules, again.GetRules()))
}

// TestConsoleGuardInBrowser drives the guard pages in a real headless
// Chromium: an admin asked to confirm the kill switch declines (nothing
// changes), then confirms: automatic repairs stop and every page says
// so; the switch goes off again the same way. A new source's mapping is
// tried on its sample body, then the source is created and its secret
// shown once. The guardrails fit a phone's screen. Screenshots:
// docs/console/guard-*.png come from these.
func TestConsoleGuardInBrowser(t *testing.T) {
	g := startGuardVigil(t)
	tab := browser.New(t)
	text := func(sel string) string { return textOf(tab, sel) }
	tab.Do(30*time.Second,
		signIn(g.base+"/guardrails", "ada", `#kill-switch`),
	)
	require.Equal(t, "Stop all automatic repairs", text("#kill-switch"))
	shots := []string{tab.Screenshot("guard-guardrails")}

	// Declined: nothing is posted.
	asked := make(chan string, 1)
	tab.Do(30*time.Second, answerEachDialog(false, asked), chromedp.Click(chromedp.CSS(`#kill-switch`)))
	require.Contains(t, <-asked, "Stop ALL automatic repairs?")
	require.False(t, g.guardrails(t, "global").GetEffective().GetPaused())

	// Confirmed: stopped, in the API and on every page.
	tab.Do(30*time.Second, answerEachDialog(true, asked), chromedp.Click(chromedp.CSS(`#kill-switch`)), chromedp.WaitVisible(chromedp.CSS(`p.killed`)))
	<-asked
	require.True(t, g.guardrails(t, "global").GetEffective().GetPaused())
	require.Equal(t, "Resume automatic repairs", text("#kill-switch"))
	shots = append(shots, tab.Screenshot("guard-kill-switch"))
	tab.Do(30*time.Second, chromedp.Navigate(g.base+"/"), chromedp.WaitVisible(chromedp.CSS(`table#incidents`)))
	require.Contains(t, text("p.killed"), "Automatic repairs are stopped")
	shots = append(shots, tab.Screenshot("guard-banner"))

	// And off again.
	tab.Do(30*time.Second,
		chromedp.Navigate(g.base+"/guardrails"), chromedp.WaitVisible(chromedp.CSS(`#kill-switch`)),
		answerEachDialog(true, asked), chromedp.Click(chromedp.CSS(`#kill-switch`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	)
	require.Contains(t, <-asked, "Let automatic repairs run again")
	require.False(t, g.guardrails(t, "global").GetEffective().GetPaused())
	require.Zero(t, browser.Get(tab, chromedp.Evaluate[int](`document.querySelectorAll("p.killed").length`)))

	// A new source: its mapping tried on the sample body, then created.
	tab.Do(30*time.Second,
		chromedp.Navigate(g.base+"/settings"), chromedp.WaitVisible(chromedp.CSS(`a[href="/settings/sources"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/settings/sources"]`)), chromedp.WaitVisible(chromedp.CSS(`a[href="/settings/sources/new"]`)),
		chromedp.Click(chromedp.CSS(`a[href="/settings/sources/new"]`)), chromedp.WaitVisible(chromedp.CSS(`#source-form`)),
		chromedp.SendKeys(chromedp.CSS(`input[name=name]`), "backups"),
		chromedp.SendKeys(chromedp.CSS(`input[name=team]`), "payments"),
		chromedp.Click(chromedp.CSS(`#source-try`)), chromedp.WaitVisible(chromedp.CSS(`#tried`)),
		chromedp.ScrollIntoView(chromedp.CSS(`#tried`)),
	)
	tried := text("#tried")
	require.Contains(t, tried, "alertname=BackupFailed")
	require.Contains(t, tried, "alertname=CertExpiring")
	list, err := g.src.ListSources(g.admin, &gatewayv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Empty(t, list.GetSources(), "a try stores nothing")
	shots = append(shots, tab.Screenshot("guard-source-try"))
	tab.Do(30*time.Second, chromedp.Click(chromedp.CSS(`#source-save`)), chromedp.WaitVisible(chromedp.CSS(`#source-secret`)))
	require.Regexp(t, `^[0-9a-f]{64}$`, text("#source-secret"))
	list, err = g.src.ListSources(g.admin, &gatewayv1.ListSourcesRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetSources(), 1)
	require.Equal(t, "payments", list.GetSources()[0].GetTeam())
	shots = append(shots, tab.Screenshot("guard-source-secret"))

	// On a phone: nothing wider than the screen.
	tab.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Navigate(g.base+"/guardrails"), chromedp.WaitVisible(chromedp.CSS(`#kill-switch`)),
	)
	require.True(t, browser.Get(tab, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	shots = append(shots, tab.Screenshot("guard-guardrails-phone"))
	for _, p := range shots {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}
