package email_test

import (
	"context"
	"net"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/testkit/fakesmtp"
	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/channel/email"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

func options(t *testing.T, s *fakesmtp.Server) email.Options {
	t.Helper()
	return email.Options{
		Host: s.Host, Port: s.Port, TLS: email.TLSStartTLS,
		Username: fakesmtp.User, Password: fakesmtp.Password, CAFile: s.CAFile(t),
		From: "Vigil <vigil@ops.example.com>", To: []string{"oncall@example.com", "sre@example.com"},
	}
}

func open(t *testing.T, o email.Options) channel.Channel {
	t.Helper()
	require.NoError(t, o.Validate())
	ep, err := o.Open(channel.Deps{})
	require.NoError(t, err)
	require.Equal(t, email.Name, ep.Name)
	return ep.Channel
}

func incident(title string) message.Message {
	inc := &typesv1.Incident{Id: "inc-1", Title: title, Severity: typesv1.Severity_SEVERITY_CRITICAL, FiringCount: 1}
	return message.IncidentOpened(inc)
}

// A message goes over STARTTLS after AUTH PLAIN, multipart/alternative,
// with a Message-ID of the sender's domain that Send returns.
func TestSendStartTLS(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := open(t, options(t, s))

	id, err := c.Send(t.Context(), incident("DiskFull in shop"), "")
	require.NoError(t, err)
	require.Regexp(t, `^<[0-9a-f-]{36}@ops\.example\.com>$`, id)

	msgs := s.Messages()
	require.Len(t, msgs, 1)
	m := msgs[0]
	require.Equal(t, 1, s.Auths())
	require.Equal(t, "vigil@ops.example.com", m.MailFrom)
	require.Equal(t, []string{"oncall@example.com", "sre@example.com"}, m.RcptTo)
	require.Equal(t, []string{"oncall@example.com", "sre@example.com"}, m.To)
	require.Equal(t, id, m.MessageID)
	require.Equal(t, "[Vigil] 🔴 Incident opened: DiskFull in shop", m.Subject)
	require.Empty(t, m.InReplyTo)
	require.Equal(t, "multipart/alternative", m.ContentType)
	require.Contains(t, m.Text, "🔴 Incident opened: DiskFull in shop\nSeverity: critical · Alerts: 1 firing")
	require.Contains(t, m.HTML, "🔴 <b>Incident opened: DiskFull in shop</b><br>\nSeverity: critical")
}

// Implicit TLS (port 465 style) works as STARTTLS does.
func TestSendImplicitTLS(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{ImplicitTLS: true})
	o := options(t, s)
	o.TLS = email.TLSImplicit
	_, err := open(t, o).Send(t.Context(), incident("DiskFull"), "")
	require.NoError(t, err)
	require.Len(t, s.Messages(), 1)
}

// Alert and LLM text is data in the HTML part: escaped, never markup; the
// plain part has it as written.
func TestHTMLEscapesAlertText(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := open(t, options(t, s))
	hostile := `</b><script>alert("x")</script>&`
	_, err := c.Send(t.Context(), incident(hostile), "")
	require.NoError(t, err)

	m := s.Messages()[0]
	require.NotContains(t, m.HTML, "<script>")
	require.NotContains(t, m.HTML, "</b><script>")
	require.Contains(t, m.HTML, "<b>Incident opened: &lt;/b&gt;&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;&amp;</b>")
	require.Contains(t, m.Text, "Incident opened: "+hostile)
	require.Equal(t, "[Vigil] 🔴 Incident opened: "+hostile, m.Subject)
}

// A title cannot add headers: a CR in it is no line break in the subject.
func TestSubjectInjection(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := open(t, options(t, s))
	_, err := c.Send(t.Context(), incident("DiskFull\rBcc: evil@example.net"), "")
	require.NoError(t, err)
	m := s.Messages()[0]
	require.Equal(t, "[Vigil] 🔴 Incident opened: DiskFull Bcc: evil@example.net", m.Subject)
	require.Equal(t, []string{"oncall@example.com", "sre@example.com"}, m.RcptTo)
}

