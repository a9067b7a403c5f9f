// Package email is notify's email channel: messages sent over SMTP to a
// fixed list of addresses, each one multipart/alternative (plain text and
// HTML), where a thread is the chain of Message-ID / In-Reply-To /
// References headers mail clients group by.
//
// Email cannot change a message once sent: Edit (an approval card, once
// decided) sends the redrawn card as a reply to the card's email.
//
// Email has no buttons: with a link key and a public URL (channel.Deps),
// a message carries action links instead (pkg/actionlink), and as a link
// acts as the user of the address it went to, each address gets its own
// copy with its own links.
package email

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/mail"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	gomail "github.com/wneessen/go-mail"

	"github.com/vigil-ops/vigil/services/notify/channel"
	"github.com/vigil-ops/vigil/services/notify/internal/message"
)

// Name is the channel's name in the delivery log.
const Name = "email"

// TLS modes: how the connection to the SMTP server is secured.
const (
	// TLSStartTLS upgrades a plain connection with STARTTLS, and refuses
	// to go on without it (port 587).
	TLSStartTLS = "starttls"
	// TLSImplicit speaks TLS from the first byte (port 465).
	TLSImplicit = "tls"
	// TLSNone sends in the clear: only to a relay on this host.
	TLSNone = "none"
)

// Options configure the email channel; it is off without a host.
type Options struct {
	// Host and Port are the SMTP server's (port: 587 for starttls, 465
	// for tls, 25 for none when 0).
	Host string
	Port int
	// TLS is starttls (the default), tls or none.
	TLS string
	// Username and Password authenticate (AUTH PLAIN or LOGIN, over TLS
	// only); none without a username.
	Username string
	Password string //nolint:gosec // a secret the user gives; never logged
	// CAFile is a PEM file of CA certificates to trust instead of the
	// system's, for a relay with a private CA.
	CAFile string
	// From is the sender's address ("Vigil <vigil@example.com>"); its
	// domain names the Message-IDs.
	From string
	// To are the recipients.
	To []string
}

// timeout bounds one send, connection to QUIT.
const timeout = 30 * time.Second

// Validate reports options a user must fix.
func (o Options) Validate() error {
	if o.Host == "" {
		if o.From != "" || len(o.To) > 0 || o.Username != "" {
			return errors.New("VIGIL_SMTP_HOST: missing (VIGIL_EMAIL_FROM, VIGIL_EMAIL_TO or VIGIL_SMTP_USERNAME is set)")
		}
		return nil
	}
	switch o.TLS {
	case "", TLSStartTLS, TLSImplicit:
	case TLSNone:
		if !isLocal(o.Host) {
			return fmt.Errorf("VIGIL_SMTP_TLS: none sends mail and passwords in the clear: only allowed to a relay on this host, not %q", o.Host)
		}
		if o.Username != "" {
			return errors.New("VIGIL_SMTP_USERNAME: authentication needs TLS (VIGIL_SMTP_TLS is none)")
		}
	default:
		return fmt.Errorf("VIGIL_SMTP_TLS: %q: want starttls, tls or none", o.TLS)
	}
	if o.Port < 0 || o.Port > 65535 {
		return fmt.Errorf("VIGIL_SMTP_PORT: %d is not a port", o.Port)
	}
	if o.Username != "" && o.Password == "" {
		return errors.New("VIGIL_SMTP_PASSWORD: missing (VIGIL_SMTP_USERNAME is set)")
	}
	if o.Username == "" && o.Password != "" {
		return errors.New("VIGIL_SMTP_USERNAME: missing (VIGIL_SMTP_PASSWORD is set)")
	}
	if _, err := fromDomain(o.From); err != nil {
		return fmt.Errorf("VIGIL_EMAIL_FROM: %w", err)
	}
	if len(o.To) == 0 {
		return errors.New("VIGIL_EMAIL_TO: missing (VIGIL_SMTP_HOST is set): the addresses to write to, comma-separated")
	}
	for _, to := range o.To {
		if _, err := mail.ParseAddress(to); err != nil {
			return fmt.Errorf("VIGIL_EMAIL_TO: %q: %w", to, err)
		}
	}
	return nil
}

