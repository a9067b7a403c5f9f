package line_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/chat/line"
	"github.com/vigil-ops/vigil/pkg/testkit/fakeline"
)

func TestVerify(t *testing.T) {
	t.Parallel()
	const secret = "8f742231b10e8888abcd99yyyzzz85a5"
	body := []byte(`{"destination":"U1","events":[]}`)
	good := line.Sign(secret, body)
	for _, tc := range []struct {
		name, secret, signature string
		body                    []byte
		want                    error
	}{
		{"good", secret, good, body, nil},
		{"unsigned", secret, "", body, line.ErrUnsigned},
		{"other secret", "another secret", good, body, line.ErrBadSignature},
		{"tampered body", secret, good, []byte(`{"destination":"U2","events":[]}`), line.ErrBadSignature},
		{"not base64", secret, "v0=abc", body, line.ErrBadSignature},
		{"no secret", "", line.Sign("", body), body, line.ErrBadSignature},
	} {
		require.ErrorIs(t, line.Verify(tc.secret, tc.signature, tc.body), tc.want, tc.name)
		if tc.want == nil {
			require.NoError(t, line.Verify(tc.secret, tc.signature, tc.body), tc.name)
		}
	}
}

// What fakeline signs, as LINE does, Verify takes; a handler refusing
// the rest sees a tampered body as such.
func TestVerifyFakeWebhook(t *testing.T) {
	t.Parallel()
	fake := fakeline.New(t, fakeline.Options{})
	var bodies []string
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if line.Verify(fake.ChannelSecret(), r.Header.Get(line.SignatureHeader), body) != nil {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		bodies = append(bodies, string(body))
	})
	resp := fake.Send(t, h, fake.Postback("U"+strings.Repeat("de", 16), "a:1"))
	require.Equal(t, http.StatusOK, resp.Code)
	require.Len(t, bodies, 1)
	require.Contains(t, bodies[0], `"data":"a:1"`)

	signed := []byte(`{"destination":"U1","events":[]}`)
	resp = fake.SendRaw(h, []byte(`{"destination":"U2","events":[]}`), fakeline.Sign(fake.ChannelSecret(), signed))
	require.Equal(t, http.StatusUnauthorized, resp.Code)
	resp = fake.SendRaw(h, signed, "")
	require.Equal(t, http.StatusUnauthorized, resp.Code)
	require.Len(t, bodies, 1, "nothing more was taken")
}
