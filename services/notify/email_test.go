package notify_test

import (
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
)

// An incident's conversation by email: its message opens the thread, the
// analysis and the repair's outcome answer it (In-Reply-To, References,
// "Re:" subject), everything from the alert and the LLM escaped in the
// HTML; redelivered events send nothing twice.
func TestEmailThread(t *testing.T) {
	t.Parallel()
	smtp := fakesmtp.Start(t, fakesmtp.Options{})
	e := newEnv(t, "", "")
	e.opts.Channels = append(e.opts.Channels, email.Options{
		Host: smtp.Host, Port: smtp.Port, TLS: email.TLSStartTLS, CAFile: smtp.CAFile(t),
		Username: fakesmtp.User, Password: fakesmtp.Password,
		From: "Vigil <vigil@ops.example.com>", To: []string{"oncall@example.com"},
	})
	e.run(t)

	inc := opened()
	e.publish(t, inc)
	root := smtp.WaitForMessages(t, 1, 30*time.Second)[0]
	assert.Equal(t, "[Vigil] 🔴 Incident opened: DiskFull in <prod>", root.Subject)
	assert.Empty(t, root.InReplyTo)
	assert.Contains(t, root.HTML, "<b>Incident opened: DiskFull in &lt;prod&gt;</b>")
	assert.Contains(t, root.Text, "Incident opened: DiskFull in <prod>")

	a := completed(inc.GetIncident().GetId())
	e.publish(t, a)
	// Analyses and repairs come on streams of their own: the outcome is
	// published once the analysis is out, to know the order.
	smtp.WaitForMessages(t, 2, 30*time.Second)
	ok := &eventsv1.RepairSucceeded{
		Meta: bus.NewMeta("repair", nil), RepairId: "repair-1", IncidentId: inc.GetIncident().GetId(), Proposal: rollback(),
		Verification: "3/3 replicas updated & available",
	}
	e.publish(t, ok)
	msgs := smtp.WaitForMessages(t, 3, 30*time.Second)
	require.Len(t, msgs, 3)
	for _, m := range msgs[1:] {
		assert.Equal(t, root.MessageID, m.InReplyTo, "in the incident's thread")
		assert.Equal(t, root.MessageID, m.References)
		assert.Equal(t, "Re: "+root.Subject, m.Subject)
		assert.NotEqual(t, root.MessageID, m.MessageID)
	}
	assert.Contains(t, msgs[1].HTML, "Analysis: checkout crash-loops &lt;script&gt;alert(1)&lt;/script&gt; &amp; restarts")
	assert.NotContains(t, msgs[1].HTML, "<script>")
	assert.Contains(t, msgs[2].Text, "Repaired: Roll back shop/checkout to revision 3")
	require.Equal(t, []string{"sent:200"}, e.attemptsOn(t, a.GetMeta().GetId(), email.Name))

	// The same events again, as JetStream redelivers them: nothing more.
	e.redeliver(t, inc)
	e.redeliver(t, a)
	e.redeliver(t, ok)
	require.Never(t, func() bool { return len(smtp.Messages()) > 3 }, 2*time.Second, 100*time.Millisecond)
	require.Equal(t, []string{"sent:200"}, e.attemptsOn(t, inc.GetMeta().GetId(), email.Name))
}

// Each address gets its own copy (action links): one accepted, the next
// refused for now (451), the delivery is retried, and the retry writes
// only to the address that has none. The copy accepted is recorded in
// notify's schema as it is accepted (the channel keeps nothing in
// memory), so a retry by another replica or after a restart skips it too.
func TestEmailRetryWritesOnlyToAddressesWithoutACopy(t *testing.T) {
	t.Parallel()
	smtp := fakesmtp.Start(t, fakesmtp.Options{})
	e := newEnv(t, "", "")
	e.opts.EncryptionKey, e.opts.PublicURL = keyFor(), "https://vigil.example.com"
	e.opts.Channels = append(e.opts.Channels, email.Options{
		Host: smtp.Host, Port: smtp.Port, TLS: email.TLSStartTLS, CAFile: smtp.CAFile(t),
		Username: fakesmtp.User, Password: fakesmtp.Password,
		From: "Vigil <vigil@ops.example.com>", To: []string{"ana@example.com", "bob@example.com"},
	})
	smtp.PassNext()    // ana's copy
	smtp.FailNext(451) // bob's, this time
	e.run(t)

	inc := opened()
	e.publish(t, inc)
	require.Eventually(t, func() bool {
		return slices.Equal(e.attemptsOn(t, inc.GetMeta().GetId(), email.Name), []string{"retry:451", "sent:200"})
	}, 30*time.Second, 50*time.Millisecond, "retried, then sent")
	var parts []string
	require.NoError(t, e.pool.QueryRow(t.Context(), `SELECT parts FROM deliveries WHERE event_id = $1`, inc.GetMeta().GetId()).Scan(&parts))
	require.Len(t, parts, 2, "both copies recorded")
	got := map[string]int{}
	for _, m := range smtp.Messages() {
		for _, to := range m.RcptTo {
			got[to]++
		}
	}
	require.Equal(t, map[string]int{"ana@example.com": 1, "bob@example.com": 1}, got, "one copy each")
}
