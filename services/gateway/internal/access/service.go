package access

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/uuid"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Audience is the aud of the session tokens people send to the API.
const Audience = "vigil-api"

// Store keeps users, sessions and keys (services/gateway/internal/postgres).
type Store interface {
	CreateUser(ctx context.Context, u User) error
	User(ctx context.Context, name string) (User, error)
	Users(ctx context.Context) ([]User, error)
	UpdateUser(ctx context.Context, name, keepSession string, fn func(*User) error) (User, error)
	CreateSession(ctx context.Context, s Session, refreshHash []byte) error
	SessionPrincipal(ctx context.Context, id string, now time.Time) (User, error)
	Refresh(ctx context.Context, oldHash, newHash []byte, now time.Time) (Session, User, error)
	RevokeSession(ctx context.Context, user, id string, refreshHash []byte, now time.Time) error
	CreateKey(ctx context.Context, k Key) error
	KeyByHash(ctx context.Context, hash []byte) (Key, error)
	Key(ctx context.Context, id string) (Key, error)
	Keys(ctx context.Context, teams []string, all, inactive bool, now time.Time) ([]Key, error)
	RevokeKey(ctx context.Context, id string, now time.Time) (Key, error)
	TouchKey(ctx context.Context, id string, now time.Time) error
	LinkChatIdentity(ctx context.Context, id ChatIdentity) error
	UnlinkChatIdentity(ctx context.Context, user string, p ChatProvider) error
	CreateChatLinkCode(ctx context.Context, hash []byte, user string, p ChatProvider, now, expires time.Time, keep int) error
	RedeemChatLinkCode(ctx context.Context, hash []byte, id ChatIdentity) (string, error)
	ChatUser(ctx context.Context, p ChatProvider, externalID string) (User, error)
	// UserByEmail is the one user with the address (ErrNotFound when none
	// or several).
	UserByEmail(ctx context.Context, address string) (User, error)
	LoginFailures
}

// Options tune sessions.
type Options struct {
	// AccessTTL is how long an access token lives (15 minutes).
	AccessTTL time.Duration
	// RefreshTTL is how long a session lives without a new login (7 days).
	RefreshTTL time.Duration
	// DefaultTeam's members reach what belongs to no team (incidents no
	// app claims, apps without an owner); empty: admins only.
	DefaultTeam string
	// CacheTTL is how long an authenticated secret is remembered before
	// it is checked against the database again (5 s): a revocation
	// counts at once on the replica that made it, within CacheTTL on the
	// others.
	CacheTTL time.Duration
	// OutageTTL is how long a secret verified before keeps working while
	// the database cannot be reached (1 hour), within its own expiry:
	// webhooks and the ingest API go on accepting alerts through a
	// Postgres outage. Nothing can be revoked during one (a revocation is
	// a write), but a key revoked on another replica less than CacheTTL
	// before the outage began is still honoured here until it ends or
	// OutageTTL runs out.
	OutageTTL time.Duration
	// ChatProviders are the chat providers whose webhook is configured:
	// link codes are issued for these only.
	ChatProviders []ChatProvider
	// KeyDefaultTTL is the lifetime of a key made by anyone but an admin
	// without an expiry (DefaultKeyTTL); KeyMaxTTL the longest such a key
	// may ask for (MaxKeyTTL). Admins' keys may live longer, or forever:
	// they stand in for Vigil's own set-up (Alertmanager, CI), and an
	// admin may revoke any key.
	KeyDefaultTTL, KeyMaxTTL time.Duration
	// Login bounds failed logins (DefaultLoginLimits where zero).
	Login LoginLimits
	// Now is the clock (time.Now when nil): tests move it to expire
	// tokens, sessions and keys.
	Now func() time.Time
}

// Lifetimes of keys made by anyone but an admin, by default.
const (
	DefaultKeyTTL = 90 * 24 * time.Hour
	MaxKeyTTL     = 365 * 24 * time.Hour
)

// Service authenticates callers and manages users, sessions and keys.
type Service struct {
	opts      Options
	store     Store
	keys      *auth.KeySet
	hasher    *Hasher
	bootstrap auth.AdminToken
	log       *slog.Logger
	now       func() time.Time

	// addrs limits logins per client address, in this replica.
	addrs *addresses

	mu       sync.Mutex
	cache    map[[32]byte]cached
	keyTouch map[string]time.Time
}

type cached struct {
	p     auth.Principal
	until time.Time
	// lasts is until when p stands while the database is unavailable
	// (OutageTTL).
	lasts time.Time
}

