// Package actionlink mints and verifies the links an email carries to act
// on what it tells (acknowledge, escalate or snooze an incident; approve,
// reject or postpone a repair): a token in the URL, bound to the action,
// its target, the address the email went to and an expiry, signed with
// HMAC-SHA256 under a key of its own derived from VIGIL_ENCRYPTION_KEY.
//
// A token is a bearer credential: whoever holds the email may act, as the
// user the address belongs to, once (the gateway records each token's id
// when it is used) and until it expires. It says nothing secret beyond
// what the email itself says, and nothing in it is trusted unless the
// signature holds.
package actionlink

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/vigil-ops/vigil/pkg/approval"
)

// info separates this key from every other one derived from the
// encryption key: a token is never a valid signature of anything else.
const info = "vigil actionlink v1"

// Key derives the signing key from the encryption key (VIGIL_ENCRYPTION_KEY).
func Key(encryptionKey []byte) ([]byte, error) {
	if len(encryptionKey) < 16 {
		return nil, errors.New("actionlink: the encryption key is too short")
	}
	return hkdf.Key(sha256.New, encryptionKey, nil, info, 32)
}

// Link is what a verified token says.
type Link struct {
	// ID names the token (hex): it is used once.
	ID     string
	Action approval.Verb
	// Target is the incident's id for an action OnIncident, else the
	// repair's.
	Target    string
	Recipient string
	Expires   time.Time
}

// Errors of Verify.
var (
	ErrInvalid = errors.New("not a Vigil action link")
	ErrExpired = errors.New("the action link has expired")
)

// The layout, before the MAC: version, the verb's code, the target (16
// bytes), the expiry (Unix seconds, 8 bytes), a random id (8 bytes), the
// recipient.
const (
	version   = 1
	idLen     = 8
	headerLen = 1 + 1 + 16 + 8 + idLen
	macLen    = 16 // HMAC-SHA256 cut to 128 bits: forging one is 2^128 tries
	// maxRecipient is an address's longest (RFC 5321).
	maxRecipient = 254
)

// actions are the verbs a link may carry, by their one-byte code.
var actions = map[byte]approval.Verb{
	'k': approval.Acknowledge, 'e': approval.Escalate, 'z': approval.Snooze,
	'a': approval.Approve, 'r': approval.Reject, 'l': approval.Later,
}

func codeOf(v approval.Verb) (byte, bool) {
	for c, a := range actions {
		if a == v {
			return c, true
		}
	}
	return 0, false
}

// Mint returns a token for action on target (an incident's or repair's
// id), for the email to recipient, valid for ttl: what notify's email
// channel puts in each recipient's links (.../api/v1/actions/TOKEN).
func Mint(key []byte, action approval.Verb, target, recipient string, ttl time.Duration) (string, error) {
	return mint(key, action, target, recipient, time.Now().Add(ttl), rand.Reader.Read)
}

func mint(key []byte, action approval.Verb, target, recipient string, expires time.Time, random func([]byte) (int, error)) (string, error) {
	code, ok := codeOf(action)
	if !ok {
		return "", fmt.Errorf("actionlink: no link for %q", action)
	}
	id, err := uuid.Parse(target)
	if err != nil {
		return "", fmt.Errorf("actionlink: target: %w", err)
	}
	if recipient == "" || len(recipient) > maxRecipient {
		return "", errors.New("actionlink: the recipient must be an address of at most 254 characters")
	}
	b := make([]byte, headerLen, headerLen+len(recipient)+macLen)
	b[0], b[1] = version, code
	copy(b[2:18], id[:])
	binary.BigEndian.PutUint64(b[18:26], uint64(expires.Unix())) //nolint:gosec // an expiry after 1970
	if _, err := random(b[26:headerLen]); err != nil {
		return "", fmt.Errorf("actionlink: %w", err)
	}
	b = append(b, recipient...)
	return base64.RawURLEncoding.EncodeToString(append(b, sum(key, b)...)), nil
}

func sum(key, b []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(b)
	return m.Sum(nil)[:macLen]
}

// Verify checks token's signature (in constant time) and expiry at now,
// and returns what it says.
func Verify(key []byte, token string, now time.Time) (Link, error) {
	b, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(b) < headerLen+1+macLen || len(b) > headerLen+maxRecipient+macLen {
		return Link{}, ErrInvalid
	}
	payload, mac := b[:len(b)-macLen], b[len(b)-macLen:]
	if !hmac.Equal(mac, sum(key, payload)) || payload[0] != version {
		return Link{}, ErrInvalid
	}
	action, ok := actions[payload[1]]
	if !ok {
		return Link{}, ErrInvalid
	}
	target, _ := uuid.FromBytes(payload[2:18]) // 16 bytes: never fails
	l := Link{
		ID: hex.EncodeToString(payload[26:headerLen]), Action: action, Target: target.String(),
		Recipient: string(payload[headerLen:]),
		Expires:   time.Unix(int64(binary.BigEndian.Uint64(payload[18:26])), 0).UTC(), //nolint:gosec // signed by Mint
	}
	if !now.Before(l.Expires) {
		return l, ErrExpired
	}
	return l, nil
}
