package access

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/vigil-ops/vigil/pkg/auth"
)

// ChatProvider is a chat service whose accounts can be linked to users.
type ChatProvider string

// Chat providers.
const (
	// Telegram accounts are the user's numeric id (from.id of an update).
	Telegram ChatProvider = "telegram"
	// Slack accounts are "TEAM_ID:USER_ID": a member id qualified by its
	// workspace, since one Vigil may hear from several workspaces.
	Slack ChatProvider = "slack"
	// LINE accounts are the user's id: U and 32 hex digits (source.userId
	// of a webhook event), the same for every chat with Vigil's channel.
	Line ChatProvider = "line"
)

// Valid reports whether p is one of the providers.
func (p ChatProvider) Valid() bool { return p == Telegram || p == Slack || p == Line }

// ChatIdentity is a chat account linked to a user.
type ChatIdentity struct {
	Provider   ChatProvider
	ExternalID string
	User       string
	Linked     time.Time
	// LinkedBy is who made the link: the admin who mapped it, or the user
	// who sent their code ("user:alice").
	LinkedBy string
}

// ChatLinkCodeTTL is how long a link code works.
const ChatLinkCodeTTL = 10 * time.Minute

// chatLinkCodesKept is how many unused codes a user may hold; creating one
// more drops the oldest.
const chatLinkCodesKept = 3

// ChatLinkCode is a one-time code a user sends to a bot to link the chat
// account that sends it. Only its hash is kept.
type ChatLinkCode struct {
	Code     string
	Provider ChatProvider
	Expires  time.Time
}

// Instruction tells a person what to do with the code. The verbs are the
// ones the chat integrations understand (services/gateway/internal/chat).
func (c ChatLinkCode) Instruction() string {
	switch c.Provider {
	case Slack:
		return "In Slack, type /vigil link " + c.Code + " (within 10 minutes; it works once)."
	case Line:
		return "In a 1:1 chat with the Vigil bot on LINE, send /link " + c.Code + " (within 10 minutes; it works once)."
	}
	return "In a private chat with the Vigil bot on Telegram, send /link " + c.Code + " (within 10 minutes; it works once)."
}

// linkCodeAlphabet is Crockford's base32: no I, L, O or U to misread.
const linkCodeAlphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// newLinkCode returns 8 random characters of linkCodeAlphabet: 40 bits,
// enough for a code that works once, for 10 minutes, and whose guesses
// each cost a signed chat message.
func newLinkCode() string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	for i, v := range b {
		b[i] = linkCodeAlphabet[v&31]
	}
	return string(b)
}

// normalizeLinkCode reads a code as a person may type it: any case, with
// spaces or dashes, O for 0 and I or L for 1. It returns "" for what is no
// code.
func normalizeLinkCode(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case ' ', '-':
			return -1
		case 'o', 'O':
			return '0'
		case 'i', 'I', 'l', 'L':
			return '1'
		}
		if r >= 'a' && r <= 'z' {
			return r - 'a' + 'A'
		}
		return r
	}, s)
	if len(s) != 8 || strings.Trim(s, linkCodeAlphabet) != "" {
		return ""
	}
	return s
}

func linkCodeHash(code string) []byte { return HashSecret("chat-link:" + code) }

var (
	telegramIDRE = regexp.MustCompile(`^[1-9][0-9]{0,19}$`)
	slackIDRE    = regexp.MustCompile(`^[A-Z0-9]{2,32}:[A-Z0-9]{2,32}$`)
	lineIDRE     = regexp.MustCompile(`^U[0-9a-f]{32}$`)
)

// ValidateChatIdentity checks a provider and an account id.
func ValidateChatIdentity(p ChatProvider, externalID string) error {
	switch p {
	case Telegram:
		if !telegramIDRE.MatchString(externalID) {
			return invalid("external_id", "a Telegram account is the user's numeric id, like 123456789")
		}
	case Slack:
		if !slackIDRE.MatchString(externalID) {
			return invalid("external_id", "a Slack account is TEAM_ID:USER_ID, like T0123ABCD:U0456EFGH")
		}
	case Line:
		if !lineIDRE.MatchString(externalID) {
			return invalid("external_id", "a LINE account is the user's id, U and 32 hex digits, like U4af4980629d0b6b1a5f2e2c8e1f6a3b2")
		}
	default:
		return invalid("provider", "must be telegram, slack or line")
	}
	return nil
}

// LinkChatIdentity links a chat account to user name (the admin
// mapping), replacing the user's previous account of the provider and the
// account's previous user.
func (s *Service) LinkChatIdentity(ctx context.Context, caller auth.Principal, name string, p ChatProvider, externalID string) (User, error) {
	if err := ValidateChatIdentity(p, externalID); err != nil {
		return User{}, err
	}
	id := ChatIdentity{Provider: p, ExternalID: externalID, User: name, Linked: s.now().Truncate(time.Microsecond), LinkedBy: caller.String()}
	if err := s.store.LinkChatIdentity(ctx, id); err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "chat account linked", "provider", string(p), "external_id", externalID, "user", name, "by", caller.String())
	return s.store.User(ctx, name)
}

