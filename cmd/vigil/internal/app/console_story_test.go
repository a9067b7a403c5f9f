package app_test

import (
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/durationpb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
)

// storyUsers adds to the loop's olga (operator of payments) vera, a
// viewer of payments, and walt, an operator of web.
func storyUsers(t *testing.T, l *loop) {
	t.Helper()
	addUsers(l.ctx, t, l.conn,
		&gatewayv1.User{Name: "vera", Role: gatewayv1.Role_ROLE_VIEWER, Teams: []string{"payments"}},
		&gatewayv1.User{Name: "walt", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"web"}},
	)
}

// stillWaiting checks that repair id still waits for a person, as it did.
func stillWaiting(t *testing.T, l *loop, id string) *repairv1.Repair {
	t.Helper()
	g, err := repairv1.NewRepairServiceClient(l.conn).GetRepair(l.ctx, &repairv1.GetRepairRequest{Id: id})
	require.NoError(t, err)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL, g.GetRepair().GetStatus())
	return g.GetRepair()
}

// TestConsoleStoryActions drives one incident's page over HTTP against a
// running loop (a bad release, its incident, an analysis proposing a
// rollback that waits for a person): the page tells the story — the
// analysis with its evidence, the repair with the guardrails' decision,
// its buttons and timeline, the escalation — and each of its changes goes
// through the API as the user: Later, Reject with a reason, priority,
// snooze (a bad duration refused with the API's words), escalate,
// acknowledge, resolve. A viewer, another team's operator and a POST
// without the CSRF token change nothing. Its live stream tells the page
// when its repair changes, and only someone who may read it.
func TestConsoleStoryActions(t *testing.T) {
	l := startLoop(t, false)
	storyUsers(t, l)
	_, err := monitorv1.NewEscalationServiceClient(l.conn).CreatePolicy(l.ctx, &monitorv1.CreatePolicyRequest{Policy: &monitorv1.EscalationPolicy{
		Name: "payments-night", Team: "payments", Steps: []*monitorv1.EscalationStep{{Users: []string{"olga"}}, {Users: []string{"olga"}, Delay: durationpb.New(time.Hour)}},
	}})
	require.NoError(t, err)
	l.badRelease(t, "cart-actions")
	r := l.proposedRepair(t, "cart-actions")
	id := r.GetIncidentId()
	page := "/incidents/" + id
	base := "http://" + l.app.HTTPAddr()
	incidents := monitorv1.NewIncidentServiceClient(l.conn)
	incident := func() *monitorv1.GetIncidentResponse {
		res, err := incidents.GetIncident(l.ctx, &monitorv1.GetIncidentRequest{Id: id})
		require.NoError(t, err)
		return res
	}
	repairAction := page + "/repairs/" + r.GetId() + "/"
	// Monitor's escalator takes the incident up on its own tick.
	require.Eventually(t, func() bool { return incident().GetEscalation().GetPolicy() == "payments-night" }, time.Minute, 50*time.Millisecond)

	olga := consoleClient(t, base, "olga")
	p := olga.Get(page)
	require.Equal(t, http.StatusOK, p.Code)
	for _, want := range []string{
		"KubePodCrashLooping", "Analysis", "Evidence", "Roll back the deployment", "waiting for approval",
		"needs a person&#39;s approval", "proposed", `action="` + repairAction + `approve"`, `action="` + repairAction + `reject"`,
		`action="` + repairAction + `postpone"`, `href="/silences/new?incident=` + id + `"`, "payments-night",
		`action="` + page + `/acknowledge"`, `action="` + page + `/escalate"`,
	} {
		require.Contains(t, p.Body, want)
	}
	require.Contains(t, p.Body, r.GetSummary(), "the analysis' cause")
	require.Regexp(t, `<td data-label="Source"><code>kubernetes:`, p.Body, "evidence with its source")
	zh := consoleClient(t, base, "olga")
	zh.Lang = "zh-TW"
	require.Contains(t, zh.Get(page).Body, "回滾 Deployment")

	// What Vigil told whom: the approval card in Telegram (a supergroup:
	// a t.me/c link) and in Slack (the workspace's permalink), each
	// opening in the chat.
	tgCard, slCard := l.telegramCard(t, r.GetId()), l.slackCard(t, r.GetId())
	tgLink := `href="https://t.me/c/` + strings.TrimPrefix(chatID, "-100") + "/" + strconv.FormatInt(tgCard.MessageID, 10) + `"`
	slLink := `href="https://vigil-test.slack.com/archives/` + slackChannel + "/p" + strings.ReplaceAll(slCard.TS, ".", "") + `"`
	require.Eventually(t, func() bool {
		b := olga.Get(page).Body
		return strings.Contains(b, tgLink) && strings.Contains(b, slLink)
	}, time.Minute, 100*time.Millisecond, "the card's messages, linked")
	p = olga.Get(page)
	for _, want := range []string{`id="story-messages"`, "Open in Telegram", "Open in Slack", `rel="noopener noreferrer"`, "repair.approval_requested", "incident.opened"} {
		require.Contains(t, p.Body, want)
	}
	require.Contains(t, zh.Get(page).Body, "在 Slack 開啟")

	// Vera may read it, but sees no button, and her posts are refused
	// and change nothing; walt (web) may not even read it.
	vera, walt := consoleClient(t, base, "vera"), consoleClient(t, base, "walt")
	p = vera.Get(page)
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "Roll back the deployment")
	require.NotContains(t, p.Body, `name="do"`, "no button for a viewer")
	require.NotContains(t, p.Body, "/silences/new")
	for _, c := range []*browser.Client{vera, walt} {
		require.Equal(t, http.StatusForbidden, c.Post(repairAction+"approve", nil).Code)
		require.Equal(t, http.StatusForbidden, c.Post(repairAction+"reject", url.Values{"reason": {"no"}}).Code)
		require.Equal(t, http.StatusForbidden, c.Post(page+"/resolve", nil).Code)
	}
	require.Equal(t, http.StatusForbidden, walt.Get(page).Code)
	require.NotContains(t, walt.Get(page).Body, "KubePodCrashLooping")
	require.Equal(t, http.StatusForbidden, walt.Get("/events?incident="+id).Code)
	// Without the form's token: refused too.
	require.Equal(t, http.StatusForbidden, olga.Post(repairAction+"approve", url.Values{"csrf": {"forged"}}).Code)
	stillWaiting(t, l, r.GetId())
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_OPEN, incident().GetIncident().GetStatus())

	// Later: it keeps waiting, snoozed, and the timeline says so.
	p = olga.Post(repairAction+"postpone", url.Values{"for": {"15m"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, page+"?done=done.story.postpone", p.Header.Get("Location"))
	require.NotNil(t, stillWaiting(t, l, r.GetId()).GetSnoozedUntil())
	p = olga.Get(p.Header.Get("Location"))
	require.Contains(t, p.Body, "Postponed: the approval will be asked again.")
	require.Contains(t, p.Body, `class="step-postponed"`)

	// Reject, with a reason; the live stream of the page tells it.
	stream := olga.Events("/events?incident=" + id)
	p = olga.Post(repairAction+"reject", url.Values{"reason": {"not during the sale <b>"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	stream.Until(t, func() {}, func(ev browser.Event) bool { return ev.Name == "changed" && ev.Data == id })
	g, err := repairv1.NewRepairServiceClient(l.conn).GetRepair(l.ctx, &repairv1.GetRepairRequest{Id: r.GetId()})
	require.NoError(t, err)
	require.Equal(t, repairv1.RepairStatus_REPAIR_STATUS_REJECTED, g.GetRepair().GetStatus())
	require.Equal(t, "user:olga", g.GetRepair().GetDecidedBy())
	p = olga.Get(page)
	require.Contains(t, p.Body, "not during the sale &lt;b&gt;", "the reason, as text")
	require.NotContains(t, p.Body, `action="`+repairAction+`approve"`, "no approval once decided")
	// Approving it now: the API's conflict, shown.
	p = olga.Post(repairAction+"approve", nil)
	require.Equal(t, http.StatusConflict, p.Code)

	// The incident: priority, snooze (a bad duration refused with the
	// API's words, nothing changed), escalate, acknowledge, resolve.
	p = olga.Post(page+"/priority", url.Values{"priority": {"P0"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, typesv1.Priority_PRIORITY_P0, incident().GetIncident().GetPriority())
	p = olga.Post(page+"/snooze", url.Values{"duration": {"48h"}})
	require.Equal(t, http.StatusBadRequest, p.Code)
	require.Contains(t, p.Body, "duration: must be more than 0 and at most 24h")
	require.Nil(t, incident().GetEscalation().GetSnoozedUntil())
	p = olga.Post(page+"/snooze", url.Values{"duration": {"1h"}})
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, "olga", incident().GetEscalation().GetSnoozedBy())
	level := incident().GetEscalation().GetLevel()
	p = olga.Post(page+"/escalate", nil)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, level+1, incident().GetEscalation().GetLevel())
	p = olga.Post(page+"/acknowledge", nil)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED, incident().GetIncident().GetStatus())
	p = olga.Post(page+"/resolve", nil)
	require.Equal(t, http.StatusSeeOther, p.Code, p.Body)
	require.Equal(t, typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED, incident().GetIncident().GetStatus())
	p = olga.Get(p.Header.Get("Location"))
	require.Contains(t, p.Body, "Resolved.")
	require.Contains(t, p.Body, "olga", "resolved by")
	require.NotContains(t, p.Body, `action="`+page+`/escalate"`, "nothing to escalate once resolved")
}

// TestConsoleStoryInBrowser is the console's main scenario on the running
// loop, in headless Chromium: a bad release crash-loops; olga, operator
// of payments, sees its incident appear on the list without a reload,
// opens it, reads the analysis (its evidence and confidence) and the
// proposed rollback that waits for her, presses Approve, and watches the
// repair's timeline reach "verified" and the incident resolve, without
// reloading. Vera, a viewer, reads the page without a button, and her
// POST of Approve is refused with the repair still waiting; walt, of
// another team, cannot open it. Screenshots in English and Traditional
// Chinese.
func TestConsoleStoryInBrowser(t *testing.T) {
	l := startLoop(t, false)
	storyUsers(t, l)
	base := "http://" + l.app.HTTPAddr()
	text := textOf
	marker := func(tab *browser.Tab) { browser.Get(tab, chromedp.Evaluate[bool](`window.vigilTestMarker = true`)) }
	notReloaded := func(tab *browser.Tab) {
		t.Helper()
		require.True(t, browser.Get(tab, chromedp.Evaluate[bool](`window.vigilTestMarker === true`)), "the page was not reloaded")
	}

	// login opens a browser of name's, on the incident list.
	login := func(name string) *browser.Tab {
		tab := browser.New(t)
		tab.Do(30*time.Second, signIn(base+"/", name, `table#incidents[data-live="on"]`))
		return tab
	}

	olga := login("olga")
	marker(olga)

	// The bad release: its incident appears on the open list.
	l.badRelease(t, "cart-story")
	olga.Do(2*time.Minute, chromedp.WaitVisible(chromedp.CSS(`#incidents tbody tr[id^="incident-"]`)))
	notReloaded(olga)
	require.Contains(t, text(olga, `#incidents tbody tr[id^="incident-"]`), "KubePodCrashLooping")

	// Open it: the analysis and the repair card come as they are made.
	olga.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`#incidents tbody tr[id^="incident-"] a`)),
		chromedp.WaitVisible(chromedp.CSS(`#story[data-live="on"]`)),
	)
	marker(olga)
	olga.Do(3*time.Minute, chromedp.WaitVisible(chromedp.CSS(`#story-repairs button.approve`)))
	notReloaded(olga)
	r := l.proposedRepair(t, "cart-story")
	id := r.GetIncidentId()
	require.Equal(t, "incident-"+id, browser.Get(olga, chromedp.Evaluate[string](`document.querySelector("#story h1").id`)))
	require.Equal(t, r.GetSummary(), text(olga, `#story-analysis .summary`))
	require.Positive(t, browser.Get(olga, chromedp.Evaluate[int](`document.querySelectorAll("#story-analysis table.evidence tbody tr:not(.empty)").length`)), "evidence")
	require.Contains(t, text(olga, `#story-analysis .engine`), "rules")
	require.Contains(t, text(olga, `#repair-`+r.GetId()), "Roll back the deployment")
	require.Contains(t, text(olga, `#repair-`+r.GetId()+` .badge`), "waiting for approval")
	require.Zero(t, browser.Get(olga, chromedp.Evaluate[int](`document.querySelectorAll("script:not([src]), [style]").length`)), "no inline script or style")
	olga.Do(10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(`#story-analysis`)))
	enShot := olga.Screenshot("story-incident")
	olga.Do(10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(`#story-repairs`)))
	approvalShot := olga.Screenshot("story-approval")

	// Vera reads it, without a button; her Approve is refused and the
	// repair still waits. Walt may not open it.
	vera := consoleClient(t, base, "vera")
	p := vera.Get("/incidents/" + id)
	require.Equal(t, http.StatusOK, p.Code)
	require.Contains(t, p.Body, "Roll back the deployment")
	require.NotContains(t, p.Body, `value="approve"`)
	require.Equal(t, http.StatusForbidden, vera.Post("/incidents/"+id+"/repairs/"+r.GetId()+"/approve", nil).Code)
	stillWaiting(t, l, r.GetId())
	walt := login("walt")
	walt.Do(30*time.Second, chromedp.Navigate(base+"/incidents/"+id), chromedp.WaitVisible(chromedp.CSS(`.problem`)))
	require.Equal(t, "403", text(walt, "h1"))
	require.NotContains(t, text(walt, "main"), "KubePodCrashLooping")

	// Approve: the rollback runs, is verified, and the incident resolves
	// on the open page.
	olga.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`#repair-`+r.GetId()+` button.approve`)),
		chromedp.WaitVisible(chromedp.CSS(`p.done`)),
	)
	require.Equal(t, "Approved: the repair runs.", text(olga, `p.done`))
	marker(olga)
	olga.Do(4*time.Minute,
		chromedp.WaitVisible(chromedp.CSS(`#repair-`+r.GetId()+` .timeline .step-verified`)),
		chromedp.WaitVisible(chromedp.CSS(`#story-head .st-resolved`)),
	)
	notReloaded(olga)
	timeline := text(olga, `#repair-`+r.GetId()+` .timeline`)
	for _, step := range []string{"proposed", "decided", "approved", "executed", "verified"} {
		require.Contains(t, timeline, step)
	}
	require.Contains(t, timeline, "user:olga", "who approved")
	require.Contains(t, text(olga, `#repair-`+r.GetId()+` .badge`), "verified")
	require.Empty(t, browser.Get(olga, chromedp.Evaluate[string](`(document.querySelector("#story button.approve") || {id: ""}).id`)), "no approval left")
	olga.Do(10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(`#story-repairs`)))
	doneShot := olga.Screenshot("story-verified")

	// The same story in Traditional Chinese.
	olga.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`a[hreflang="zh-TW"]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-TW"] #story[data-live="on"]`)),
	)
	require.Contains(t, text(olga, `#repair-`+r.GetId()+` .timeline`), "已驗證")
	require.Contains(t, text(olga, `#story-head`), "已解決")
	olga.Do(10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(`#story-repairs`)))
	zhShot := olga.Screenshot("story-verified-zh-TW")

	// On a phone: one column, nothing wider than the screen.
	olga.Do(30*time.Second,
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#story-repairs .timeline`)),
	)
	require.True(t, browser.Get(olga, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	olga.Do(10*time.Second, chromedp.ScrollIntoView(chromedp.CSS(`#story-analysis`)))
	phoneShot := olga.Screenshot("story-phone")

	for _, p := range []string{enShot, approvalShot, doneShot, zhShot, phoneShot} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}
