package notify_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

// messagesOf lists incident id's messages as p, once want of them are
// final (sent or failed): a fake has a message a moment before its
// sender records it.
func messagesOf(t *testing.T, api notifyv1.ChannelServiceServer, id string, want int) []*notifyv1.IncidentMessage {
	t.Helper()
	var ms []*notifyv1.IncidentMessage
	require.Eventually(t, func() bool {
		r, err := api.ListIncidentMessages(as(olga), &notifyv1.ListIncidentMessagesRequest{IncidentId: id})
		if err != nil {
			return false
		}
		ms = r.GetMessages()
		final := 0
		for _, m := range ms {
			if m.GetStatus() == "sent" || m.GetStatus() == "failed" {
				final++
			}
		}
		return final == want
	}, 30*time.Second, 20*time.Millisecond)
	return ms
}

// openPayments publishes the opening of a new incident of team payments.
func (e *env) openPayments(t *testing.T) *eventsv1.IncidentOpened {
	t.Helper()
	inc := opened()
	inc.Incident.Id, inc.Incident.Team = uuid.NewString(), "payments"
	e.publish(t, inc)
	return inc
}

// What notify told the channels of an incident, per channel: the
// announcement and the resolution in Telegram (a supergroup: t.me/c links)
// and Slack (the workspace's permalinks, its URL asked of Slack once), a
// delivery Telegram refused with its error and no link; the incident's team
// reads them, another team is refused and an unknown incident is not found.
func TestListIncidentMessages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	api := e.replica(t, true)

	inc := e.openPayments(t)
	e.tg.WaitForMessages(t, 1, 30*time.Second)
	e.sl.WaitForMessages(t, 1, 30*time.Second)
	messagesOf(t, api, inc.GetIncident().GetId(), 2)
	e.publish(t, &eventsv1.IncidentResolved{Meta: bus.NewMeta("monitor", nil), Incident: inc.GetIncident()})
	ms := messagesOf(t, api, inc.GetIncident().GetId(), 4)

	tg, sl := e.tg.WaitForMessages(t, 2, 30*time.Second), e.sl.WaitForMessages(t, 2, 30*time.Second)
	type shown struct{ channel, kind, subject, status, target, link string }
	var got []shown
	for _, m := range ms {
		got = append(got, shown{m.GetChannel(), m.GetKind(), m.GetSubject(), m.GetStatus(), m.GetTarget(), m.GetLink()})
		assert.Empty(t, m.GetError())
		assert.False(t, m.GetCreateTime().AsTime().IsZero())
	}
	tgLink := func(i int) string { return "https://t.me/c/1234567890/" + strconv.FormatInt(tg[i].MessageID, 10) }
	slLink := func(i int) string {
		return "https://vigil-test.slack.com/archives/" + channel + "/p" + strings.ReplaceAll(sl[i].TS, ".", "")
	}
	assert.ElementsMatch(t, []shown{
		{"telegram", "telegram", "incident.opened", "sent", chatID, tgLink(0)},
		{"slack", "slack", "incident.opened", "sent", channel, slLink(0)},
		{"telegram", "telegram", "incident.resolved", "sent", chatID, tgLink(1)},
		{"slack", "slack", "incident.resolved", "sent", channel, slLink(1)},
	}, got)
	authTests := 0
	for _, r := range e.sl.Requests() {
		if r.Method == "auth.test" {
			authTests++
		}
	}
	assert.Equal(t, 1, authTests, "Slack's workspace is asked once, not per message or per list")

	// Telegram refuses the next incident's message for good.
	e.tg.FailNext(1, 400)
	refused := e.openPayments(t)
	var failed *notifyv1.IncidentMessage
	for _, m := range messagesOf(t, api, refused.GetIncident().GetId(), 2) {
		if m.GetChannel() == "telegram" {
			failed = m
		}
	}
	require.NotNil(t, failed)
	assert.Equal(t, "failed", failed.GetStatus())
	assert.Contains(t, failed.GetError(), "400")
	assert.Empty(t, failed.GetLink())
	assert.Empty(t, failed.GetMessageId())

	_, err := api.ListIncidentMessages(as(oscar), &notifyv1.ListIncidentMessagesRequest{IncidentId: inc.GetIncident().GetId()})
	assert.Equal(t, codes.PermissionDenied, status.Code(err), "another team's operator")
	assert.NotContains(t, status.Convert(err).Message(), inc.GetIncident().GetTitle(), "the refusal tells nothing of the incident")
	_, err = api.ListIncidentMessages(as(admin), &notifyv1.ListIncidentMessagesRequest{IncidentId: uuid.NewString()})
	assert.Equal(t, codes.NotFound, status.Code(err))
	_, err = api.ListIncidentMessages(context.Background(), &notifyv1.ListIncidentMessagesRequest{})
	assert.Equal(t, codes.InvalidArgument, status.Code(err))
}

// An incident's messages page in the order they were queued.
func TestListIncidentMessagesPages(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, channel)
	api := e.replica(t, true)
	inc := e.openPayments(t)
	all := messagesOf(t, api, inc.GetIncident().GetId(), 2)

	first, err := api.ListIncidentMessages(as(olga), &notifyv1.ListIncidentMessagesRequest{IncidentId: inc.GetIncident().GetId(), PageSize: 1})
	require.NoError(t, err)
	require.Len(t, first.GetMessages(), 1)
	require.NotEmpty(t, first.GetNextPageToken())
	second, err := api.ListIncidentMessages(as(olga), &notifyv1.ListIncidentMessagesRequest{
		IncidentId: inc.GetIncident().GetId(), PageSize: 1, PageToken: first.GetNextPageToken(),
	})
	require.NoError(t, err)
	require.Len(t, second.GetMessages(), 1)
	assert.Empty(t, second.GetNextPageToken())
	assert.Equal(t, []string{all[0].GetChannel(), all[1].GetChannel()},
		[]string{first.GetMessages()[0].GetChannel(), second.GetMessages()[0].GetChannel()})
}