// isLocal: a host name or address of this host's loopback.
func isLocal(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// fromDomain is the domain of the sender's address.
func fromDomain(from string) (string, error) {
	if from == "" {
		return "", errors.New("missing (VIGIL_SMTP_HOST is set): the sender's address")
	}
	a, err := mail.ParseAddress(from)
	if err != nil {
		return "", fmt.Errorf("%q: %w", from, err)
	}
	_, domain, ok := strings.Cut(a.Address, "@")
	if !ok || domain == "" {
		return "", fmt.Errorf("%q: no domain", from)
	}
	return domain, nil
}

// Open builds the channel; nil without a host.
func (o Options) Open(deps channel.Deps) (*channel.Endpoint, error) {
	if o.Host == "" {
		return nil, nil
	}
	domain, err := fromDomain(o.From)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_EMAIL_FROM: %w", err)
	}
	tlsConf := &tls.Config{ServerName: o.Host, MinVersion: tls.VersionTLS12}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_SMTP_CA_FILE: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("VIGIL_SMTP_CA_FILE: %s: no PEM certificate", o.CAFile)
		}
		tlsConf.RootCAs = pool
	}
	opts := []gomail.Option{gomail.WithTimeout(timeout), gomail.WithTLSConfig(tlsConf)}
	port := o.Port
	switch o.TLS {
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
		port = cmp(port, 465)
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
		port = cmp(port, 25)
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
		port = cmp(port, 587)
	}
	opts = append(opts, gomail.WithPort(port))
	if o.Username != "" {
		// PLAIN, else LOGIN: both refuse to run outside TLS.
		opts = append(opts,
			gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthPlain, gomail.SMTPAuthLogin),
			gomail.WithUsername(o.Username), gomail.WithPassword(o.Password))
	}
	client, err := gomail.NewClient(o.Host, opts...)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_SMTP_HOST or VIGIL_SMTP_PORT: %w", err)
	}
	c := &Channel{client: client, from: o.From, to: o.To, domain: domain, subjects: map[string]string{}, log: deps.Logger}
	if len(deps.LinkKey) > 0 && deps.PublicURL != "" {
		c.links = &links{key: deps.LinkKey, base: strings.TrimRight(deps.PublicURL, "/") + "/api/v1/actions/"}
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	return &channel.Endpoint{Name: Name, Target: strings.Join(o.To, ","), Channel: c}, nil
}

func cmp(port, fallback int) int {
	if port == 0 {
		return fallback
	}
	return port
}

// maxSubjects bounds the subjects remembered for replies.
const maxSubjects = 10000

// Channel writes to a list of addresses.
type Channel struct {
	client *gomail.Client
	from   string
	to     []string
	domain string
	// links make each recipient's action links; nil: none, and one
	// message goes to all the addresses.
	links *links
	log   *slog.Logger

	mu sync.Mutex
	// subjects are the subjects of the messages sent, by Message-ID, for
	// their replies' "Re:" (a mail client groups a thread by subject too).
	// Memory only: a reply to a message sent before a restart has the
	// reply's own first line as subject, and is still threaded by its
	// headers.
	subjects map[string]string
}

