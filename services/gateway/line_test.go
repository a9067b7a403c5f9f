package gateway_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/auth"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/testkit"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/services/gateway"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// startLine runs a gateway taking the LINE webhook, and returns its URL.
func (e *env) startLine(t *testing.T) string {
	t.Helper()
	g := e.start(t, gateway.Options{LineChannelSecret: e.ln.ChannelSecret(), LineChannelToken: e.ln.Token(), LineAPIURL: e.ln.URL()})
	return "http://" + g.addr + "/api/v1/webhooks/line"
}

// lastReply is the text of the last reply LINE carried, waiting for the
// nth.
func (e *env) lnReply(t *testing.T, n int) string {
	t.Helper()
	rs := e.ln.WaitForReplies(t, n, 10*time.Second)
	require.Len(t, rs[n-1].Messages, 1)
	return rs[n-1].Messages[0].Text
}

// TestLineWebhookIsVerified: a request LINE did not sign (no signature, a
// forged one, a body changed after signing) is refused with 401 before
// anything in it is read, and changes nothing; a body over the bound is
// refused with 413.
func TestLineWebhookIsVerified(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.startLine(t)
	press := e.ln.Postback(lnAlice, approval.CallbackData(approval.Approve, rApprove))
	body, err := json.Marshal(map[string]any{"destination": "U0", "events": []any{press}})
	require.NoError(t, err)
	tampered := []byte(strings.Replace(string(body), rApprove, rReject, 1))
	for name, c := range map[string]struct {
		body []byte
		sig  string
	}{
		"unsigned": {body, ""},
		"forged":   {body, fakeline.Sign("not-the-channel-secret", body)},
		"tampered": {tampered, fakeline.Sign(e.ln.ChannelSecret(), body)},
		"garbage":  {[]byte("{"), "c2lnbmF0dXJl"},
	} {
		status, out := e.ln.PostRaw(t, url, c.body, c.sig)
		require.Equal(t, http.StatusUnauthorized, status, name)
		var p server.Problem
		require.NoError(t, json.Unmarshal([]byte(out), &p), name)
		require.Contains(t, p.Detail, "X-Line-Signature", name)
	}
	big := e.ln.Text(lnAlice, strings.Repeat("x", 2<<20))
	status, _ := e.ln.Post(t, url, big)
	require.Equal(t, http.StatusRequestEntityTooLarge, status)
	require.Empty(t, e.ln.Replies(), "nothing answered")
	require.Empty(t, e.events(), "nothing published")
	require.Empty(t, e.audit(t, "chat.line/ApproveRepair"))

	// The same press, signed, is taken: the refusals did not use it up.
	status, _ = e.ln.Post(t, url, press)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, e.lnReply(t, 1), "Approved")
	// LINE's "Verify" button sends no events.
	status, _ = e.ln.Post(t, url)
	require.Equal(t, http.StatusOK, status)
}

