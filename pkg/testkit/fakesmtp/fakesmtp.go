// Package fakesmtp is a local SMTP submission server for tests, built on
// go-smtp. It is strict where a mail provider is: a client must switch to
// TLS (STARTTLS, or implicit TLS with Options.ImplicitTLS) before it may
// authenticate, must authenticate (AUTH PLAIN, with User and Password)
// before it may send, and what it sends must be a MIME message the fake
// can parse. It records each message's envelope, headers and text parts.
//
// Its certificate is issued for 127.0.0.1 and localhost by a test CA of
// its own: a client trusts it through CAFile, as it would trust a private
// mail relay's CA. FailNext injects an SMTP answer (451: try again later,
// 550: refused) to the next messages' DATA.
package fakesmtp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// The credentials the fake accepts.
const (
	User     = "vigil@example.test"
	Password = "fake-smtp-password"
)

// The answers of RFC 4954 (go-smtp's own ErrAuthRequired is a 502).
var (
	errAuthRequired       = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}
	errEncryptionRequired = &smtp.SMTPError{
		Code: 538, EnhancedCode: smtp.EnhancedCode{5, 7, 11}, Message: "Encryption required for requested authentication mechanism",
	}
)

// Options configure a Server.
type Options struct {
	// ImplicitTLS serves TLS from the first byte (port 465 style) instead
	// of plain text upgraded with STARTTLS.
	ImplicitTLS bool
	// NoTLS offers no STARTTLS: a plain relay, where no client may
	// authenticate and so none may send.
	NoTLS bool
}

// Message is one message the fake accepted.
type Message struct {
	// MailFrom and RcptTo are the envelope.
	MailFrom string
	RcptTo   []string
	// From, To, Subject (decoded), MessageID, InReplyTo and References are
	// the headers, as written.
	From, Subject, MessageID, InReplyTo, References string
	To                                              []string
	// ContentType is the top-level media type (multipart/alternative).
	ContentType string
	// Text and HTML are the text/plain and text/html parts, decoded.
	Text, HTML string
}

// Server is a running fake. It is safe for concurrent use.
type Server struct {
	// Host and Port are where it listens (127.0.0.1).
	Host string
	Port int

	caPEM []byte
	srv   *smtp.Server

	mu    sync.Mutex
	msgs  []Message
	fails []*smtp.SMTPError
	auths int
}

// Start runs a fake until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	caPEM, cert, err := issue()
	if err != nil {
		t.Fatalf("fakesmtp: certificate: %v", err)
	}
	s := &Server{caPEM: caPEM}
	srv := smtp.NewServer(s)
	srv.Domain = "localhost"
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if !opts.NoTLS {
		srv.TLSConfig = tlsConf
	}
	srv.AllowInsecureAuth = false // AUTH only once TLS is up
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	srv.MaxMessageBytes = 10 << 20
	s.srv = srv
	var l net.Listener
	if opts.ImplicitTLS {
		l, err = tls.Listen("tcp", "127.0.0.1:0", tlsConf)
	} else {
		l, err = net.Listen("tcp", "127.0.0.1:0")
	}
	if err != nil {
		t.Fatalf("fakesmtp: listen: %v", err)
	}
	addr, _ := l.Addr().(*net.TCPAddr)
	s.Host, s.Port = "127.0.0.1", addr.Port
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(l)
	}()
	t.Cleanup(func() {
		_ = srv.Close()
		// Close closes only the listeners Serve registered: one whose
		// goroutine had not started yet would accept forever.
		_ = l.Close()
		<-done
	})
	return s
}

// CAFile writes the fake's CA certificate to a file in the test's temporary
// directory and returns its path.
func (s *Server) CAFile(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "fakesmtp-ca.pem")
	if err := os.WriteFile(path, s.caPEM, 0o600); err != nil {
		t.Fatalf("fakesmtp: write CA: %v", err)
	}
	return path
}

// FailNext answers the next messages' DATA with code (4xx: try again, 5xx:
// refused), one message per call.
func (s *Server) FailNext(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, &smtp.SMTPError{
		Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: "fakesmtp: injected " + strconv.Itoa(code),
	})
}

// PassNext accepts the next message's DATA, so that a FailNext after it
// fails the one after: a failure after the first recipient's copy.
func (s *Server) PassNext() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fails = append(s.fails, nil)
}

