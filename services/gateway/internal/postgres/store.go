// Package postgres keeps the gateway's schema: users, their chat accounts,
// sessions, API keys and the audit log.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// Migrations are the gateway schema's migrations.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// Store is the gateway's repository.
type Store struct {
	pool *pgxpool.Pool
}

// New returns a Store over pool (search_path: the gateway schema).
func New(pool *pgxpool.Pool) *Store { return &Store{pool: pool} }

func uniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

func ts(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func val(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// --- users

const userCols = `name, email, role, teams, password_hash, disabled, created_at, updated_at, last_login_at`

func scanUser(row pgx.Row) (access.User, error) {
	var (
		u    access.User
		role string
		last *time.Time
	)
	err := row.Scan(&u.Name, &u.Email, &role, &u.Teams, &u.PasswordHash, &u.Disabled, &u.Created, &u.Updated, &last)
	if errors.Is(err, pgx.ErrNoRows) {
		return u, access.ErrNotFound
	}
	u.Role, u.LastLogin = auth.Role(role), val(last)
	return u, err
}

// CreateUser stores a new user.
func (s *Store) CreateUser(ctx context.Context, u access.User) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO users (`+userCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		u.Name, u.Email, string(u.Role), u.Teams, u.PasswordHash, u.Disabled, u.Created, u.Updated, ts(u.LastLogin))
	if uniqueViolation(err) {
		return fmt.Errorf("user %s: %w", u.Name, access.ErrExists)
	}
	return err
}

// User returns a user by name.
func (s *Store) User(ctx context.Context, name string) (access.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, name))
	if err != nil {
		return u, fmt.Errorf("user %s: %w", name, err)
	}
	us := []access.User{u}
	if err := s.withChatIdentities(ctx, us); err != nil {
		return u, fmt.Errorf("chat accounts of user %s: %w", name, err)
	}
	return us[0], nil
}

// Users returns every user by name.
func (s *Store) Users(ctx context.Context) ([]access.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.User, error) { return scanUser(r) })
	if err != nil {
		return nil, err
	}
	if err := s.withChatIdentities(ctx, us); err != nil {
		return nil, fmt.Errorf("chat accounts: %w", err)
	}
	return us, nil
}

// UpdateUser changes a user with fn inside one transaction; when fn
// disables the user or changes the password, their sessions are revoked
// in it too (keep names the session to spare).
func (s *Store) UpdateUser(ctx context.Context, name, keep string, fn func(*access.User) error) (access.User, error) {
	var out access.User
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1 FOR UPDATE`, name))
		if err != nil {
			return fmt.Errorf("user %s: %w", name, err)
		}
		before := u
		if err := fn(&u); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE users SET email = $2, role = $3, teams = $4, password_hash = $5, disabled = $6, updated_at = $7
			WHERE name = $1`, u.Name, u.Email, string(u.Role), u.Teams, u.PasswordHash, u.Disabled, u.Updated); err != nil {
			return err
		}
		if (u.Disabled && !before.Disabled) || u.PasswordHash != before.PasswordHash {
			if _, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2 WHERE user_name = $1 AND revoked_at IS NULL AND id::text <> $3`,
				name, u.Updated, keep); err != nil {
				return err
			}
		}
		out = u
		return nil
	})
	if err != nil {
		return out, err
	}
	us := []access.User{out}
	if err := s.withChatIdentities(ctx, us); err != nil {
		return out, fmt.Errorf("chat accounts of user %s: %w", name, err)
	}
	return us[0], nil
}

// --- sessions

// CreateSession starts a session for user with refresh token hash, and
// records the login.
func (s *Store) CreateSession(ctx context.Context, sess access.Session, refreshHash []byte) error {
	return db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO sessions (id, user_name, refresh_hash, created_at, refreshed_at, expires_at)
			VALUES ($1, $2, $3, $4, $4, $5)`, sess.ID, sess.User, refreshHash, sess.Created, sess.Expires); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE users SET last_login_at = $2 WHERE name = $1`, sess.User, sess.Created)
		return err
	})
}

// SessionPrincipal returns the user of an active session, or ErrNotFound
// when the session is unknown, revoked, expired, or its user disabled.
func (s *Store) SessionPrincipal(ctx context.Context, id string, now time.Time) (access.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+prefixed("u.", userCols)+` FROM sessions s JOIN users u ON u.name = s.user_name
		WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2 AND NOT u.disabled`, id, now))
	if err != nil {
		return u, fmt.Errorf("session: %w", err)
	}
	return u, nil
}

