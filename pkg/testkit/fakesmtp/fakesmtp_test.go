package fakesmtp_test

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/smtp"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
)

// plainAuth is AUTH PLAIN that, unlike net/smtp's, does not itself refuse
// to run outside TLS: what the fake does is under test.
type plainAuth struct{ user, password string }

func (a plainAuth) Start(*smtp.ServerInfo) (string, []byte, error) {
	return "PLAIN", []byte("\x00" + a.user + "\x00" + a.password), nil
}

func (plainAuth) Next([]byte, bool) ([]byte, error) { return nil, nil }

func dial(t *testing.T, s *fakesmtp.Server) *smtp.Client {
	t.Helper()
	c, err := smtp.Dial(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Close() })
	require.NoError(t, c.Hello("client.test"))
	return c
}

func trust(t *testing.T, s *fakesmtp.Server) *tls.Config {
	t.Helper()
	pem, err := os.ReadFile(s.CAFile(t))
	require.NoError(t, err)
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(pem))
	return &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS12}
}

const mime = "From: Vigil <vigil@example.com>\r\n" +
	"To: a@example.com, b@example.com\r\n" +
	"Subject: =?UTF-8?q?=F0=9F=94=B4_DiskFull?=\r\n" +
	"Message-ID: <m2@example.com>\r\n" +
	"In-Reply-To: <m1@example.com>\r\n" +
	"References: <m1@example.com>\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/alternative; boundary=XX\r\n" +
	"\r\n" +
	"--XX\r\nContent-Type: text/plain; charset=UTF-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" +
	"disk =E2=80=94 full\r\n" +
	"--XX\r\nContent-Type: text/html; charset=UTF-8\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
	"PGI+ZGlzazwvYj4=\r\n" +
	"--XX--\r\n"

func send(c *smtp.Client, body string) error {
	if err := c.Mail("vigil@example.com"); err != nil {
		return err
	}
	for _, to := range []string{"a@example.com", "b@example.com"} {
		if err := c.Rcpt(to); err != nil {
			return err
		}
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write([]byte(body)); err != nil {
		return err
	}
	return w.Close()
}

// AUTH before STARTTLS is refused, and so is mail before AUTH; after
// both, a message is parsed and recorded.
func TestTLSThenAuthThenMail(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := dial(t, s)
	err := c.Auth(plainAuth{fakesmtp.User, fakesmtp.Password})
	require.ErrorContains(t, err, "523")
	require.ErrorContains(t, send(dial(t, s), mime), "530")
	require.Zero(t, s.Auths())

	c = dial(t, s)
	require.NoError(t, c.StartTLS(trust(t, s)))
	require.ErrorContains(t, c.Auth(plainAuth{fakesmtp.User, "wrong"}), "535")
	require.Zero(t, s.Auths())
	c = dial(t, s) // net/smtp quits after a failed AUTH
	require.NoError(t, c.StartTLS(trust(t, s)))
	require.NoError(t, c.Auth(plainAuth{fakesmtp.User, fakesmtp.Password}))
	require.NoError(t, send(c, mime))

	require.Equal(t, 1, s.Auths())
	require.Equal(t, []fakesmtp.Message{{
		MailFrom: "vigil@example.com", RcptTo: []string{"a@example.com", "b@example.com"},
		From: "Vigil <vigil@example.com>", To: []string{"a@example.com", "b@example.com"}, Subject: "🔴 DiskFull",
		MessageID: "<m2@example.com>", InReplyTo: "<m1@example.com>", References: "<m1@example.com>",
		ContentType: "multipart/alternative", Text: "disk — full", HTML: "<b>disk</b>",
	}}, s.Messages())
}

// Injected answers come once each, then mail goes again; a message
// without a Message-ID is refused.
func TestInjectedAnswers(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := dial(t, s)
	require.NoError(t, c.StartTLS(trust(t, s)))
	require.NoError(t, c.Auth(plainAuth{fakesmtp.User, fakesmtp.Password}))
	s.FailNext(451)
	s.FailNext(550)
	require.ErrorContains(t, send(c, mime), "451")
	require.ErrorContains(t, send(c, mime), "550")
	require.ErrorContains(t, send(c, strings.Replace(mime, "Message-ID: <m2@example.com>\r\n", "", 1)), "554")
	require.Empty(t, s.Messages())
	require.NoError(t, send(c, mime))
	require.Len(t, s.Messages(), 1)
}
