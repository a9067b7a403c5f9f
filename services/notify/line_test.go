package notify_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
	"github.com/vigil-ops/vigil/services/notify"
	"github.com/vigil-ops/vigil/services/notify/channel/line"
)

const lineTo = "C4af4980629a0b1c2d3e4f5a6b7c8d9e0"

// startLine runs notify pushing to LINE group lineTo only.
func startLine(t *testing.T) (*env, *fakeline.Server) {
	t.Helper()
	e := newEnv(t, "", "")
	ln := fakeline.New(t, fakeline.Options{To: []string{lineTo}})
	e.opts.Channels = append(e.opts.Channels, line.Options{ChannelToken: ln.Token(), To: lineTo, APIURL: ln.URL()})
	e.run(t)
	return e, ln
}

// flexTexts are the texts of a Flex bubble's components, in order, and
// the types of every component.
func flexTexts(t *testing.T, raw json.RawMessage) (texts, types []string) {
	t.Helper()
	type comp struct {
		Type     string `json:"type"`
		Text     string `json:"text"`
		Contents []json.RawMessage
	}
	var walk func(json.RawMessage)
	walk = func(r json.RawMessage) {
		var c comp
		require.NoError(t, json.Unmarshal(r, &c))
		types = append(types, c.Type)
		if c.Text != "" {
			texts = append(texts, c.Text)
		}
		for _, cc := range c.Contents {
			walk(cc)
		}
	}
	var b struct{ Header, Body, Footer json.RawMessage }
	require.NoError(t, json.Unmarshal(raw, &b))
	for _, part := range []json.RawMessage{b.Header, b.Body, b.Footer} {
		if part != nil {
			walk(part)
		}
	}
	return texts, types
}

// The incident's conversation in a LINE group: the incident as a bubble
// with its Acknowledge button, the analysis as text (outside text shown as it is: LINE has no markup),
// the approval card as a Flex bubble with postback buttons, the decision as a
// message of its own (LINE edits nothing); redelivered, nothing is
// pushed twice.
func TestLineConversation(t *testing.T) {
	t.Parallel()
	e, ln := startLine(t)
	inc := opened()
	e.publish(t, inc)
	first := ln.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Equal(t, "flex", first.Type, "a bubble, for its Acknowledge button")
	assert.Equal(t, lineTo, first.To)
	assert.Contains(t, first.AltText, "Incident opened: DiskFull in <prod>")
	texts, _ := flexTexts(t, first.Contents)
	assert.Contains(t, strings.Join(texts, "\n"), "Incident opened: DiskFull in <prod>")
	assert.Contains(t, string(first.Contents), `"data":"`+approval.CallbackData(approval.Acknowledge, inc.GetIncident().GetId())+`"`)

	e.publish(t, completed(inc.GetIncident().GetId()))
	analysis := ln.WaitForMessages(t, 2, 30*time.Second)[1]
	assert.Contains(t, analysis.Text, "🔎 Analysis: checkout crash-loops <script>alert(1)</script> & restarts")

	req := approvalRequested(inc.GetIncident().GetId())
	id := req.GetRepairId()
	e.publish(t, req)
	card := ln.WaitForMessages(t, 3, 30*time.Second)[2]
	require.Equal(t, "flex", card.Type)
	assert.Equal(t, "🛠 shop · Approval needed: Roll back shop/checkout to revision 3", card.AltText)
	texts, types := flexTexts(t, card.Contents)
	assert.Contains(t, types, "button")
	for _, v := range []approval.Verb{approval.Approve, approval.Reject, approval.Later} {
		assert.Contains(t, string(card.Contents), `"data":"`+approval.CallbackData(v, id)+`"`, "the %s button posts back", v)
	}
	all := strings.Join(texts, "\n")
	for _, want := range []string{
		"🛠 shop · Approval needed: Roll back shop/checkout to revision 3",
		"Incident", inc.GetIncident().GetId(),
		"Target", "Deployment shop/checkout",
		`revision 4 exits 1 </b><script>alert("x")</script> & <!channel>`,
		"Confidence", "80%", "Expected downtime", "30 seconds",
		"• risk MEDIUM is above max_auto_risk LOW",
		"2026-05-01 12:30:00 UTC",
		"Engine: llm:openai · model gpt-4o-mini · tokens 1200 in / 300 out · cost $0.0042",
		"vigil repairs approve " + id,
	} {
		assert.Contains(t, all, want)
	}

	dec := decidedEvent(req, "rejected", "user:bob", "slack")
	dec.Reason = "not during the <sale>"
	e.publish(t, dec)
	decided := ln.WaitForMessages(t, 4, 30*time.Second)[3]
	assert.Equal(t, "text", decided.Type)
	assert.Contains(t, decided.Text, "❌ Rejected by user:bob in Slack at 2026-05-01 12:05:03 UTC: not during the <sale>")
	assert.Contains(t, decided.Text, "Roll back shop/checkout to revision 3")

	e.redeliver(t, inc)
	e.redeliver(t, req)
	e.redeliver(t, dec)
	require.Never(t, func() bool { return len(ln.Messages()) > 4 }, 2*time.Second, 100*time.Millisecond)
	for _, evt := range []string{inc.GetMeta().GetId(), req.GetMeta().GetId(), dec.GetMeta().GetId()} {
		assert.Equal(t, []string{"sent:200"}, e.attemptsOn(t, evt, line.Name))
	}
	keys := map[string]bool{}
	for _, r := range ln.Requests() {
		assert.Equal(t, http.StatusOK, r.StatusCode)
		assert.NotEmpty(t, r.RetryKey)
		keys[r.RetryKey] = true
	}
	assert.Len(t, keys, 4, "a retry key per event")
}

