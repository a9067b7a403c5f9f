package actionlink

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/approval"
)

const target = "01a23898-f34e-77f2-88f0-5551a310d725"

func testKey(t testing.TB) []byte {
	t.Helper()
	k, err := Key([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	return k
}

func TestMintVerify(t *testing.T) {
	t.Parallel()
	key, now := testKey(t), time.Now()
	for _, v := range []approval.Verb{approval.Acknowledge, approval.Escalate, approval.Snooze, approval.Approve, approval.Reject, approval.Later} {
		tok, err := Mint(key, v, target, "alice@example.com", time.Hour)
		require.NoError(t, err)
		require.Less(t, len(tok), 120, "short enough for a link in an email")
		require.Equal(t, base64.RawURLEncoding.EncodeToString(mustDecode(t, tok)), tok, "URL-safe, unpadded")
		l, err := Verify(key, tok, now)
		require.NoError(t, err)
		require.Equal(t, v, l.Action)
		require.Equal(t, target, l.Target)
		require.Equal(t, "alice@example.com", l.Recipient)
		require.WithinDuration(t, now.Add(time.Hour), l.Expires, 2*time.Second)
		require.Len(t, l.ID, 16)
	}
	a, err := Mint(key, approval.Acknowledge, target, "alice@example.com", time.Hour)
	require.NoError(t, err)
	b, err := Mint(key, approval.Acknowledge, target, "alice@example.com", time.Hour)
	require.NoError(t, err)
	la, _ := Verify(key, a, now)
	lb, _ := Verify(key, b, now)
	require.NotEqual(t, la.ID, lb.ID, "each link is used once: each has its own id")
}

func mustDecode(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	require.NoError(t, err)
	return b
}

func TestVerifyRefuses(t *testing.T) {
	t.Parallel()
	key, now := testKey(t), time.Now()
	tok, err := Mint(key, approval.Approve, target, "alice@example.com", time.Minute)
	require.NoError(t, err)

	_, err = Verify(key, tok, now.Add(time.Minute+time.Second))
	require.ErrorIs(t, err, ErrExpired)

	other, err := Key([]byte("another key of 32 bytes, really!"))
	require.NoError(t, err)
	_, err = Verify(other, tok, now)
	require.ErrorIs(t, err, ErrInvalid, "another Vigil's key")

	raw := mustDecode(t, tok)
	for i := range raw {
		tampered := append([]byte(nil), raw...)
		tampered[i] ^= 1
		_, err := Verify(key, base64.RawURLEncoding.EncodeToString(tampered), now)
		require.ErrorIs(t, err, ErrInvalid, "byte %d changed", i)
	}
	// Another recipient, with the MAC kept: refused.
	swapped := append(append([]byte(nil), raw[:headerLen]...), "mallory@example.com"...)
	swapped = append(swapped, raw[len(raw)-macLen:]...)
	_, err = Verify(key, base64.RawURLEncoding.EncodeToString(swapped), now)
	require.ErrorIs(t, err, ErrInvalid)
	for _, bad := range []string{"", "x", tok + "=", tok[:len(tok)-1], "!" + tok[1:]} {
		_, err := Verify(key, bad, now)
		require.ErrorIs(t, err, ErrInvalid, bad)
	}

	_, err = Mint(key, approval.Silence, target, "alice@example.com", time.Hour)
	require.Error(t, err, "no link silences")
	_, err = Mint(key, approval.Approve, "not-an-id", "alice@example.com", time.Hour)
	require.Error(t, err)
	_, err = Mint(key, approval.Approve, target, "", time.Hour)
	require.Error(t, err)
	_, err = Key([]byte("short"))
	require.Error(t, err)
}

func FuzzVerify(f *testing.F) {
	key := testKey(f)
	tok, err := Mint(key, approval.Snooze, target, "alice@example.com", time.Hour)
	require.NoError(f, err)
	f.Add(tok)
	f.Add("")
	f.Add("AQ")
	f.Fuzz(func(t *testing.T, s string) {
		l, err := Verify(key, s, time.Unix(0, 0))
		if err != nil {
			require.Equal(t, Link{}, l, "nothing of an invalid token is returned")
			return
		}
		// Only what Mint made (with this key) verifies: remint it with
		// its own id and expiry, and it is the same token.
		id := mustDecode(t, s)[26:headerLen]
		again, err := mint(key, l.Action, l.Target, l.Recipient, l.Expires, func(b []byte) (int, error) { return copy(b, id), nil })
		require.NoError(t, err)
		require.Equal(t, s, again)
	})
}