// Messages are the messages accepted so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// WaitForMessages waits until n messages were accepted, failing the test
// after timeout, and returns them.
func (s *Server) WaitForMessages(t testing.TB, n int, timeout time.Duration) []Message {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		msgs := s.Messages()
		if len(msgs) >= n {
			return msgs
		}
		if time.Now().After(deadline) {
			t.Fatalf("fakesmtp: %d messages after %s, want %d", len(msgs), timeout, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Auths is how many clients authenticated.
func (s *Server) Auths() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.auths
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &session{srv: s, conn: c}, nil
}

type session struct {
	srv    *Server
	conn   *smtp.Conn
	authed bool
	from   string
	to     []string
}

var _ smtp.AuthSession = (*session)(nil)

func (ss *session) AuthMechanisms() []string { return []string{sasl.Plain} }

func (ss *session) Auth(mech string) (sasl.Server, error) {
	if mech != sasl.Plain {
		return nil, smtp.ErrAuthUnknownMechanism
	}
	// go-smtp refuses AUTH before TLS (AllowInsecureAuth is off); checked
	// again here, as the rule this fake is for.
	if _, ok := ss.conn.TLSConnectionState(); !ok {
		return nil, errEncryptionRequired
	}
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if identity != "" && identity != username {
			return smtp.ErrAuthFailed
		}
		if username != User || password != Password {
			return smtp.ErrAuthFailed
		}
		ss.authed = true
		ss.srv.mu.Lock()
		ss.srv.auths++
		ss.srv.mu.Unlock()
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if !ss.authed {
		return errAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if !ss.authed {
		return errAuthRequired
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	if !ss.authed {
		return errAuthRequired
	}
	ss.srv.mu.Lock()
	var fail *smtp.SMTPError
	if len(ss.srv.fails) > 0 {
		fail, ss.srv.fails = ss.srv.fails[0], ss.srv.fails[1:]
	}
	ss.srv.mu.Unlock()
	if fail != nil {
		_, _ = io.Copy(io.Discard, r)
		return fail
	}
	m, err := parse(r)
	if err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "fakesmtp: " + err.Error()}
	}
	m.MailFrom, m.RcptTo = ss.from, ss.to
	ss.srv.mu.Lock()
	ss.srv.msgs = append(ss.srv.msgs, m)
	ss.srv.mu.Unlock()
	return nil
}

func (ss *session) Reset() { ss.from, ss.to = "", nil }

func (ss *session) Logout() error { return nil }

// parse reads a message as a mail client would: its headers, and the text
// and HTML parts of a multipart/alternative body (or a single text part).
func parse(r io.Reader) (Message, error) {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return Message{}, fmt.Errorf("message: %w", err)
	}
	h := msg.Header
	var dec mime.WordDecoder
	subject, err := dec.DecodeHeader(h.Get("Subject"))
	if err != nil {
		return Message{}, fmt.Errorf("subject: %w", err)
	}
	m := Message{
		From: h.Get("From"), Subject: subject, MessageID: h.Get("Message-Id"),
		InReplyTo: h.Get("In-Reply-To"), References: h.Get("References"),
	}
	if m.MessageID == "" {
		return Message{}, errors.New("no Message-ID")
	}
	if to, err := h.AddressList("To"); err == nil {
		for _, a := range to {
			m.To = append(m.To, a.Address)
		}
	}
	media, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		return Message{}, fmt.Errorf("content type: %w", err)
	}
	m.ContentType = media
	if !strings.HasPrefix(media, "multipart/") {
		body, err := decode(msg.Body, h.Get("Content-Transfer-Encoding"))
		if err != nil {
			return Message{}, err
		}
		m.setPart(media, body)
		return m, nil
	}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Message{}, fmt.Errorf("part: %w", err)
		}
		pm, _, err := mime.ParseMediaType(p.Header.Get("Content-Type"))
		if err != nil {
			return Message{}, fmt.Errorf("part content type: %w", err)
		}
		// multipart.Reader decodes quoted-printable itself.
		body, err := decode(p, p.Header.Get("Content-Transfer-Encoding"))
		if err != nil {
			return Message{}, err
		}
		m.setPart(pm, body)
	}
	return m, nil
}

func (m *Message) setPart(media, body string) {
	switch media {
	case "text/plain":
		m.Text = body
	case "text/html":
		m.HTML = body
	}
}

func decode(r io.Reader, encoding string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(encoding)) {
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "", "7bit", "8bit":
	default:
		return "", fmt.Errorf("transfer encoding %q", encoding)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return "", fmt.Errorf("body: %w", err)
	}
	return strings.ReplaceAll(string(b), "\r\n", "\n"), nil
}

// issue makes a CA and a server certificate it signs for 127.0.0.1 and
// localhost: the CA as PEM, for the client to trust.
func issue() ([]byte, tls.Certificate, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fakesmtp test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames: []string{"localhost"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, tls.Certificate{}, err
	}
	cert := tls.Certificate{Certificate: [][]byte{leafDER}, PrivateKey: key}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), cert, nil
}
