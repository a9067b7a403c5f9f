package gateway_test

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/pkg/approval"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/services/gateway"
)

var encryptionKey = []byte("0123456789abcdef0123456789abcdef")

// page is an answer of /api/v1/actions/{token}.
type page struct {
	code   int
	header http.Header
	body   string
}

func actionPage(t *testing.T, g *gw, method, token string, form url.Values) page {
	t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, "http://"+g.addr+"/api/v1/actions/"+token, body)
	require.NoError(t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return page{resp.StatusCode, resp.Header, string(b)}
}

func mint(t *testing.T, v approval.Verb, target, to string, ttl time.Duration) string {
	t.Helper()
	key, err := actionlink.Key(encryptionKey)
	require.NoError(t, err)
	tok, err := actionlink.Mint(key, v, target, to, ttl)
	require.NoError(t, err)
	return tok
}

// TestEmailActionLinks: a link of an email shows a confirm page on GET
// and changes nothing (mail scanners fetch links); a POST with the page's
// confirm field acts once, as the user whose email the recipient address
// is, under a chat press's checks: an operator of the team acts; another
// team's operator, a viewer, an address of no user are refused and
// nothing changes; a second POST, even at once, is refused (409); an
// expired link (410) or a forged one (404) does nothing. Audited as
// email/<action>.
func TestEmailActionLinks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken, EncryptionKey: encryptionKey})
	confirm := func(v approval.Verb) url.Values { return url.Values{"confirm": {string(v)}} }
	ack := mint(t, approval.Acknowledge, incidentID, "Alice@Example.com", time.Hour)

	for range 2 {
		p := actionPage(t, g, http.MethodGet, ack, nil)
		require.Equal(t, http.StatusOK, p.code)
		require.Contains(t, p.body, `<form method="post"><input type="hidden" name="confirm" value="acknowledge">`)
		require.Contains(t, p.body, "Acknowledge incident "+incidentID)
		require.NotContains(t, p.body, "<script")
		require.Equal(t, "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'", p.header.Get("Content-Security-Policy"))
		require.Equal(t, "no-referrer", p.header.Get("Referrer-Policy"))
	}
	require.Equal(t, http.StatusBadRequest, actionPage(t, g, http.MethodPost, ack, url.Values{}).code, "a POST without the form's confirm")
	require.Equal(t, "INCIDENT_STATUS_OPEN", getIncident(t, g).Incident.Status, "neither GET nor an unconfirmed POST acts")

	for _, tc := range []struct{ to, says string }{
		{"olga@example.com", "user:olga is not in it"},
		{"vera@example.com", "user:vera is a viewer"},
		{"nobody@example.com", "Vigil knows no single user with this email address"},
	} {
		p := actionPage(t, g, http.MethodPost, mint(t, approval.Acknowledge, incidentID, tc.to, time.Hour), confirm(approval.Acknowledge))
		require.Equal(t, http.StatusForbidden, p.code, tc.to)
		require.Contains(t, p.body, tc.says)
	}
	expired := mint(t, approval.Acknowledge, incidentID, "alice@example.com", -time.Second)
	require.Equal(t, http.StatusGone, actionPage(t, g, http.MethodPost, expired, confirm(approval.Acknowledge)).code)
	forged := mint(t, approval.Acknowledge, incidentID, "alice@example.com", time.Hour)
	forged = forged[:10] + map[bool]string{true: "A", false: "B"}[forged[10] != 'A'] + forged[11:]
	require.Equal(t, http.StatusNotFound, actionPage(t, g, http.MethodPost, forged, confirm(approval.Acknowledge)).code)
	require.Equal(t, "INCIDENT_STATUS_OPEN", getIncident(t, g).Incident.Status, "a refusal changes nothing")
	require.Empty(t, getIncident(t, g).Incident.AcknowledgedBy)

	p := actionPage(t, g, http.MethodPost, ack, confirm(approval.Acknowledge))
	require.Equal(t, http.StatusOK, p.code, p.body)
	require.Contains(t, p.body, "Acknowledged by user:alice: the incident is yours.")
	got := getIncident(t, g).Incident
	require.Equal(t, "INCIDENT_STATUS_ACKNOWLEDGED", got.Status)
	require.Equal(t, "user:alice", got.AcknowledgedBy)
	require.Equal(t, http.StatusConflict, actionPage(t, g, http.MethodPost, ack, confirm(approval.Acknowledge)).code, "once")
	p = actionPage(t, g, http.MethodGet, ack, nil)
	require.Equal(t, http.StatusConflict, p.code)
	require.NotContains(t, p.body, "<form", "a used link offers no button")

	// Two POSTs of one link at once: one acts.
	esc := mint(t, approval.Escalate, incidentID, "alice@example.com", time.Hour)
	codes := make([]int, 2)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() { codes[i] = actionPage(t, g, http.MethodPost, esc, confirm(approval.Escalate)).code })
	}
	wg.Wait()
	require.ElementsMatch(t, []int{http.StatusOK, http.StatusConflict}, codes)
	require.Equal(t, int32(1), getIncident(t, g).Escalation.Level)

	// A repair's link: approved as alice, on the bus.
	p = actionPage(t, g, http.MethodPost, mint(t, approval.Approve, rApprove, "alice@example.com", time.Hour), confirm(approval.Approve))
	require.Equal(t, http.StatusOK, p.code, p.body)
	evs := e.waitEvents(t, 1)
	require.Len(t, evs, 1)
	require.Equal(t, "user:alice", evs[0].event.(*eventsv1.RepairApproved).GetApprovedBy())
	require.Equal(t, "email", evs[0].event.(*eventsv1.RepairApproved).GetChannel())

	target := " incident/" + incidentID
	require.ElementsMatch(t, []string{
		"user:olga" + target + " PermissionDenied", "user:vera" + target + " PermissionDenied",
		"email:nobody@example.com" + target + " Unauthenticated", "user:alice" + target + " OK",
	}, e.audit(t, "email/AcknowledgeIncident"))
	require.Equal(t, []string{"user:alice" + target + " OK"}, e.audit(t, "email/EscalateIncident"))
	require.Len(t, e.audit(t, "email/ApproveRepair"), 1)
}

// Without an encryption key, the links' route says what is missing.
func TestEmailActionLinksNeedTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{AdminToken: restAdminToken})
	p := actionPage(t, g, http.MethodGet, mint(t, approval.Acknowledge, incidentID, "alice@example.com", time.Hour), nil)
	require.Equal(t, http.StatusNotFound, p.code)
	require.Contains(t, p.body, "VIGIL_ENCRYPTION_KEY")
}