// UnlinkChatIdentity removes user name's account of a provider: an admin
// for anyone, a user for themselves.
func (s *Service) UnlinkChatIdentity(ctx context.Context, caller auth.Principal, name string, p ChatProvider) (User, error) {
	if caller.Kind != auth.KindUser || caller.Name != name {
		if !caller.Has(auth.Admin) {
			return User{}, auth.Denied(caller, auth.Admin, "unlinking another user's chat account")
		}
	}
	if !p.Valid() {
		return User{}, invalid("provider", "must be telegram, slack or line")
	}
	if err := s.store.UnlinkChatIdentity(ctx, name, p); err != nil {
		return User{}, err
	}
	s.log.InfoContext(ctx, "chat account unlinked", "provider", string(p), "user", name, "by", caller.String())
	return s.store.User(ctx, name)
}

// CreateChatLinkCode returns a new link code for the calling user. Only
// providers whose webhook is configured (Options.ChatProviders) issue
// codes: another's could never be redeemed.
func (s *Service) CreateChatLinkCode(ctx context.Context, caller auth.Principal, p ChatProvider) (ChatLinkCode, error) {
	if !p.Valid() {
		return ChatLinkCode{}, invalid("provider", "must be telegram, slack or line")
	}
	if caller.Kind != auth.KindUser {
		return ChatLinkCode{}, status.Errorf(codes.FailedPrecondition,
			"only a user links a chat account, with a code of their own; %s is no user (an admin links anyone's with `vigil users link`)", caller)
	}
	if !slices.Contains(s.opts.ChatProviders, p) {
		return ChatLinkCode{}, status.Errorf(codes.FailedPrecondition,
			"%s is not set up on this Vigil, so a code could not be redeemed: an admin sets %s (or links your account with `vigil users link`)", p, chatSetting(p))
	}
	now := s.now().Truncate(time.Microsecond)
	c := ChatLinkCode{Code: newLinkCode(), Provider: p, Expires: now.Add(ChatLinkCodeTTL)}
	if err := s.store.CreateChatLinkCode(ctx, linkCodeHash(c.Code), caller.Name, p, now, c.Expires, chatLinkCodesKept); err != nil {
		return ChatLinkCode{}, fmt.Errorf("create link code: %w", err)
	}
	return c, nil
}

func chatSetting(p ChatProvider) string {
	switch p {
	case Slack:
		return "VIGIL_SLACK_SIGNING_SECRET"
	case Line:
		return "VIGIL_LINE_CHANNEL_SECRET and VIGIL_LINE_CHANNEL_TOKEN"
	}
	return "VIGIL_TELEGRAM_BOT_TOKEN (or VIGIL_TELEGRAM_WEBHOOK_SECRET)"
}

// ErrLinkCode means a link code is unknown, used, expired, of another
// provider, or its user is disabled: the sender learns no more.
var ErrLinkCode = errors.New("link code unknown or expired")

// RedeemChatLinkCode links the account externalID of provider p to the
// user whose code it is, and uses the code up.
func (s *Service) RedeemChatLinkCode(ctx context.Context, p ChatProvider, code, externalID string) (User, error) {
	if err := ValidateChatIdentity(p, externalID); err != nil {
		return User{}, err
	}
	norm := normalizeLinkCode(code)
	if norm == "" {
		return User{}, ErrLinkCode
	}
	now := s.now().Truncate(time.Microsecond)
	name, err := s.store.RedeemChatLinkCode(ctx, linkCodeHash(norm), ChatIdentity{Provider: p, ExternalID: externalID, Linked: now})
	if errors.Is(err, ErrNotFound) {
		return User{}, ErrLinkCode
	}
	if err != nil {
		return User{}, fmt.Errorf("redeem link code: %w", err)
	}
	s.log.InfoContext(ctx, "chat account linked", "provider", string(p), "external_id", externalID, "user", name, "by", "link code")
	return s.store.User(ctx, name)
}

// ChatPrincipal is who a chat account acts as: its user, with the user's
// role and teams. It answers auth.ErrUnauthenticated when the account is
// linked to nobody or its user is disabled.
func (s *Service) ChatPrincipal(ctx context.Context, p ChatProvider, externalID string) (auth.Principal, error) {
	u, err := s.store.ChatUser(ctx, p, externalID)
	if errors.Is(err, ErrNotFound) {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	if err != nil {
		return auth.Principal{}, fmt.Errorf("look up chat account: %w", err)
	}
	if u.Disabled {
		return auth.Principal{}, auth.ErrUnauthenticated
	}
	return s.userPrincipal(u), nil
}
