package email_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/pkg/approval"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

const (
	publicURL = "https://vigil.example.com"
	incID     = "0b8a3c52-6d1e-4f6a-9c1e-2f4f2b9d7a10"
	repairID  = "5d7e0c1a-3b2f-4e8d-8a6c-1f0e9d8c7b6a"
)

var encryptionKey = []byte("0123456789abcdef0123456789abcdef")

func linkKey(t *testing.T) []byte {
	t.Helper()
	k, err := actionlink.Key(encryptionKey)
	require.NoError(t, err)
	return k
}

// openLinked opens the channel as notify does with VIGIL_ENCRYPTION_KEY
// and VIGIL_PUBLIC_URL set.
func openLinked(t *testing.T, s *fakesmtp.Server) channel.Channel {
	t.Helper()
	o := options(t, s)
	o.To = []string{"oncall@example.com", "Sre Team <sre@example.com>"}
	require.NoError(t, o.Validate())
	ep, err := o.Open(channel.Deps{LinkKey: linkKey(t), PublicURL: publicURL + "/"})
	require.NoError(t, err)
	return ep.Channel
}

func openedWithActions(lang string) message.Message {
	inc := &typesv1.Incident{Id: incID, Title: "DiskFull in shop", Severity: typesv1.Severity_SEVERITY_CRITICAL, FiringCount: 1}
	m := message.IncidentOpened(inc)
	m.Actions = message.IncidentActions(inc)
	m.Locale = message.Locale{Language: lang}
	return m
}

func card(expires time.Time, dec *eventsv1.RepairDecided) message.Message {
	req := &eventsv1.RepairApprovalRequested{RepairId: repairID, IncidentId: incID, ExpiresAt: timestamppb.New(expires)}
	return message.ApprovalCard(req, dec)
}

var textLink = regexp.MustCompile(`(?m)^(.+): (https://\S+)$`)

type sentLink struct {
	label string
	link  actionlink.Link
}

// linksOf are the action links in a message's text part, verified, and
// checked against its HTML part (the same URLs, as buttons).
func linksOf(t *testing.T, m fakesmtp.Message) []sentLink {
	t.Helper()
	var out []sentLink
	for _, g := range textLink.FindAllStringSubmatch(m.Text, -1) {
		require.True(t, strings.HasPrefix(g[2], publicURL+"/api/v1/actions/"), g[2])
		token := strings.TrimPrefix(g[2], publicURL+"/api/v1/actions/")
		l, err := actionlink.Verify(linkKey(t), token, time.Now())
		require.NoError(t, err, g[2])
		require.Contains(t, m.HTML, `<a href="`+g[2]+`" style="`)
		require.Contains(t, m.HTML, `>`+g[1]+`</a>`)
		out = append(out, sentLink{label: g[1], link: l})
	}
	require.NotContains(t, m.HTML, "<script")
	require.NotContains(t, m.HTML, "<img")
	return out
}

// Each address gets its own copy, whose links act as that address's user
// only: one per button of the incident's message, for a day.
func TestIncidentLinksPerRecipient(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := openLinked(t, s)
	id, err := c.Send(t.Context(), openedWithActions("en"), "")
	require.NoError(t, err)

	msgs := s.Messages()
	require.Len(t, msgs, 2)
	for i, r := range []string{"oncall@example.com", "sre@example.com"} {
		m := msgs[i]
		require.Equal(t, []string{r}, m.RcptTo)
		require.NotEqual(t, id, m.MessageID, "each copy has its own id")
		require.Regexp(t, `@ops\.example\.com>$`, m.MessageID)
		ls := linksOf(t, m)
		require.Len(t, ls, 3)
		for j, want := range []struct {
			label string
			verb  approval.Verb
		}{{"Acknowledge", approval.Acknowledge}, {"Escalate", approval.Escalate}, {"Snooze", approval.Snooze}} {
			require.Equal(t, want.label, ls[j].label)
			require.Equal(t, want.verb, ls[j].link.Action)
			require.Equal(t, incID, ls[j].link.Target)
			require.Equal(t, r, ls[j].link.Recipient)
			require.WithinDuration(t, time.Now().Add(24*time.Hour), ls[j].link.Expires, time.Minute)
		}
	}
	require.NotEqual(t, msgs[0].MessageID, msgs[1].MessageID)
}