// Refresh replaces the refresh token oldHash of an active session by
// newHash and returns the session and its user. A token that was already
// replaced, however many refreshes ago, revokes its session (it was
// copied) and answers ErrNotFound.
func (s *Store) Refresh(ctx context.Context, oldHash, newHash []byte, now time.Time) (access.Session, access.User, error) {
	var (
		sess  access.Session
		u     access.User
		spent bool
	)
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `UPDATE sessions s SET refresh_hash = $2, refreshed_at = $3
			FROM users u WHERE u.name = s.user_name AND s.refresh_hash = $1
			AND s.revoked_at IS NULL AND s.expires_at > $3 AND NOT u.disabled
			RETURNING s.id::text, s.user_name, s.created_at, s.expires_at`, oldHash, newHash, now).
			Scan(&sess.ID, &sess.User, &sess.Created, &sess.Expires)
		if errors.Is(err, pgx.ErrNoRows) {
			// Reuse of a replaced token: it was copied, so end the session
			// it belonged to -- unless it was replaced a moment ago, which
			// is two clients of one user refreshing at once. The
			// revocation must commit: answer ErrNotFound after the
			// transaction, not by rolling it back.
			spent = true
			_, err := tx.Exec(ctx, `UPDATE sessions SET revoked_at = $2
				WHERE revoked_at IS NULL AND id = (SELECT session_id FROM used_refresh_tokens
					WHERE hash = $1 AND used_at < $2::timestamptz - interval '10 seconds')`, oldHash, now)
			return err
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO used_refresh_tokens (hash, session_id, used_at) VALUES ($1, $2, $3)`,
			oldHash, sess.ID, now); err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE name = $1`, sess.User))
		return err
	})
	if err == nil && spent {
		err = fmt.Errorf("refresh token: %w", access.ErrNotFound)
	}
	return sess, u, err
}

// RevokeSession ends a session: by id, or by its refresh token's hash
// when id is empty; of user, unless user is empty (the refresh token is
// the session's own credential).
func (s *Store) RevokeSession(ctx context.Context, user, id string, refreshHash []byte, now time.Time) error {
	var (
		tag pgconn.CommandTag
		err error
	)
	if id != "" {
		tag, err = s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $3) WHERE id = $1 AND user_name = $2`, id, user, now)
	} else {
		tag, err = s.pool.Exec(ctx, `UPDATE sessions SET revoked_at = coalesce(revoked_at, $3) WHERE refresh_hash = $1 AND ($2 = '' OR user_name = $2)`, refreshHash, user, now)
	}
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("session: %w", access.ErrNotFound)
	}
	return nil
}

// --- keys

const keyCols = `id::text, name, hash, prefix, scopes, team, created_by, owner, created_at, expires_at, last_used_at, revoked_at`

func scanKey(row pgx.Row) (access.Key, error) {
	var (
		k                      access.Key
		scopes                 []string
		expires, used, revoked *time.Time
	)
	err := row.Scan(&k.ID, &k.Name, &k.Hash, &k.Prefix, &scopes, &k.Team, &k.CreatedBy, &k.Owner, &k.Created, &expires, &used, &revoked)
	if errors.Is(err, pgx.ErrNoRows) {
		return k, access.ErrNotFound
	}
	for _, s := range scopes {
		k.Scopes = append(k.Scopes, auth.Scope(s))
	}
	k.Expires, k.LastUsed, k.Revoked = val(expires), val(used), val(revoked)
	return k, err
}

func scopeStrings(s []auth.Scope) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = string(v)
	}
	return out
}

// CreateKey stores a new key.
func (s *Store) CreateKey(ctx context.Context, k access.Key) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, name, hash, prefix, scopes, team, created_by, owner, created_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		k.ID, k.Name, k.Hash, k.Prefix, scopeStrings(k.Scopes), k.Team, k.CreatedBy, k.Owner, k.Created, ts(k.Expires))
	return err
}

// KeyByHash returns the key whose secret hashes to hash, ErrNotFound when
// there is none or its owner is disabled (or gone).
func (s *Store) KeyByHash(ctx context.Context, hash []byte) (access.Key, error) {
	return scanKey(s.pool.QueryRow(ctx, `SELECT `+prefixed("k.", keyCols)+` FROM api_keys k LEFT JOIN users u ON u.name = k.owner
		WHERE k.hash = $1 AND (k.owner = '' OR u.disabled = false)`, hash))
}

// Key returns a key by id.
func (s *Store) Key(ctx context.Context, id string) (access.Key, error) {
	if _, err := uuid.Parse(id); err != nil {
		return access.Key{}, fmt.Errorf("key %s: %w", id, access.ErrNotFound)
	}
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
	if err != nil {
		return k, fmt.Errorf("key %s: %w", id, err)
	}
	return k, nil
}

// Keys returns the keys of teams (every key when all), newest first;
// inactive ones (revoked, expired at now) only with inactive.
func (s *Store) Keys(ctx context.Context, teams []string, all, inactive bool, now time.Time) ([]access.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys
		WHERE ($1 OR team = ANY($2)) AND ($3 OR (revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $4)))
		ORDER BY created_at DESC, id DESC`, all, teams, inactive, now)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.Key, error) { return scanKey(r) })
}

