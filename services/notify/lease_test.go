package notify_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/proto"
)

// A send that outlasts its lease many times over keeps its claim while
// its sender lives -- the sender renews it -- so the other replica never
// takes it over: one message, its one attempt sent.
func TestLiveClaimIsRenewed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	e.opts.Lease = 300 * time.Millisecond
	e.run(t)
	e.run(t)
	e.tg.Hold()
	inc := opened()
	e.publish(t, inc)
	require.Eventually(t, func() bool { return e.tg.Holding() == 1 }, 20*time.Second, 10*time.Millisecond)
	require.Never(t, func() bool { return e.tg.Holding() > 1 }, 2*time.Second, 50*time.Millisecond, "nobody took the claim over")
	e.tg.Release()
	require.Eventually(t, func() bool {
		return slices.Equal(e.attempts(t, inc.GetMeta().GetId()), []string{"sent:200"})
	}, 20*time.Second, 20*time.Millisecond)
	assert.Len(t, e.tg.Messages(), 1)
}

// A claim left by a replica that died is taken over once its lease ends,
// by a notify that was running all along: nothing stays stuck. Telegram
// cannot say whether the dead replica posted it, so it goes marked as a
// possible repeat.
func TestDeadReplicasClaimIsTakenOver(t *testing.T) {
	t.Parallel()
	e := newEnv(t, chatID, "")
	e.run(t)
	inc := opened()
	payload, err := proto.Marshal(inc)
	require.NoError(t, err)
	_, err = e.pool.Exec(context.Background(), `INSERT INTO deliveries
			(event_id, channel, subject, target, status, payload, due_at, claimed_by, lease_until, posted_at)
		VALUES ($1, 'telegram', 'incident.opened', $2, 'sending', $3, now(), 'dead-replica', now() + interval '1 second', now())`,
		inc.GetMeta().GetId(), chatID, payload)
	require.NoError(t, err)

	msgs := e.tg.WaitForMessages(t, 1, 30*time.Second)
	assert.True(t, strings.HasPrefix(msgs[0].PlainText, "⚠️ Possibly a repeat"), msgs[0].PlainText)
	require.Eventually(t, func() bool {
		return slices.Equal(e.attempts(t, inc.GetMeta().GetId()), []string{"sent:200"})
	}, 20*time.Second, 20*time.Millisecond)
	var claimedBy string
	require.NoError(t, e.pool.QueryRow(context.Background(),
		`SELECT claimed_by FROM deliveries WHERE event_id = $1`, inc.GetMeta().GetId()).Scan(&claimedBy))
	assert.Empty(t, claimedBy, "the claim ended with its record")
}
