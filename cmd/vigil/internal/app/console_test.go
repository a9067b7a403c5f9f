package app_test

import (
	"context"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/browser"
)

// TestConsoleInBrowser drives the web console in a real headless
// Chromium against a running Vigil: an operator logs in and watches an
// alert's incident appear on the list without a reload; an operator of
// another team neither sees it nor opens it; a POST without the CSRF
// token is refused and changes nothing; no inline script runs under the
// CSP; the list reads in Traditional Chinese. Screenshots of the login
// page and the list are saved (browser.ArtefactDir).
func TestConsoleInBrowser(t *testing.T) {
	// Alerts no app claims belong to the default team: payments.
	v := startConsole(t, []*gatewayv1.User{
		{Name: "alice", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"payments"}},
		{Name: "olga", Role: gatewayv1.Role_ROLE_OPERATOR, Teams: []string{"web"}},
	}, func(o *app.Options) { o.Gateway.DefaultTeam = "payments" })
	base, conn, admin := v.base, v.conn, v.admin
	login := func(tab *browser.Tab, name string) {
		tab.Do(30*time.Second, signIn(base+"/", name, `table#incidents[data-live="on"]`))
	}
	text := textOf

	alice := browser.New(t)
	alice.Do(30*time.Second, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`form[action="/login"]`)))
	shot := alice.Screenshot("login")
	login(alice, "alice")
	require.Equal(t, "Incidents", text(alice, "h1"))
	require.Equal(t, "alice", text(alice, "header .user"))
	require.Equal(t, "No incidents.", text(alice, "#incidents tbody tr.empty"))

	// No inline script: the page's only script is the console's file,
	// and the CSP forbids any other.
	inline := browser.Get(alice, chromedp.Evaluate[int](`document.querySelectorAll("script:not([src]), [style]").length`))
	require.Zero(t, inline)
	resp, err := http.Get(base + "/login")
	require.NoError(t, err)
	_ = resp.Body.Close()
	csp := resp.Header.Get("Content-Security-Policy")
	require.Contains(t, csp, "default-src 'self'")
	require.NotContains(t, csp, "unsafe-inline")
	require.Equal(t, "DENY", resp.Header.Get("X-Frame-Options"))

	// An alert comes in; its incident shows up on the open page, without
	// a reload (the marker set on this page survives).
	browser.Get(alice, chromedp.Evaluate[bool](`window.vigilTestMarker = true`))
	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(admin, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "CheckoutErrors", "namespace": "shop", "severity": "critical"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
	alice.Do(30*time.Second, chromedp.WaitVisible(chromedp.CSS(`#incidents tbody tr[id^="incident-"]`)))
	require.True(t, browser.Get(alice, chromedp.Evaluate[bool](`window.vigilTestMarker === true`)), "the page was not reloaded")
	row := text(alice, `#incidents tbody tr[id^="incident-"]`)
	require.Contains(t, row, "CheckoutErrors")
	var list *monitorv1.ListIncidentsResponse
	list, err = monitorv1.NewIncidentServiceClient(conn).ListIncidents(admin, &monitorv1.ListIncidentsRequest{})
	require.NoError(t, err)
	require.Len(t, list.GetIncidents(), 1)
	id := list.GetIncidents()[0].GetId()
	listShot := alice.Screenshot("incidents")

	// An incident opened while the page had no stream (before it opened,
	// or while it reconnects) is on the list once the stream is back:
	// the page reads its rows again when the stream opens.
	alice.Do(30*time.Second,
		blockURLs("*://*:*/events*"),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#incidents tbody tr[id^="incident-"]`)),
	)
	require.NotEqual(t, "on", browser.Get(alice, chromedp.Evaluate[string](`document.getElementById("incidents").getAttribute("data-live") || ""`)), "no stream while blocked")
	browser.Get(alice, chromedp.Evaluate[bool](`window.vigilTestMarker = true`))
	_, err = gatewayv1.NewAlertServiceClient(conn).IngestAlerts(admin, &gatewayv1.IngestAlertsRequest{Alerts: []*typesv1.Alert{{
		Labels:   map[string]string{"alertname": "RefundsStuck", "namespace": "shop", "severity": "warning"},
		StartsAt: timestamppb.Now(),
	}}})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		l, err := monitorv1.NewIncidentServiceClient(conn).ListIncidents(admin, &monitorv1.ListIncidentsRequest{})
		return err == nil && len(l.GetIncidents()) == 2
	}, 30*time.Second, 50*time.Millisecond)
	require.NotContains(t, text(alice, "#incidents tbody"), "RefundsStuck")
	alice.Do(30*time.Second,
		blockURLs(),
		chromedp.WaitVisible(chromedp.CSS(`table#incidents[data-live="on"]`)),
	)
	require.Contains(t, text(alice, "#incidents tbody"), "RefundsStuck")
	require.True(t, browser.Get(alice, chromedp.Evaluate[bool](`window.vigilTestMarker === true`)), "the page was not reloaded")

	// A POST without the CSRF token, from the page itself: refused, and
	// alice is still logged in.
	status := browser.Get(alice, chromedp.Evaluate[int](`fetch("/logout", {method: "POST", body: new URLSearchParams()}).then(r => r.status)`, chromedp.EvalAwaitPromise))
	require.Equal(t, http.StatusForbidden, status)
	alice.Do(30*time.Second, chromedp.Reload(), chromedp.WaitVisible(chromedp.CSS(`table#incidents[data-live="on"]`)))
	require.Equal(t, "alice", text(alice, "header .user"))

	// Olga (web) sees nothing of payments, and its page is refused.
	olga := browser.New(t)
	login(olga, "olga")
	require.Equal(t, "No incidents.", text(olga, "#incidents tbody tr.empty"))
	olga.Do(30*time.Second, chromedp.Navigate(base+"/incidents/"+id), chromedp.WaitVisible(chromedp.CSS(`.problem`)))
	require.Equal(t, "403", text(olga, "h1"))
	require.NotContains(t, text(olga, "main"), "CheckoutErrors")

	// The switch to Traditional Chinese.
	alice.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`a[hreflang="zh-TW"]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="zh-TW"] table#incidents[data-live="on"]`)),
	)
	require.Equal(t, "事件", text(alice, "h1"))
	require.Contains(t, text(alice, `#incidents tbody tr[id^="incident-"]`), "未處理")
	zhShot := alice.Screenshot("incidents-zh-TW")

	// On a phone: one column, each row a card, nothing wider than the
	// screen.
	alice.Do(30*time.Second,
		chromedp.Click(chromedp.CSS(`a[hreflang="en"]`)),
		chromedp.WaitVisible(chromedp.CSS(`html[lang="en"] table#incidents[data-live="on"]`)),
		chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`#incidents tbody tr[id^="incident-"]`)),
	)
	require.Equal(t, "none", browser.Get(alice, chromedp.Evaluate[string](`getComputedStyle(document.querySelector("#incidents thead")).display`)))
	require.True(t, browser.Get(alice, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`)), "no sideways scrolling")
	phoneShot := alice.Screenshot("incidents-phone")

	for _, p := range []string{shot, listShot, zhShot, phoneShot} {
		st, err := os.Stat(p)
		require.NoError(t, err)
		require.Positive(t, st.Size())
	}
}

// blockURLs makes the tab fail requests to URLs of the patterns
// (URLPattern syntax), as a network that drops them would; none unblocks.
func blockURLs(patterns ...string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		ps := []*network.BlockPattern{}
		for _, p := range patterns {
			ps = append(ps, &network.BlockPattern{URLPattern: p, Block: true})
		}
		if _, err := cdp.Call(ctx, t, network.Enable, network.EnableParams{}); err != nil {
			return err
		}
		_, err := cdp.Call(ctx, t, network.SetBlockedURLs, network.SetBlockedURLsParams{URLPatterns: ps})
		return err
	})
}