// RevokeKey revokes a key; revoking it again keeps the first time.
func (s *Store) RevokeKey(ctx context.Context, id string, now time.Time) (access.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `UPDATE api_keys SET revoked_at = coalesce(revoked_at, $2) WHERE id = $1 RETURNING `+keyCols, id, now))
	if err != nil {
		return k, fmt.Errorf("key %s: %w", id, err)
	}
	return k, nil
}

// TouchKey records that a key was used at now.
func (s *Store) TouchKey(ctx context.Context, id string, now time.Time) error {
	_, err := s.pool.Exec(ctx, `UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)`, id, now)
	return err
}

// --- audit

// AuditEvent is one row of the audit log.
type AuditEvent struct {
	ID                                   string
	Time                                 time.Time
	Actor, Method, Target, Code, Message string
	TraceID, Peer                        string
}

// Audit appends an entry.
func (s *Store) Audit(ctx context.Context, e auth.AuditEntry) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO audit_log (id, at, actor, method, target, code, message, trace_id, peer)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		uuid.Must(uuid.NewV7()), e.Time, e.Actor, e.Method, e.Target, e.Code.String(), e.Message, e.TraceID, e.Peer)
	return err
}

// AuditQuery selects audit events.
type AuditQuery struct {
	Actor, Method, Target string
	Since, Until          time.Time
	Limit                 int
	// Code is a result's gRPC code name ("OK", "PermissionDenied");
	// Failed, every result but OK.
	Code   string
	Failed bool
	// After is the last event of the previous page.
	AfterTime time.Time
	AfterID   string
}

// AuditEvents returns events newest first, at most q.Limit+1 (the extra
// one says there is a next page). Method matches a suffix, literally
// (not a LIKE pattern: "_" and "%" are themselves).
func (s *Store) AuditEvents(ctx context.Context, q AuditQuery) ([]AuditEvent, error) {
	after := ""
	args := []any{q.Actor, q.Method, q.Target, ts(q.Since), ts(q.Until), q.Limit + 1, q.Code, q.Failed}
	if q.AfterID != "" {
		after = ` AND (at, id) < ($9, $10)`
		args = append(args, q.AfterTime, q.AfterID)
	}
	rows, err := s.pool.Query(ctx, `SELECT id::text, at, actor, method, target, code, message, trace_id, peer FROM audit_log
		WHERE ($1 = '' OR actor = $1) AND ($2 = '' OR right(method, length($2)) = $2) AND ($3 = '' OR target = $3)
		AND ($4::timestamptz IS NULL OR at >= $4) AND ($5::timestamptz IS NULL OR at < $5)
		AND ($7 = '' OR code = $7) AND (NOT $8 OR code <> 'OK')`+after+`
		ORDER BY at DESC, id DESC LIMIT $6`, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (AuditEvent, error) {
		var e AuditEvent
		err := r.Scan(&e.ID, &e.Time, &e.Actor, &e.Method, &e.Target, &e.Code, &e.Message, &e.TraceID, &e.Peer)
		return e, err
	})
}

// Prune deletes audit events before auditBefore (in chunks), sessions
// that ended before sessionsBefore, Telegram update ids and LINE event
// ids older than TelegramUpdateRetention, failed logins a day old, and
// the records of email action links that expired.
func (s *Store) Prune(ctx context.Context, auditBefore, sessionsBefore time.Time) (int64, error) {
	n, err := db.DeleteInBatches(ctx, s.pool, 5000, `DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)`, auditBefore)
	if err != nil {
		return n, err
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE expires_at < $1 OR revoked_at < $1`, sessionsBefore)
	if err != nil {
		return n, err
	}
	n += tag.RowsAffected()
	tag, err = s.pool.Exec(ctx, `DELETE FROM telegram_updates WHERE received_at < $1`, time.Now().Add(-TelegramUpdateRetention))
	if err != nil {
		return n, err
	}
	n += tag.RowsAffected()
	// LINE redelivers an event for a day at most, like Telegram.
	tag, err = s.pool.Exec(ctx, `DELETE FROM line_events WHERE received_at < $1`, time.Now().Add(-TelegramUpdateRetention))
	if err != nil {
		return n, err
	}
	n += tag.RowsAffected()
	// A day is longer than any login window and lock.
	tag, err = s.pool.Exec(ctx, `DELETE FROM login_failures WHERE greatest(last_failure_at, locked_until) < $1`, time.Now().Add(-24*time.Hour))
	if err != nil {
		return n, err
	}
	n += tag.RowsAffected()
	// An expired link is refused without its row.
	tag, err = s.pool.Exec(ctx, `DELETE FROM action_links_used WHERE expires_at < $1`, time.Now())
	if err != nil {
		return n, err
	}
	return n + tag.RowsAffected(), nil
}

func prefixed(p, cols string) string {
	out := ""
	for i, c := range splitCols(cols) {
		if i > 0 {
			out += ", "
		}
		out += p + c
	}
	return out
}

func splitCols(cols string) []string {
	var out []string
	for _, c := range strings.Split(cols, ",") {
		out = append(out, strings.TrimSpace(c))
	}
	return out
}
