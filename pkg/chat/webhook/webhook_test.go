package webhook_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	hook "github.com/vigil-ops/vigil/pkg/chat/webhook"
)

const secret = "s3cret-for-tests"

// Verify accepts what Sign made, within the tolerance, and nothing
// tampered with, signed with another secret, stale or unsigned.
func TestVerify(t *testing.T) {
	t.Parallel()
	body := []byte(`{"id":"x"}`)
	now := time.Unix(1_700_000_000, 0)
	good := hook.Sign(secret, body, now)
	for _, tc := range []struct {
		name   string
		secret string
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"good", secret, good, body, now, nil},
		{"within the tolerance", secret, good, body, now.Add(4 * time.Minute), nil},
		{"rotated: one of two matches", secret, hook.Sign("old", body, now) + "," + good[len("t=1700000000,"):], body, now, nil},
		{"tampered body", secret, good, []byte(`{"id":"y"}`), now, hook.ErrNoSignature},
		{"other secret", "other", good, body, now, hook.ErrNoSignature},
		{"too old", secret, good, body, now.Add(6 * time.Minute), hook.ErrTooOld},
		{"from the future", secret, good, body, now.Add(-6 * time.Minute), hook.ErrTooOld},
		{"no header", secret, "", body, now, hook.ErrNoSignature},
		{"no signature", secret, "t=1700000000", body, now, hook.ErrNoSignature},
		{"timestamp moved", secret, "t=1700000001," + good[len("t=1700000000,"):], body, now, hook.ErrNoSignature},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := hook.Verify(tc.secret, tc.header, tc.body, tc.now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
}
