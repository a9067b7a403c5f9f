package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

// refreshBefore is how long before its access token expires a session is
// refreshed, so that a call does not reach the gateway with a token that
// expires on the way.
const refreshBefore = 30 * time.Second

// session is what `vigil login` stores for one gateway: the tokens of a
// session and whom they belong to.
type session struct {
	Addr              string    `json:"addr"`
	User              string    `json:"user"`
	AccessToken       string    `json:"access_token"`
	AccessExpireTime  time.Time `json:"access_expire_time"`
	RefreshToken      string    `json:"refresh_token"`
	RefreshExpireTime time.Time `json:"refresh_expire_time"`
}

// newSession is the session of tokens issued to user by the gateway at
// addr.
func newSession(addr, user string, t *gatewayv1.Tokens) session {
	return session{
		Addr: addr, User: user,
		AccessToken: t.GetAccessToken(), AccessExpireTime: t.GetAccessExpireTime().AsTime(),
		RefreshToken: t.GetRefreshToken(), RefreshExpireTime: t.GetRefreshExpireTime().AsTime(),
	}
}

// sessionPath is where the session for the gateway at addr is stored: one
// file per address, so that several gateways can be logged in to at once.
func sessionPath(addr string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config directory for the session: %w", err)
	}
	return filepath.Join(dir, "vigil", "sessions", sessionFile(addr)), nil
}

// sessionFile names the file of addr with what any file system accepts.
// Two addresses may share a name ("a:1" and "a_1"); the file holds its
// address, and loadSession ignores a file of another one.
func sessionFile(addr string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, addr) + ".json"
}

// errNoSession means no session is stored for the address.
var errNoSession = errors.New("no session")

// loadSession reads the session of addr stored at path.
func loadSession(path, addr string) (session, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return session{}, errNoSession
	}
	if err != nil {
		return session{}, fmt.Errorf("read session: %w", err)
	}
	var s session
	if err := json.Unmarshal(b, &s); err != nil {
		return session{}, fmt.Errorf("read session %s (run `vigil login` again): %w", path, err)
	}
	if s.Addr != addr {
		return session{}, errNoSession
	}
	return s, nil
}