// The labels are in the channel's language.
func TestLinksInChinese(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	_, err := openLinked(t, s).Send(t.Context(), openedWithActions("zh-TW"), "")
	require.NoError(t, err)
	ls := linksOf(t, s.Messages()[0])
	require.Len(t, ls, 3)
	require.Equal(t, []string{"確認", "升級處理", "暫停提醒"}, []string{ls[0].label, ls[1].label, ls[2].label})
}

// A waiting card has Approve, Reject and Later, valid until the approval
// expires; the decided card, sent as a reply, has none, and each copy of
// it threads under what its address received.
func TestCardLinks(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := openLinked(t, s)
	root, err := c.Send(t.Context(), openedWithActions("en"), "")
	require.NoError(t, err)
	expires := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	id, err := c.Send(t.Context(), card(expires, nil), root)
	require.NoError(t, err)
	dec := &eventsv1.RepairDecided{RepairId: repairID, IncidentId: incID, Outcome: "approved", DecidedBy: "ana"}
	require.NoError(t, c.Edit(t.Context(), id, card(expires, dec)))

	msgs := s.Messages()
	require.Len(t, msgs, 6)
	opened, waiting, decided := msgs[0:2], msgs[2:4], msgs[4:6]
	for i, r := range []string{"oncall@example.com", "sre@example.com"} {
		ls := linksOf(t, waiting[i])
		require.Len(t, ls, 3)
		for j, verb := range []approval.Verb{approval.Approve, approval.Reject, approval.Later} {
			require.Equal(t, verb, ls[j].link.Action)
			require.Equal(t, repairID, ls[j].link.Target)
			require.Equal(t, r, ls[j].link.Recipient)
			require.True(t, expires.Equal(ls[j].link.Expires), "%s, want %s", ls[j].link.Expires, expires)
		}
		require.Equal(t, []string{"Approve", "Reject", "Later"}, []string{ls[0].label, ls[1].label, ls[2].label})
		require.Contains(t, waiting[i].Text, "vigil repairs approve "+repairID, "the CLI's way stays")

		require.Empty(t, linksOf(t, decided[i]))
		require.NotContains(t, decided[i].Text, "/api/v1/actions/")
		require.NotContains(t, decided[i].HTML, "/api/v1/actions/")

		require.Equal(t, []string{r}, waiting[i].RcptTo)
		require.Equal(t, opened[i].MessageID, waiting[i].InReplyTo, "a reply threads under the copy its address got")
		require.Equal(t, opened[i].MessageID, waiting[i].References)
		require.Equal(t, waiting[i].MessageID, decided[i].InReplyTo)
	}
}

// A card past its expiry gets no links (they could only fail).
func TestExpiredCardHasNoLinks(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	_, err := openLinked(t, s).Send(t.Context(), card(time.Now().Add(-time.Minute), nil), "")
	require.NoError(t, err)
	for _, m := range s.Messages() {
		require.Empty(t, linksOf(t, m))
		require.NotContains(t, m.Text, "/api/v1/actions/")
	}
}

// A card's links never outlive a day, however long the approval waits.
func TestCardLinksAtMostADay(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	_, err := openLinked(t, s).Send(t.Context(), card(time.Now().Add(72*time.Hour), nil), "")
	require.NoError(t, err)
	ls := linksOf(t, s.Messages()[0])
	require.Len(t, ls, 3)
	require.WithinDuration(t, time.Now().Add(24*time.Hour), ls[0].link.Expires, time.Minute)
}