// A reply names its parent in In-Reply-To and References and takes its
// subject with "Re:"; an edit is a reply too, as a sent email stays as
// it is.
func TestReplyThreading(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	c := open(t, options(t, s))
	root, err := c.Send(t.Context(), incident("DiskFull in shop"), "")
	require.NoError(t, err)

	analysis := message.Analysis(&eventsv1.AnalysisCompleted{IncidentId: "inc-1", AnalysisId: "a-1", Summary: "disk full", Engine: "rules"})
	reply, err := c.Send(t.Context(), analysis, root)
	require.NoError(t, err)
	require.NotEqual(t, root, reply)

	req := &eventsv1.RepairApprovalRequested{RepairId: "rep-1", IncidentId: "inc-1"}
	card, err := c.Send(t.Context(), message.ApprovalCard(req, nil), root)
	require.NoError(t, err)
	dec := &eventsv1.RepairDecided{RepairId: "rep-1", IncidentId: "inc-1", Outcome: "approved", DecidedBy: "ana"}
	require.NoError(t, c.Edit(t.Context(), card, message.ApprovalCard(req, dec)))

	msgs := s.Messages()
	require.Len(t, msgs, 4)
	for i, parent := range []string{root, root, card} {
		m := msgs[i+1]
		require.Equal(t, parent, m.InReplyTo, "message %d", i+1)
		require.Equal(t, parent, m.References, "message %d", i+1)
		require.Equal(t, "Re: [Vigil] 🔴 Incident opened: DiskFull in shop", m.Subject, "message %d", i+1)
	}
	// The waiting card says how to answer it; the decided one does not.
	require.Contains(t, msgs[2].Text, "Approve with: vigil repairs approve rep-1")
	require.Contains(t, msgs[2].HTML, "Approve with: <code>vigil repairs approve rep-1</code>")
	require.NotContains(t, msgs[3].Text, "vigil repairs approve")
	require.Contains(t, msgs[3].Text, "Approved")
}

// What the server answers decides a retry: 451 is a wait, 550 a refusal.
func TestSMTPErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		code  int
		retry bool
	}{{code: 451, retry: true}, {code: 550, retry: false}}
	for _, tt := range tests {
		t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
			t.Parallel()
			s := fakesmtp.Start(t, fakesmtp.Options{})
			c := open(t, options(t, s))
			s.FailNext(tt.code)
			_, err := c.Send(t.Context(), incident("DiskFull"), "")
			require.Error(t, err)
			v := channel.Judge(err)
			require.Equal(t, tt.retry, v.Retry, "%v", err)
			require.Contains(t, err.Error(), strconv.Itoa(tt.code))
			require.Empty(t, s.Messages())

			_, err = c.Send(t.Context(), incident("DiskFull"), "")
			require.NoError(t, err, "the next message goes")
			require.Len(t, s.Messages(), 1)
		})
	}
}

// A wrong password is refused for good, and the password is nowhere in
// the error.
func TestWrongPassword(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	o := options(t, s)
	o.Password = "not-the-password"
	_, err := open(t, o).Send(t.Context(), incident("DiskFull"), "")
	require.Error(t, err)
	require.False(t, channel.Judge(err).Retry, "%v", err)
	require.NotContains(t, err.Error(), o.Password)
	require.Empty(t, s.Messages())
	require.Zero(t, s.Auths())
}