// save writes s to path atomically (a reader sees the old session or the
// new one, never half of one), readable by its owner only.
func (s session) save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	// MkdirAll leaves an existing directory as it is: the sessions are
	// ours, and nobody else's to list.
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	f, err := os.CreateTemp(dir, ".session-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	defer os.Remove(f.Name()) // fails harmlessly once renamed
	if _, err := f.Write(append(b, '\n')); err != nil {
		_ = f.Close()
		return fmt.Errorf("store session: %w", err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("store session: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("store session: %w", err)
	}
	return nil
}

// credentials are the dial options that authenticate the calls to the
// gateway: token (VIGIL_TOKEN) when set, otherwise the session stored for
// the gateway by `vigil login`.
func (c *clientFlags) credentials(token string) ([]grpc.DialOption, error) {
	if token != "" {
		return []grpc.DialOption{grpc.WithPerRPCCredentials(bearer(token))}, nil
	}
	a, err := storedSession(c.addr, time.Now)
	if err != nil {
		return nil, err
	}
	return []grpc.DialOption{grpc.WithChainUnaryInterceptor(a.unary), grpc.WithChainStreamInterceptor(a.stream)}, nil
}

// storedSession returns the session stored for addr, ready to
// authenticate calls.
func storedSession(addr string, now func() time.Time) (*sessionAuth, error) {
	path, err := sessionPath(addr)
	if err != nil {
		return nil, err
	}
	s, err := loadSession(path, addr)
	if errors.Is(err, errNoSession) {
		return nil, fmt.Errorf("not logged in to %s: run `vigil login`, or set VIGIL_TOKEN or VIGIL_TOKEN_FILE (an API key or the bootstrap admin token)", addr)
	}
	if err != nil {
		return nil, err
	}
	if !s.RefreshExpireTime.IsZero() && !now().Before(s.RefreshExpireTime) {
		return nil, fmt.Errorf("the session of %s at %s ended at %s: run `vigil login`", s.User, addr, s.RefreshExpireTime.Local().Format(time.DateTime))
	}
	return &sessionAuth{path: path, s: s, now: now}, nil
}

// sessionAuth authenticates calls with a stored session's access token. It
// refreshes the session before a call when the token is about to expire,
// and once after a call the gateway refused with Unauthenticated (the
// token may have been revoked early, or the clocks differ).
type sessionAuth struct {
	path string
	now  func() time.Time

	mu sync.Mutex
	s  session
}

func (a *sessionAuth) unary(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	if method == gatewayv1.AuthService_Refresh_FullMethodName {
		// The refresh token is the credential; this is refresh's own call.
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	token, err := a.token(ctx, cc, "")
	if err != nil {
		return err
	}
	err = invoker(withBearer(ctx, token), method, req, reply, cc, opts...)
	if status.Code(err) != codes.Unauthenticated {
		return err
	}
	token, rerr := a.token(ctx, cc, token)
	if rerr != nil {
		return rerr
	}
	return invoker(withBearer(ctx, token), method, req, reply, cc, opts...)
}

// stream refreshes ahead like unary does; a stream the gateway refuses is
// not retried, as its messages may have been consumed.
func (a *sessionAuth) stream(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	token, err := a.token(ctx, cc, "")
	if err != nil {
		return nil, err
	}
	return streamer(withBearer(ctx, token), desc, cc, method, opts...)
}

func withBearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// token returns the access token to send, refreshing the session first
// when the token expires within refreshBefore or is refused (the gateway
// refused it).
func (a *sessionAuth) token(ctx context.Context, cc grpc.ClientConnInterface, refused string) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.s.AccessToken != refused && a.now().Add(refreshBefore).Before(a.s.AccessExpireTime) {
		return a.s.AccessToken, nil
	}
	if err := a.refresh(ctx, cc); err != nil {
		return "", err
	}
	return a.s.AccessToken, nil
}

// refresh replaces the session's tokens with new ones, and stores them
// before they are used: the old refresh token no longer works.
func (a *sessionAuth) refresh(ctx context.Context, cc grpc.ClientConnInterface) error {
	old := a.s.RefreshToken
	resp, err := gatewayv1.NewAuthServiceClient(cc).Refresh(ctx, &gatewayv1.RefreshRequest{RefreshToken: old})
	if err != nil {
		// Another vigil may have used the refresh token first, and stored
		// the new one.
		if s, lerr := loadSession(a.path, a.s.Addr); lerr == nil && s.RefreshToken != old &&
			a.now().Add(refreshBefore).Before(s.AccessExpireTime) {
			a.s = s
			return nil
		}
		if status.Code(err) == codes.Unauthenticated {
			return status.Errorf(codes.Unauthenticated, "the session of %s at %s ended (%s): run `vigil login`",
				a.s.User, a.s.Addr, status.Convert(err).Message())
		}
		return err
	}
	user := resp.GetUser().GetName()
	if user == "" {
		user = a.s.User
	}
	s := newSession(a.s.Addr, user, resp.GetTokens())
	if err := s.save(a.path); err != nil {
		return err
	}
	a.s = s
	return nil
}

// current is the session as it is now (after any refresh).
func (a *sessionAuth) current() session {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.s
}

// dialAnonymous connects to the gateway without credentials, for logging
// in.
func dialAnonymous(addr string) (*grpc.ClientConn, error) {
	return grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
}

// checkOutput refuses an --output other than table or json.
func (c *clientFlags) checkOutput() error {
	if c.output != "table" && c.output != "json" {
		return fmt.Errorf("--output %q: want table or json", c.output)
	}
	return nil
}

// secrets reads passwords: with --password-stdin, from stdin, one a line;
// otherwise from the terminal, without echo. Never from a flag, which
// would leave them in the shell's history and the process list.
type secrets struct {
	fromStdin bool
	in        io.Reader
	prompts   io.Writer
	lines     *bufio.Reader
}

func newSecrets(cmdIn io.Reader, prompts io.Writer, fromStdin bool) *secrets {
	return &secrets{fromStdin: fromStdin, in: cmdIn, prompts: prompts, lines: bufio.NewReader(cmdIn)}
}

// terminal returns the file descriptor of stdin when it is a terminal.
func (p *secrets) terminal() (int, bool) {
	f, ok := p.in.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	return int(f.Fd()), true
}

// read reads one password, prompting with prompt on a terminal.
func (p *secrets) read(prompt string) (string, error) {
	if p.fromStdin {
		line, err := p.lines.ReadString('\n')
		if err != nil && (!errors.Is(err, io.EOF) || line == "") {
			if errors.Is(err, io.EOF) {
				return "", errors.New("--password-stdin: stdin ended before the password")
			}
			return "", fmt.Errorf("--password-stdin: %w", err)
		}
		pw := strings.TrimRight(line, "\r\n")
		if pw == "" {
			return "", errors.New("--password-stdin: empty password")
		}
		return pw, nil
	}
	fd, ok := p.terminal()
	if !ok {
		return "", errors.New("stdin is not a terminal: give the password on stdin with --password-stdin")
	}
	fmt.Fprint(p.prompts, prompt)
	b, err := term.ReadPassword(fd)
	fmt.Fprintln(p.prompts)
	if err != nil {
		return "", fmt.Errorf("read password: %w", err)
	}
	if len(b) == 0 {
		return "", errors.New("empty password")
	}
	return string(b), nil
}

// readNew reads a new password: on a terminal twice, to catch a typo.
func (p *secrets) readNew(prompt string) (string, error) {
	pw, err := p.read(prompt)
	if err != nil || p.fromStdin {
		return pw, err
	}
	again, err := p.read("Again: ")
	if err != nil {
		return "", err
	}
	if again != pw {
		return "", errors.New("the passwords differ")
	}
	return pw, nil
}

// line reads a line of text (a user name), prompting on a terminal.
func (p *secrets) line(prompt string) (string, error) {
	if _, ok := p.terminal(); !ok {
		return "", errors.New("stdin is not a terminal")
	}
	fmt.Fprint(p.prompts, prompt)
	s, err := p.lines.ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("read %s: %w", strings.TrimSuffix(prompt, ": "), err)
	}
	return strings.TrimSpace(s), nil
}