// New returns the access service. bootstrap is the admin token ("" for
// none).
func New(opts Options, store Store, keys *auth.KeySet, hasher *Hasher, bootstrap auth.AdminToken, log *slog.Logger) *Service {
	if opts.AccessTTL == 0 {
		opts.AccessTTL = 15 * time.Minute
	}
	if opts.RefreshTTL == 0 {
		opts.RefreshTTL = 7 * 24 * time.Hour
	}
	if opts.CacheTTL == 0 {
		opts.CacheTTL = 5 * time.Second
	}
	if opts.OutageTTL == 0 {
		opts.OutageTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.KeyMaxTTL == 0 {
		opts.KeyMaxTTL = MaxKeyTTL
	}
	if opts.KeyDefaultTTL == 0 {
		opts.KeyDefaultTTL = min(DefaultKeyTTL, opts.KeyMaxTTL)
	}
	opts.Login = opts.Login.withDefaults()
	return &Service{
		opts: opts, store: store, keys: keys, hasher: hasher, bootstrap: bootstrap, log: log, now: opts.Now,
		addrs: newAddresses(opts.Login.AddressFailures),
		cache: map[[32]byte]cached{}, keyTouch: map[string]time.Time{},
	}
}

// Authenticate implements auth.Authenticator: an API key (vgk_...), a
// session token (a JWT), or the bootstrap admin token.
func (s *Service) Authenticate(ctx context.Context, secret string) (auth.Principal, error) {
	now := s.now()
	sum := sha256.Sum256([]byte(secret))
	s.mu.Lock()
	c, ok := s.cache[sum]
	s.mu.Unlock()
	if ok && now.Before(c.until) {
		s.touch(ctx, c.p, now)
		return c.p, nil
	}
	var (
		p   auth.Principal
		err error
		// ends is when the secret stops working by itself (zero: never).
		ends time.Time
	)
	switch {
	case len(secret) > len(KeyPrefix) && secret[:len(KeyPrefix)] == KeyPrefix:
		p, ends, err = s.authKey(ctx, secret, now)
	case auth.LooksLikeJWT(secret):
		p, ends, err = s.authSession(ctx, secret, now)
	default:
		return s.bootstrap.Authenticate(ctx, secret)
	}
	if err != nil {
		if ok && now.Before(c.lasts) && db.Unavailable(err) {
			// Verified before the outage: it stands until Postgres is back.
			return c.p, nil
		}
		return p, err
	}
	s.mu.Lock()
	if len(s.cache) > 10000 {
		clear(s.cache)
	}
	until, lasts := now.Add(s.opts.CacheTTL), now.Add(s.opts.OutageTTL)
	if !ends.IsZero() {
		// An expiry counts to the instant, not the cache's bound.
		until, lasts = minTime(until, ends), minTime(lasts, ends)
	}
	s.cache[sum] = cached{p: p, until: until, lasts: lasts}
	s.mu.Unlock()
	s.touch(ctx, p, now)
	return p, nil
}

func (s *Service) authKey(ctx context.Context, secret string, now time.Time) (auth.Principal, time.Time, error) {
	k, err := s.store.KeyByHash(ctx, HashSecret(secret))
	if errors.Is(err, ErrNotFound) {
		return auth.Principal{}, time.Time{}, auth.ErrUnauthenticated
	}
	if err != nil {
		return auth.Principal{}, time.Time{}, fmt.Errorf("look up key: %w", err)
	}
	if !k.Active(now) {
		return auth.Principal{}, time.Time{}, auth.ErrUnauthenticated
	}
	return k.Principal(), k.Expires, nil
}

func (s *Service) authSession(ctx context.Context, token string, now time.Time) (auth.Principal, time.Time, error) {
	c, err := s.keys.Verify(token, Audience, now)
	if err != nil || c.SessionID == "" {
		return auth.Principal{}, time.Time{}, auth.ErrUnauthenticated
	}
	u, err := s.store.SessionPrincipal(ctx, c.SessionID, now)
	if errors.Is(err, ErrNotFound) {
		return auth.Principal{}, time.Time{}, auth.ErrUnauthenticated
	}
	if err != nil {
		return auth.Principal{}, time.Time{}, fmt.Errorf("look up session: %w", err)
	}
	p := s.userPrincipal(u)
	p.SessionID = c.SessionID
	var ends time.Time
	if c.ExpiresAt != nil {
		ends = c.ExpiresAt.Time
	}
	return p, ends, nil
}

func (s *Service) userPrincipal(u User) auth.Principal {
	admin := u.Role == auth.RoleAdmin
	return auth.Principal{
		Kind: auth.KindUser, Name: u.Name, Role: u.Role, Teams: slices.Clone(u.Teams), AllTeams: admin,
		Unowned: admin || (s.opts.DefaultTeam != "" && slices.Contains(u.Teams, s.opts.DefaultTeam)),
	}
}

// touch records a key's use, at most once a minute per key and replica.
func (s *Service) touch(ctx context.Context, p auth.Principal, now time.Time) {
	if p.Kind != auth.KindKey {
		return
	}
	s.mu.Lock()
	last := s.keyTouch[p.KeyID]
	due := now.Sub(last) >= time.Minute
	if due {
		s.keyTouch[p.KeyID] = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if err := s.store.TouchKey(context.WithoutCancel(ctx), p.KeyID, now.Truncate(time.Microsecond)); err != nil {
		s.log.WarnContext(ctx, "record key use", "key_id", p.KeyID, "error", err)
	}
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

// forget drops every remembered secret, after a revocation or a change of
// a user.
func (s *Service) forget() {
	s.mu.Lock()
	clear(s.cache)
	s.mu.Unlock()
}

// Tokens are a session's tokens.
type Tokens struct {
	Access, Refresh               string
	AccessExpires, RefreshExpires time.Time
}

// Login checks a user's password and starts a session. A wrong name, a
// wrong password and a disabled user are the same ErrUnauthenticated, in
// the same time. from is the client's address ("": not known, as for a
// call from inside the process). Before the password is checked, a login
// from an address or for a name that failed too often is refused with a
// *ThrottledError (see LoginLimits), without taking a hash slot.
func (s *Service) Login(ctx context.Context, name, password, from string) (Tokens, User, error) {
	now := s.now()
	if from != "" {
		if wait, ok := s.addrs.take(from, now); !ok {
			return Tokens{}, User{}, &ThrottledError{Reason: "too many failed logins from " + from, RetryAfter: wait}
		}
	}
	// A name no user can have is never locked: it would only fill the
	// table. Others count the attempt, and lock the name when it is one
	// too many, before the check: attempts in flight at once are
	// bounded too, across replicas.
	if nameRE.MatchString(name) {
		until, err := s.store.LoginAttempt(ctx, name, now, s.opts.Login)
		if err != nil {
			return Tokens{}, User{}, fmt.Errorf("count login attempt: %w", err)
		}
		if !until.IsZero() {
			return Tokens{}, User{}, &ThrottledError{Reason: "too many failed logins for " + name, RetryAfter: until.Sub(now)}
		}
	}
	u, err := s.store.User(ctx, name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return Tokens{}, User{}, err
	}
	ok, verr := s.hasher.Verify(ctx, u.PasswordHash, password)
	if verr != nil {
		return Tokens{}, User{}, fmt.Errorf("check password: %w", verr)
	}
	if !ok || u.Disabled {
		return Tokens{}, User{}, auth.ErrUnauthenticated
	}
	if from != "" {
		s.addrs.give(from)
	}
	if err := s.store.LoginSucceeded(ctx, name); err != nil {
		s.log.WarnContext(ctx, "login failures not reset", "user", name, "error", err)
	}
	now = now.Truncate(time.Microsecond)
	sess := Session{ID: uuid.Must(uuid.NewV7()).String(), User: u.Name, Created: now, Expires: now.Add(s.opts.RefreshTTL)}
	refresh, hash := newSecret(RefreshPrefix)
	if err := s.store.CreateSession(ctx, sess, hash); err != nil {
		return Tokens{}, User{}, fmt.Errorf("start session: %w", err)
	}
	u.LastLogin = now
	t, err := s.tokens(sess, refresh, now)
	return t, u, err
}

func (s *Service) tokens(sess Session, refresh string, now time.Time) (Tokens, error) {
	exp := now.Add(s.opts.AccessTTL)
	if exp.After(sess.Expires) {
		exp = sess.Expires
	}
	access, err := s.keys.Sign(auth.Claims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject: sess.User, Audience: jwt.ClaimStrings{Audience}, ID: uuid.NewString(),
			IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(exp),
		},
		SessionID: sess.ID,
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("sign token: %w", err)
	}
	return Tokens{Access: access, AccessExpires: exp, Refresh: refresh, RefreshExpires: sess.Expires}, nil
}

// Refresh exchanges a refresh token for new tokens. A refresh token works
// once; presenting a used one again ends its session.
func (s *Service) Refresh(ctx context.Context, refresh string) (Tokens, User, error) {
	now := s.now().Truncate(time.Microsecond)
	next, hash := newSecret(RefreshPrefix)
	sess, u, err := s.store.Refresh(ctx, HashSecret(refresh), hash, now)
	if errors.Is(err, ErrNotFound) {
		s.forget()
		return Tokens{}, User{}, auth.ErrUnauthenticated
	}
	if err != nil {
		return Tokens{}, User{}, err
	}
	t, err := s.tokens(sess, next, now)
	return t, u, err
}

// Logout ends the caller's session: the one of refresh if given, else the
// one the caller's token belongs to.
//
// The refresh token alone is enough: whoever holds it holds the session.
func (s *Service) Logout(ctx context.Context, p auth.Principal, refresh string) error {
	now := s.now().Truncate(time.Microsecond)
	defer s.forget()
	if refresh != "" {
		return s.store.RevokeSession(ctx, "", "", HashSecret(refresh), now)
	}
	switch p.Kind {
	case auth.KindUser:
		return s.store.RevokeSession(ctx, p.Name, p.SessionID, nil, now)
	case "":
		return status.Error(codes.Unauthenticated, "log out with the session's refresh token, or with its access token")
	}
	return status.Error(codes.FailedPrecondition, "only a user's session can be logged out; revoke an API key with `vigil keys revoke`")
}

// CreateUser adds a user with a password.
func (s *Service) CreateUser(ctx context.Context, u User, password string) (User, error) {
	var bad server.BadRequestError
	validateUser(&bad, u, "user")
	validatePassword(&bad, password, "password")
	if err := bad.Err(invalidRequest); err != nil {
		return User{}, err
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return User{}, err
	}
	now := s.now().Truncate(time.Microsecond)
	u.PasswordHash, u.Created, u.Updated, u.LastLogin = hash, now, now, time.Time{}
	u.Teams = uniq(u.Teams)
	if err := s.store.CreateUser(ctx, u); err != nil {
		return User{}, err
	}
	return u, nil
}

// UpdateUser changes a user with fn (which must not touch the password).
func (s *Service) UpdateUser(ctx context.Context, name string, fn func(*User) error) (User, error) {
	defer s.forget()
	return s.store.UpdateUser(ctx, name, "", func(u *User) error {
		if err := fn(u); err != nil {
			return err
		}
		u.Teams = uniq(u.Teams)
		u.Updated = s.now().Truncate(time.Microsecond)
		var bad server.BadRequestError
		validateUser(&bad, *u, "user")
		return bad.Err(invalidRequest)
	})
}

// SetPassword sets name's password: an admin for anyone, a user for
// themselves with their current password. The user's other sessions end.
func (s *Service) SetPassword(ctx context.Context, caller auth.Principal, name, password, current string) error {
	self := caller.Kind == auth.KindUser && caller.Name == name
	if !self && !caller.Has(auth.Admin) {
		return auth.Denied(caller, auth.Admin, "setting another user's password")
	}
	var bad server.BadRequestError
	validatePassword(&bad, password, "password")
	if err := bad.Err(invalidRequest); err != nil {
		return err
	}
	if self && !caller.Has(auth.Admin) || self && current != "" {
		u, err := s.store.User(ctx, name)
		if err != nil {
			return err
		}
		ok, err := s.hasher.Verify(ctx, u.PasswordHash, current)
		if err != nil {
			return err
		}
		if !ok {
			return invalid("current_password", "is not the current password")
		}
	}
	hash, err := s.hasher.Hash(ctx, password)
	if err != nil {
		return err
	}
	keep := ""
	if self {
		keep = caller.SessionID
	}
	defer s.forget()
	_, err = s.store.UpdateUser(ctx, name, keep, func(u *User) error {
		u.PasswordHash, u.Updated = hash, s.now().Truncate(time.Microsecond)
		return nil
	})
	return err
}

// Users lists users.
func (s *Service) Users(ctx context.Context) ([]User, error) { return s.store.Users(ctx) }

// User returns one user.
func (s *Service) User(ctx context.Context, name string) (User, error) {
	return s.store.User(ctx, name)
}

// scopePermission is what a caller must hold to give a key scope.
func scopeAllowed(p auth.Principal, sc auth.Scope) bool {
	switch sc {
	case auth.ScopeIngest:
		// Sending alerts is the least a key does: an operator sets up
		// their team's Alertmanager.
		return p.Has(auth.Ingest) || p.Has(auth.Operate)
	case auth.ScopeRead:
		return p.Has(auth.Read)
	case auth.ScopeOperate:
		return p.Has(auth.Operate)
	case auth.ScopeAdmin:
		return p.Has(auth.Admin)
	}
	return false
}

// CreateKey creates an API key for caller and returns it with its
// secret, which is not kept.
func (s *Service) CreateKey(ctx context.Context, caller auth.Principal, k Key) (Key, string, error) {
	now := s.now().Truncate(time.Microsecond)
	var bad server.BadRequestError
	if k.Name == "" || len(k.Name) > 64 {
		bad.Add("key.name", "must be 1 to 64 characters")
	}
	if len(k.Scopes) == 0 {
		bad.Add("key.scopes", "at least one of ingest, read, operate, admin")
	}
	for i, sc := range k.Scopes {
		if !sc.Valid() {
			bad.Add(fmt.Sprintf("key.scopes[%d]", i), "must be ingest, read, operate or admin")
		}
	}
	if k.Team != "" {
		validTeam(&bad, k.Team, "key.team")
	}
	switch {
	case !k.Expires.IsZero() && !k.Expires.After(now):
		bad.Add("key.expire_time", "is in the past")
	case caller.Has(auth.Admin):
	case k.Expires.IsZero():
		k.Expires = now.Add(s.opts.KeyDefaultTTL)
	case k.Expires.After(now.Add(s.opts.KeyMaxTTL)):
		bad.Addf("key.expire_time", "is %s away; only an admin's keys may live longer than %s",
			k.Expires.Sub(now).Round(time.Hour), s.opts.KeyMaxTTL)
	}
	if err := bad.Err(invalidRequest); err != nil {
		return Key{}, "", err
	}
	k.Scopes = uniq(k.Scopes)
	for _, sc := range k.Scopes {
		if !scopeAllowed(caller, sc) {
			return Key{}, "", status.Errorf(codes.PermissionDenied, "a key with scope %s needs a caller who holds it; %s does not", sc, caller)
		}
	}
	if k.Team == "" && !caller.AllTeams {
		return Key{}, "", invalid("key.team", "is required: a key reaches one of your teams (%v)", caller.Teams)
	}
	if k.Team != "" && !caller.Reaches(k.Team) {
		return Key{}, "", status.Errorf(codes.PermissionDenied, "%s may not create keys for team %s", caller, k.Team)
	}
	owner, err := s.owner(ctx, caller)
	if err != nil {
		return Key{}, "", err
	}
	secret, hash := newSecret(KeyPrefix)
	k.ID, k.Hash, k.Prefix, k.CreatedBy, k.Owner, k.Created = uuid.Must(uuid.NewV7()).String(), hash, keyDisplayPrefix(secret), caller.String(), owner, now
	k.LastUsed, k.Revoked = time.Time{}, time.Time{}
	if err := s.store.CreateKey(ctx, k); err != nil {
		return Key{}, "", fmt.Errorf("create key: %w", err)
	}
	return k, secret, nil
}

// owner is the user a key made by caller acts for: the user, or the user
// behind the calling key; "" for the bootstrap token.
func (s *Service) owner(ctx context.Context, caller auth.Principal) (string, error) {
	switch caller.Kind {
	case auth.KindUser:
		return caller.Name, nil
	case auth.KindKey:
		k, err := s.store.Key(ctx, caller.KeyID)
		if err != nil {
			return "", fmt.Errorf("the calling key: %w", err)
		}
		return k.Owner, nil
	}
	return "", nil
}

// Keys lists the keys the caller manages.
func (s *Service) Keys(ctx context.Context, caller auth.Principal, inactive bool) ([]Key, error) {
	return s.store.Keys(ctx, caller.Teams, caller.AllTeams, inactive, s.now())
}

// RevokeKey revokes a key of one of the caller's teams (any key, for an
// admin).
func (s *Service) RevokeKey(ctx context.Context, caller auth.Principal, id string) (Key, error) {
	k, err := s.store.Key(ctx, id)
	if err != nil {
		return Key{}, err
	}
	if !caller.AllTeams && (k.Team == "" || !caller.Reaches(k.Team)) {
		return Key{}, status.Errorf(codes.PermissionDenied, "key %s belongs to %s; %s may not revoke it", id, teamName(k.Team), caller)
	}
	defer s.forget()
	return s.store.RevokeKey(ctx, id, s.now().Truncate(time.Microsecond))
}

func teamName(t string) string {
	if t == "" {
		return "every team (admins only)"
	}
	return "team " + t
}

func uniq[T comparable](in []T) []T {
	out := make([]T, 0, len(in))
	for _, v := range in {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}
