// Package access holds who may use Vigil: users and their passwords,
// sessions, API keys, and the authenticator that turns a presented secret
// into an auth.Principal.
package access

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Errors the store and the service answer; grpcapi maps them to codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
)

// User is a person who logs in.
type User struct {
	Name         string
	Email        string
	Role         auth.Role
	Teams        []string
	Disabled     bool
	PasswordHash string
	Created      time.Time
	Updated      time.Time
	LastLogin    time.Time
	// ChatIdentities are the user's linked chat accounts, by provider.
	ChatIdentities []ChatIdentity
}

// Key is an API key. Only the hash of its secret is kept.
type Key struct {
	ID        string
	Name      string
	Hash      []byte
	Prefix    string
	Scopes    []auth.Scope
	Team      string
	CreatedBy string
	// Owner is the user the key acts for (its maker, or the user behind
	// the key that made it; "" for the bootstrap token's keys): the key
	// works only while the owner is not disabled.
	Owner    string
	Created  time.Time
	Expires  time.Time
	LastUsed time.Time
	Revoked  time.Time
}

// Active reports whether the key may be used at now.
func (k Key) Active(now time.Time) bool {
	return k.Revoked.IsZero() && (k.Expires.IsZero() || now.Before(k.Expires))
}

// Principal is who a call with the key is made as.
func (k Key) Principal() auth.Principal {
	p := auth.Principal{Kind: auth.KindKey, Name: k.Name, Scopes: slices.Clone(k.Scopes), KeyID: k.ID}
	if k.Team == "" {
		// Only admins create keys without a team.
		p.AllTeams, p.Unowned = true, true
	} else {
		p.Teams = []string{k.Team}
	}
	return p
}

// Session is a user's login: refreshed with a single-use refresh token
// until it expires or is revoked.
type Session struct {
	ID      string
	User    string
	Created time.Time
	Expires time.Time
	Revoked time.Time
}

// invalid is the refusal of a request for one bad field.
func invalid(field, format string, args ...any) error {
	var bad server.BadRequestError
	bad.Addf(field, format, args...)
	return bad.Err(invalidRequest)
}

// invalidRequest is the message of every refusal of the access API's
// fields; the violations say what is wrong.
const invalidRequest = "invalid request"

var (
	nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	teamRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
)

// MinPasswordLength is the shortest password Vigil accepts.
const MinPasswordLength = 12

// validateUser adds to bad what is wrong with a user's fields (prefix
// names the message in the request, "user").
func validateUser(bad *server.BadRequestError, u User, prefix string) {
	if !nameRE.MatchString(u.Name) {
		bad.Add(prefix+".name", "must be 1 to 64 lower-case letters, digits, '.', '_' or '-', starting with a letter or digit")
	}
	if !u.Role.Valid() {
		bad.Add(prefix+".role", "must be admin, operator or viewer")
	}
	validateTeams(bad, u.Teams, prefix+".teams")
	if len(u.Email) > 254 {
		bad.Add(prefix+".email", "is longer than 254 characters")
	}
}

// validateTeams adds the first bad team name of teams to bad.
func validateTeams(bad *server.BadRequestError, teams []string, field string) {
	for i, t := range teams {
		if !validTeam(bad, t, fmt.Sprintf("%s[%d]", field, i)) {
			return
		}
	}
}

func validTeam(bad *server.BadRequestError, team, field string) bool {
	if !teamRE.MatchString(team) {
		bad.Addf(field, "%q is not a team name (a DNS label: lower-case letters, digits and '-')", team)
		return false
	}
	return true
}

// validatePassword adds to bad what is wrong with a new password.
func validatePassword(bad *server.BadRequestError, pw, field string) {
	if len(pw) < MinPasswordLength {
		bad.Addf(field, "must be at least %d characters", MinPasswordLength)
	}
	if len(pw) > 1024 {
		bad.Add(field, "must be at most 1024 characters")
	}
}