// A server the client cannot upgrade to TLS gets no password and no mail;
// an untrusted certificate is no passing fault.
func TestTLSRequired(t *testing.T) {
	t.Parallel()
	t.Run("implicit TLS against a plain server", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{})
		o := options(t, s)
		o.TLS = email.TLSImplicit
		_, err := open(t, o).Send(t.Context(), incident("DiskFull"), "")
		require.Error(t, err)
		require.Empty(t, s.Messages())
		require.Zero(t, s.Auths())
	})
	t.Run("STARTTLS against a plain server", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{NoTLS: true})
		_, err := open(t, options(t, s)).Send(t.Context(), incident("DiskFull"), "")
		require.ErrorContains(t, err, "STARTTLS")
		require.Empty(t, s.Messages())
		require.Zero(t, s.Auths())
	})
	t.Run("untrusted certificate", func(t *testing.T) {
		t.Parallel()
		s := fakesmtp.Start(t, fakesmtp.Options{})
		o := options(t, s)
		o.CAFile = ""
		_, err := open(t, o).Send(t.Context(), incident("DiskFull"), "")
		require.Error(t, err)
		require.False(t, channel.Judge(err).Retry, "%v", err)
		require.Empty(t, s.Messages())
		require.Zero(t, s.Auths())
	})
}

// The fake is a submission server: who has not authenticated may not
// send, and is told so for good.
func TestAuthRequired(t *testing.T) {
	t.Parallel()
	s := fakesmtp.Start(t, fakesmtp.Options{})
	o := options(t, s)
	o.Username, o.Password = "", ""
	_, err := open(t, o).Send(t.Context(), incident("DiskFull"), "")
	require.ErrorContains(t, err, "530")
	require.False(t, channel.Judge(err).Retry, "%v", err)
	require.Empty(t, s.Messages())
}

// A server that is not there may be there later.
func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	s := fakesmtp.Start(t, fakesmtp.Options{})
	o := options(t, s)
	o.Port = port
	_, err = open(t, o).Send(context.Background(), incident("DiskFull"), "")
	require.Error(t, err)
	require.True(t, channel.Judge(err).Retry, "%v", err)
}

func TestValidate(t *testing.T) {
	t.Parallel()
	ok := email.Options{Host: "smtp.example.com", Username: "u", Password: "p", From: "vigil@example.com", To: []string{"a@example.com"}}
	tests := []struct {
		name string
		edit func(*email.Options)
		want string
	}{
		{name: "valid", edit: func(*email.Options) {}},
		{name: "off", edit: func(o *email.Options) { *o = email.Options{} }},
		{name: "to without host", edit: func(o *email.Options) { o.Host = "" }, want: "VIGIL_SMTP_HOST: missing"},
		{name: "no from", edit: func(o *email.Options) { o.From = "" }, want: "VIGIL_EMAIL_FROM: missing"},
		{name: "bad from", edit: func(o *email.Options) { o.From = "vigil" }, want: "VIGIL_EMAIL_FROM"},
		{name: "no to", edit: func(o *email.Options) { o.To = nil }, want: "VIGIL_EMAIL_TO: missing"},
		{name: "bad to", edit: func(o *email.Options) { o.To = []string{"a@example.com", "nobody"} }, want: `VIGIL_EMAIL_TO: "nobody"`},
		{name: "bad tls", edit: func(o *email.Options) { o.TLS = "ssl" }, want: "VIGIL_SMTP_TLS"},
		{name: "none to a remote host", edit: func(o *email.Options) { o.TLS, o.Username, o.Password = email.TLSNone, "", "" }, want: "VIGIL_SMTP_TLS: none"},
		{name: "none with a password", edit: func(o *email.Options) { o.TLS, o.Host = email.TLSNone, "localhost" }, want: "VIGIL_SMTP_USERNAME: authentication needs TLS"},
		{name: "none to localhost", edit: func(o *email.Options) { o.TLS, o.Host, o.Username, o.Password = email.TLSNone, "127.0.0.1", "", "" }},
		{name: "user without password", edit: func(o *email.Options) { o.Password = "" }, want: "VIGIL_SMTP_PASSWORD: missing"},
		{name: "bad port", edit: func(o *email.Options) { o.Port = 70000 }, want: "VIGIL_SMTP_PORT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			o := ok
			tt.edit(&o)
			err := o.Validate()
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}