// A 429 from LINE (no Retry-After) is retried after a backoff, with the
// same retry key: LINE sends the message once even had the first push
// gone through.
func TestLineRateLimitIsRetried(t *testing.T) {
	t.Parallel()
	e, ln := startLine(t)
	ln.RateLimitNext(1)
	inc := opened()
	e.publish(t, inc)
	ln.WaitForMessages(t, 1, 30*time.Second)
	require.Eventually(t, func() bool { return len(e.attemptsOn(t, inc.GetMeta().GetId(), line.Name)) == 2 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"retry:429", "sent:200"}, e.attemptsOn(t, inc.GetMeta().GetId(), line.Name))
	reqs := ln.Requests()
	require.Len(t, reqs, 2)
	assert.Equal(t, http.StatusTooManyRequests, reqs[0].StatusCode)
	assert.Equal(t, reqs[0].RetryKey, reqs[1].RetryKey)
	assert.Len(t, ln.Messages(), 1)
}

// A recipient LINE does not know fails for good, once, and sends
// nothing.
func TestLineUnknownRecipient(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "", "")
	ln := fakeline.New(t, fakeline.Options{To: []string{lineTo}})
	e.opts.Channels = append(e.opts.Channels, line.Options{ChannelToken: ln.Token(), To: "Uffffffffffffffffffffffffffffffff", APIURL: ln.URL()})
	e.run(t)
	inc := opened()
	e.publish(t, inc)
	require.Eventually(t, func() bool { return len(e.attemptsOn(t, inc.GetMeta().GetId(), line.Name)) == 1 }, 10*time.Second, 20*time.Millisecond)
	assert.Equal(t, []string{"failed:400"}, e.attemptsOn(t, inc.GetMeta().GetId(), line.Name))
	assert.Empty(t, ln.Messages())
}

func TestLineOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		opts line.Options
		want string
	}{
		{opts: line.Options{}},
		{opts: line.Options{ChannelToken: "secret-token", To: lineTo}},
		{opts: line.Options{ChannelToken: "secret-token"}, want: "VIGIL_LINE_TO: missing"},
		{opts: line.Options{To: lineTo}, want: "VIGIL_LINE_CHANNEL_TOKEN: missing"},
		{opts: line.Options{ChannelToken: "secret-token", To: "@vigil"}, want: `VIGIL_LINE_TO: "@vigil" is not a LINE id`},
	} {
		var opts notify.Options
		opts.Channels = append(opts.Channels, tt.opts)
		err := opts.Validate()
		if tt.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, tt.want)
		require.NotContains(t, err.Error(), "secret")
	}
}