// TestLineApprovals: the approval card's postbacks act as the linked
// LINE account's user, answered by the reply token before anything is
// done; a redelivered event is acted on once; whoever may not decide is
// told so and nothing changes; a press whose reply token no longer works
// is not acted on; Later snoozes.
func TestLineApprovals(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.startLine(t)
	approve := approval.CallbackData(approval.Approve, rApprove)

	for i, r := range []struct {
		user, want string
	}{
		{lnStranger, "Vigil does not know your LINE account"},
		{lnVera, "Only an operator of the app's team may decide on repairs; user:vera is a viewer."},
		{lnOlga, "Only an operator of the app's team may decide on this repair; user:olga is not in it."},
	} {
		status, _ := e.ln.Post(t, url, e.ln.Postback(r.user, approve))
		require.Equal(t, http.StatusOK, status)
		require.Contains(t, e.lnReply(t, i+1), r.want)
	}
	require.Empty(t, e.events(), "nothing published for a refusal")

	press := e.ln.Postback(lnAlice, approve)
	status, _ := e.ln.Post(t, url, press)
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, e.lnReply(t, 4), "Approved")
	evs := e.waitEvents(t, 1)
	ap, ok := evs[0].event.(*eventsv1.RepairApproved)
	require.True(t, ok)
	require.Equal(t, rApprove, ap.GetRepairId())
	require.Equal(t, "user:alice", ap.GetApprovedBy())
	require.Equal(t, "line", ap.GetChannel())
	require.Equal(t, 4, evs[0].lineReplies, "the press is answered before the approval is published")

	// LINE redelivers it (its answer was lost): dropped.
	status, _ = e.ln.Post(t, url, press.Redelivered())
	require.Equal(t, http.StatusOK, status)

	// Later snoozes the approval in the repair service, as the presser.
	status, _ = e.ln.Post(t, url, e.ln.Postback(lnAlice, approval.CallbackData(approval.Later, rLater)))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, e.lnReply(t, 5), "Snoozed: Vigil asks again later")
	require.Eventually(t, func() bool { return e.repairs.snoozedBy(rLater) == "user:alice" }, 10*time.Second, 10*time.Millisecond)

	// A reply token past its minute: the press cannot be answered, so it
	// is not acted on.
	late := e.ln.Postback(lnAlice, approval.CallbackData(approval.Reject, rReject))
	e.ln.AgeReplyTokens(2 * time.Minute)
	status, _ = e.ln.Post(t, url, late)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool { return len(e.audit(t, "chat.line/RejectRepair")) == 1 }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, []string{"user:alice repair/" + rReject + " Aborted"}, e.audit(t, "chat.line/RejectRepair"))

	require.Len(t, e.ln.Replies(), 5)
	require.Len(t, e.events(), 1, "acted on once")
	require.ElementsMatch(t, []string{
		"line:" + lnStranger + " repair/" + rApprove + " Unauthenticated",
		"user:vera repair/" + rApprove + " PermissionDenied",
		"user:olga repair/" + rApprove + " PermissionDenied",
		"user:alice repair/" + rApprove + " OK",
	}, e.audit(t, "chat.line/ApproveRepair"))
}

// TestLineLink: /link CODE in a 1:1 chat links the LINE account that
// sends it, answered through the reply token; in a group, or a second
// time, the code links nothing.
func TestLineLink(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	url := e.startLine(t)
	ctx := context.Background()
	hasher := access.NewHasher(access.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, 2)
	acc := access.New(access.Options{ChatProviders: []access.ChatProvider{access.Line}}, e.store, e.keys, hasher, "", testkit.Logger(t))
	_, err := acc.CreateUser(ctx, access.User{Name: "bob", Role: auth.RoleOperator, Teams: []string{"payments"}}, "correct horse battery")
	require.NoError(t, err)
	code, err := acc.CreateChatLinkCode(ctx, auth.Principal{Kind: auth.KindUser, Name: "bob"}, access.Line)
	require.NoError(t, err)
	require.Contains(t, code.Instruction(), "LINE")
	bobLine := "U" + strings.Repeat("e5", 16)

	// In a group a code is seen by everyone: not taken, not used up.
	group := e.ln.Text(bobLine, "/link "+code.Code)
	group["source"] = map[string]any{"type": "group", "groupId": "C" + strings.Repeat("f6", 16), "userId": bobLine}
	status, _ := e.ln.Post(t, url, group)
	require.Equal(t, http.StatusOK, status)
	_, err = acc.ChatPrincipal(ctx, access.Line, bobLine)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)

	status, _ = e.ln.Post(t, url, e.ln.Text(bobLine, "/link "+code.Code))
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, "Linked to Vigil user bob.", e.lnReply(t, 1))
	p, err := acc.ChatPrincipal(ctx, access.Line, bobLine)
	require.NoError(t, err)
	require.Equal(t, "bob", p.Name)

	status, _ = e.ln.Post(t, url, e.ln.Text(lnStranger, "/link "+code.Code))
	require.Equal(t, http.StatusOK, status)
	require.Contains(t, e.lnReply(t, 2), "unknown or expired")
	_, err = acc.ChatPrincipal(ctx, access.Line, lnStranger)
	require.ErrorIs(t, err, auth.ErrUnauthenticated)
	require.Len(t, e.ln.Replies(), 2, "no answer in the group")
}

// Without the channel secret the LINE route is not there.
func TestLineWebhookNotSetUp(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	g := e.start(t, gateway.Options{})
	status, out := e.ln.Post(t, "http://"+g.addr+"/api/v1/webhooks/line", e.ln.Text(lnAlice, "/link X"))
	require.Equal(t, http.StatusNotFound, status)
	require.Contains(t, out, "VIGIL_LINE_CHANNEL_SECRET")
}