// Send emails m, as a reply to message parent when that is set, and
// returns its Message-ID. With action links, each address gets its own
// copy (its links act as the user of that address), whose Message-ID is
// derived from the returned one and the address (recipientID).
func (c *Channel) Send(ctx context.Context, m message.Message, parent string) (string, error) {
	d := drawMessage(m, c.links != nil)
	subject := subjectOf(d.text)
	if parent != "" {
		if s, ok := c.subject(parent); ok {
			subject = s
		}
		subject = "Re: " + subject
	}
	id := c.messageID(ctx)
	progress := channel.ProgressOf(ctx)
	var (
		msgs   []*gomail.Msg
		copies []recipientCopy
	)
	if c.links == nil {
		text, html := d.with(nil)
		msg, err := c.compose(c.to, subject, id, parent, text, html)
		if err != nil {
			return "", err
		}
		msgs = append(msgs, msg)
	} else {
		for _, r := range c.to {
			rid := recipientID(id, r)
			if progress != nil && progress.Done(rid) {
				continue
			}
			ls, err := c.links.of(d, bare(r))
			if err != nil {
				return "", &channel.Error{Err: fmt.Errorf("email: links: %w", err)}
			}
			text, html := d.with(ls)
			p := parent
			if p != "" {
				p = recipientID(parent, r)
			}
			msg, err := c.compose([]string{r}, subject, rid, p, text, html)
			if err != nil {
				return "", err
			}
			msgs, copies = append(msgs, msg), append(copies, recipientCopy{to: r, id: rid})
		}
	}
	if err := c.send(ctx, id, msgs, copies, progress); err != nil {
		return "", err
	}
	if parent == "" {
		c.remember(id, subject)
	} else if s, ok := c.subject(parent); ok {
		c.remember(id, s)
	}
	return id, nil
}

// bare is an address without its name ("Ana <ana@example.com>": the
// user the links act as is ana@example.com's).
func bare(r string) string {
	if a, err := mail.ParseAddress(r); err == nil {
		return a.Address
	}
	return r
}

// messageID is the Message-ID of what Send sends: derived from the
// delivery's key where notify gives one, so that the same delivery tried
// again has the same ids (a mail client shows a copy twice no more).
func (c *Channel) messageID(ctx context.Context) string {
	u := uuid.New()
	if k := channel.DeliveryKey(ctx); k != "" {
		u = uuid.NewSHA1(uuid.NameSpaceURL, []byte("vigil-email:"+k))
	}
	return "<" + u.String() + "@" + c.domain + ">"
}

// recipientID is the Message-ID of address r's copy of message id: the
// id's local part, a dot and a hash of the address, at the id's domain.
// A reply derives its parent's copy for the same address from the one id
// notify records, and so threads under what that address received.
func recipientID(id, r string) string {
	local, domain, ok := strings.Cut(strings.Trim(id, "<>"), "@")
	if !ok {
		domain = "invalid"
	}
	sum := sha256.Sum256([]byte(strings.ToLower(bare(r))))
	return "<" + local + "." + hex.EncodeToString(sum[:8]) + "@" + domain + ">"
}

func (c *Channel) compose(to []string, subject, id, parent, text, html string) (*gomail.Msg, error) {
	msg := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := msg.From(c.from); err != nil {
		return nil, &channel.Error{Err: fmt.Errorf("email: from: %w", err)}
	}
	if err := msg.To(to...); err != nil {
		return nil, &channel.Error{Err: fmt.Errorf("email: to: %w", err)}
	}
	msg.Subject(subject)
	msg.SetMessageIDWithValue(strings.Trim(id, "<>"))
	msg.SetDate()
	if parent != "" {
		msg.SetGenHeader(gomail.HeaderInReplyTo, parent)
		msg.SetGenHeader(gomail.HeaderReferences, parent)
	}
	msg.SetBodyString(gomail.TypeTextPlain, text)
	msg.AddAlternativeString(gomail.TypeTextHTML, html)
	return msg, nil
}

// recipientCopy is one address's copy of a message: the address and the
// copy's Message-ID (recipientID).
type recipientCopy struct{ to, id string }

