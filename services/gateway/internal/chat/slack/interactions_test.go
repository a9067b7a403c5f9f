package slack_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	slackapi "github.com/vigil-ops/vigil/pkg/chat/slack"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat"
	"github.com/vigil-ops/vigil/services/gateway/internal/chat/slack"
)

// inline runs work at once, or refuses it all (busy).
type inline struct{ busy bool }

func (r inline) Go(ctx context.Context, work func(context.Context)) bool {
	if r.busy {
		return false
	}
	work(ctx)
	return true
}

type presses struct{ got []chat.Press }

func (p *presses) Handle(_ context.Context, press chat.Press, _ chat.Responder) {
	p.got = append(p.got, press)
}

func interactions(p *presses, busy bool) *slack.Interactions {
	return &slack.Interactions{
		SigningSecret: signingSecret, Approvals: p, Runner: inline{busy: busy},
		HTTP: http.DefaultClient, MaxBytes: 1 << 16, Log: slog.New(slog.DiscardHandler),
	}
}

func postSigned(h http.Handler, body string) *httptest.ResponseRecorder {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	req := httptest.NewRequest(http.MethodPost, "/api/v1/webhooks/slack/interactions", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set(slackapi.TimestampHeader, ts)
	req.Header.Set(slackapi.SignatureHeader, slackapi.Sign(signingSecret, ts, []byte(body)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func payload(json string) string { return url.Values{"payload": {json}}.Encode() }

func TestInteractions(t *testing.T) {
	t.Parallel()
	id := uuid.NewString()
	press := `{"type":"block_actions","user":{"id":"U1ALICE","team_id":"THOME"},"team":{"id":"T0WORK"},` +
		`"response_url":"https://hooks.slack.com/actions/T0WORK/1/x","actions":[{"action_id":"` +
		approval.SlackActionID(approval.Reject) + `","value":"` + id + `"}]}`
	p := &presses{}
	rec := postSigned(interactions(p, false), payload(press))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Empty(t, rec.Body.String())
	require.Equal(t, []chat.Press{{Provider: access.Slack, Account: "T0WORK:U1ALICE", Verb: approval.Reject, RepairID: id}}, p.got)

	// Not Vigil's button: handed on as such, to be refused and audited.
	p = &presses{}
	rec = postSigned(interactions(p, false), payload(strings.Replace(press, "vigil_repair_reject", "other_app_button", 1)))
	require.Equal(t, http.StatusOK, rec.Code)
	require.Equal(t, []chat.Press{{Provider: access.Slack, Account: "T0WORK:U1ALICE"}}, p.got)

	// Other interactions are acknowledged and left alone.
	p = &presses{}
	for _, body := range []string{
		payload(`{"type":"view_submission","user":{"id":"U1"}}`),
		payload(`{"type":"block_actions","user":{"id":"U1"},"actions":[]}`),
	} {
		require.Equal(t, http.StatusOK, postSigned(interactions(p, false), body).Code)
	}
	require.Empty(t, p.got)

	require.Equal(t, http.StatusBadRequest, postSigned(interactions(p, false), "payload=%7Bnot+json").Code)
	require.Equal(t, http.StatusBadRequest, postSigned(interactions(p, false), "no payload").Code)

	// Too busy: Slack shows the person an error, and they press again.
	rec = postSigned(interactions(p, true), payload(press))
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Empty(t, p.got)
}

// FuzzInteractions: whatever a signed body holds, the answer is 200 or
// 400, and a press handed on is a workspace-qualified member's, with a
// verb and a repair id from Vigil's buttons or none.
func FuzzInteractions(f *testing.F) {
	id := uuid.NewString()
	for _, s := range []string{
		payload(`{"type":"block_actions","user":{"id":"U1"},"team":{"id":"T1"},"actions":[{"action_id":"vigil_repair_approve","value":"` + id + `"}]}`),
		payload(`{"type":"block_actions","user":{"id":"U1","team_id":"T1"},"actions":[{"action_id":"vigil_repair_x","value":"1"}]}`),
		payload(`{"type":"block_actions","actions":[{}]}`),
		"payload=null", "payload=%5B%5D", "", "a=b&payload=",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, body string) {
		p := &presses{}
		rec := postSigned(interactions(p, false), body)
		require.Contains(t, []int{http.StatusOK, http.StatusBadRequest}, rec.Code)
		for _, got := range p.got {
			require.Equal(t, access.Slack, got.Provider)
			require.Contains(t, got.Account, ":")
			if got.Verb == "" {
				require.Empty(t, got.RepairID)
			} else {
				require.Contains(t, approval.Verbs, got.Verb)
				require.NoError(t, uuid.Validate(got.RepairID))
			}
		}
	})
}