// Without a key or a public URL: one message to all, no links, the CLI's
// commands only.
func TestNoLinksWithoutKeyOrURL(t *testing.T) {
	t.Parallel()
	for name, deps := range map[string]channel.Deps{
		"no key": {PublicURL: publicURL},
		"no url": {LinkKey: linkKey(t)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := fakesmtp.Start(t, fakesmtp.Options{})
			ep, err := options(t, s).Open(deps)
			require.NoError(t, err)
			_, err = ep.Send(t.Context(), card(time.Now().Add(time.Hour), nil), "")
			require.NoError(t, err)
			msgs := s.Messages()
			require.Len(t, msgs, 1)
			require.Equal(t, []string{"oncall@example.com", "sre@example.com"}, msgs[0].RcptTo)
			require.NotContains(t, msgs[0].Text, "/api/v1/actions/")
			require.NotContains(t, msgs[0].HTML, "<a href")
			require.Contains(t, msgs[0].Text, "vigil repairs approve "+repairID)
		})
	}
}

// The same delivery sent again has the same ids: a mail client shows it
// once, and replies thread the same.
func TestIDsFollowTheDeliveryKey(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := openLinked(t, s)
	ctx := channel.WithDeliveryKey(t.Context(), "event-1/email/oncall")
	first, err := c.Send(ctx, openedWithActions("en"), "")
	require.NoError(t, err)
	other, err := c.Send(channel.WithDeliveryKey(t.Context(), "event-2/email/oncall"), openedWithActions("en"), "")
	require.NoError(t, err)
	require.NotEqual(t, first, other)

	// Another process (a restart) sends the delivery again.
	again, err := openLinked(t, s).Send(ctx, openedWithActions("en"), "")
	require.NoError(t, err)
	require.Equal(t, first, again)
	msgs := s.Messages()
	require.Len(t, msgs, 6)
	require.Equal(t, msgs[0].MessageID, msgs[4].MessageID)
	require.Equal(t, msgs[1].MessageID, msgs[5].MessageID)
}

// progress is a delivery's progress as notify keeps it in its schema.
type progress struct {
	mu   sync.Mutex
	done []string
}

func (p *progress) Done(part string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Contains(p.done, part)
}

func (p *progress) Accepted(_ context.Context, part string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done = append(p.done, part)
	return nil
}

// One address refused: a passing refusal (451) after the first address
// was written to fails the attempt, and the retry, by another process
// (a restart), writes only to that address: each gets one copy. A
// refusal for good (550) of one address is no failure while another has
// the message, and is when no address does.
func TestPartialFailure(t *testing.T) {
	t.Parallel()
	t.Run("451 then retry", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{})
		p := &progress{}
		ctx := channel.WithProgress(channel.WithDeliveryKey(t.Context(), "event-1/email/oncall"), p)
		s.PassNext()    // the first copy, oncall's
		s.FailNext(451) // then sre's
		_, err := openLinked(t, s).Send(ctx, openedWithActions("en"), "")
		require.Error(t, err)
		require.True(t, channel.Judge(err).Retry, "%v", err)
		require.Contains(t, err.Error(), "sre@example.com")
		msgs := s.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, []string{"oncall@example.com"}, msgs[0].RcptTo)
		require.Len(t, p.done, 1, "oncall's copy recorded before the next was sent")

		_, err = openLinked(t, s).Send(ctx, openedWithActions("en"), "")
		require.NoError(t, err)
		msgs = s.Messages()
		require.Len(t, msgs, 2, "oncall's copy is not sent twice")
		require.Equal(t, []string{"sre@example.com"}, msgs[1].RcptTo)
		require.Len(t, p.done, 2)
	})
	t.Run("550 for one", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{})
		s.FailNext(550)
		_, err := openLinked(t, s).Send(t.Context(), openedWithActions("en"), "")
		require.NoError(t, err)
		msgs := s.Messages()
		require.Len(t, msgs, 1)
		require.Equal(t, []string{"sre@example.com"}, msgs[0].RcptTo)
	})
	t.Run("550 for all", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{})
		s.FailNext(550)
		s.FailNext(550)
		_, err := openLinked(t, s).Send(t.Context(), openedWithActions("en"), "")
		require.Error(t, err)
		require.False(t, channel.Judge(err).Retry, "%v", err)
		require.Empty(t, s.Messages())
	})
}