// send sends msgs over one connection, one after another; copies are
// their recipients when each goes to one address (action links), nil when
// one goes to all.
//
// Each copy is tried once per attempt, and a copy accepted is recorded in
// progress before the next is sent, so that a retry (after a restart
// too) sends only the others. Some copies refused: a passing failure
// (4xx, a broken connection) fails the attempt, to be retried for the
// others; refusals for good (5xx) only fail it when no address got the
// message, else they are logged and the message counts as sent, as
// retrying cannot help them.
func (c *Channel) send(ctx context.Context, id string, msgs []*gomail.Msg, copies []recipientCopy, progress channel.Progress) error {
	if len(msgs) == 0 {
		return nil // every copy went out on an earlier attempt
	}
	conn, err := c.client.DialToSMTPClientWithContext(ctx)
	if err != nil {
		return judge(fmt.Errorf("dial failed: %w", err))
	}
	defer func() {
		if err := c.client.CloseWithSMTPClient(conn); err != nil {
			c.log.DebugContext(ctx, "closing the SMTP connection failed", "error", err)
		}
	}()
	if copies == nil {
		if err := c.client.SendWithSMTPClient(conn, msgs...); err != nil {
			return judge(fmt.Errorf("send failed: %w", err))
		}
		return nil
	}
	var (
		retry, refused []error
		failed         []string
	)
	for i, msg := range msgs {
		r := copies[i]
		e := c.client.SendWithSMTPClient(conn, msg)
		if e == nil {
			if progress == nil {
				continue
			}
			if err := progress.Accepted(ctx, r.id); err != nil {
				// Not recorded: stop here rather than send more copies a
				// retry could not tell from unsent ones.
				return &channel.Error{Err: fmt.Errorf("email: recording the copy to %s: %w", r.to, err), Retry: true}
			}
			continue
		}
		failed = append(failed, r.to)
		if channel.Judge(judge(e)).Retry {
			retry = append(retry, fmt.Errorf("%s: %w", r.to, e))
		} else {
			refused = append(refused, fmt.Errorf("%s: %w", r.to, e))
		}
	}
	if len(retry) > 0 {
		return judge(errors.Join(append(retry, refused...)...))
	}
	if len(failed) == len(c.to) {
		return judge(errors.Join(refused...))
	}
	if len(failed) > 0 {
		c.log.ErrorContext(ctx, "email refused for some addresses: the others have it", "message_id", id, "refused", failed, "error", errors.Join(refused...))
	}
	return nil
}

// Edit sends m as a reply to message id: a sent email cannot change.
func (c *Channel) Edit(ctx context.Context, id string, m message.Message) error {
	_, err := c.Send(ctx, m, id)
	return err
}

func (c *Channel) subject(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s, ok := c.subjects[id]
	return s, ok
}

func (c *Channel) remember(id, subject string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.subjects) >= maxSubjects {
		clear(c.subjects) // old threads lose their "Re:" subject, not their headers
	}
	c.subjects[id] = subject
}

// judge says what an SMTP failure means: a 4xx answer or a broken
// connection may pass, a 5xx answer (refused, wrong password) or a
// certificate the client does not trust will not.
func judge(err error) error {
	e := &channel.Error{Err: err, Retry: true}
	var code int
	if se, ok := errors.AsType[*gomail.SendError](err); ok {
		code = se.ErrorCode()
	}
	if tp, ok := errors.AsType[*textproto.Error](err); ok && code == 0 {
		code = tp.Code
	}
	if code == 0 {
		code = replyCode(err)
	}
	switch {
	case code >= 500:
		e.Retry = false
	case code >= 400:
		// "Try later": the server throttles or is busy; the code tells
		// notify to hold the channel back, not only this message.
		e.Retry, e.Status = true, code
	case certificateError(err):
		e.Retry = false
	}
	return e
}

// replyCode finds an SMTP reply code at the start of an error's text, as
// go-mail words some failures (AUTH) without a typed error.
func replyCode(err error) int {
	s := err.Error()
	for _, part := range strings.Split(s, ": ") {
		if len(part) >= 4 && part[3] == ' ' {
			if n, err := strconv.Atoi(part[:3]); err == nil && n >= 200 && n < 600 {
				return n
			}
		}
	}
	return 0
}

func certificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid) || errors.As(err, &verify)
}
