package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

func foreignKeyViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503"
}

// linkChat links id in tx, replacing the user's previous account of the
// provider and the account's previous user.
func linkChat(ctx context.Context, tx pgx.Tx, id access.ChatIdentity) error {
	if _, err := tx.Exec(ctx, `DELETE FROM chat_identities WHERE provider = $1 AND (external_id = $2 OR user_name = $3)`,
		string(id.Provider), id.ExternalID, id.User); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `INSERT INTO chat_identities (provider, external_id, user_name, linked_at, linked_by) VALUES ($1, $2, $3, $4, $5)`,
		string(id.Provider), id.ExternalID, id.User, id.Linked, id.LinkedBy)
	if foreignKeyViolation(err) {
		return fmt.Errorf("user %s: %w", id.User, access.ErrNotFound)
	}
	return err
}

// LinkChatIdentity links a chat account to a user (ErrNotFound for an
// unknown user).
func (s *Store) LinkChatIdentity(ctx context.Context, id access.ChatIdentity) error {
	return db.InTx(ctx, s.pool, func(tx pgx.Tx) error { return linkChat(ctx, tx, id) })
}

// UnlinkChatIdentity removes a user's account of provider p (ErrNotFound
// when there is none).
func (s *Store) UnlinkChatIdentity(ctx context.Context, user string, p access.ChatProvider) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM chat_identities WHERE user_name = $1 AND provider = $2`, user, string(p))
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("%s account of user %s: %w", p, user, access.ErrNotFound)
	}
	return nil
}

// CreateChatLinkCode stores the hash of a new link code of user, keeping
// at most keep codes per user (the newest), and drops every expired code.
func (s *Store) CreateChatLinkCode(ctx context.Context, hash []byte, user string, p access.ChatProvider, now, expires time.Time, keep int) error {
	return db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM chat_link_codes WHERE expires_at <= $1`, now); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM chat_link_codes WHERE user_name = $1 AND hash NOT IN (
			SELECT hash FROM chat_link_codes WHERE user_name = $1 ORDER BY created_at DESC LIMIT $2)`, user, keep-1); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `INSERT INTO chat_link_codes (hash, user_name, provider, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)`,
			hash, user, string(p), now, expires)
		if foreignKeyViolation(err) {
			return fmt.Errorf("user %s: %w", user, access.ErrNotFound)
		}
		return err
	})
}

// RedeemChatLinkCode uses up the code of hash, if it is of id's provider,
// unexpired at id.Linked and its user enabled, and links id's account to
// that user, whose name it returns; otherwise ErrNotFound. A code of
// another provider is left for its own.
func (s *Store) RedeemChatLinkCode(ctx context.Context, hash []byte, id access.ChatIdentity) (string, error) {
	var name string
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var expires time.Time
		err := tx.QueryRow(ctx, `DELETE FROM chat_link_codes WHERE hash = $1 AND provider = $2 RETURNING user_name, expires_at`,
			hash, string(id.Provider)).Scan(&name, &expires)
		if errors.Is(err, pgx.ErrNoRows) {
			return fmt.Errorf("link code: %w", access.ErrNotFound)
		}
		if err != nil {
			return err
		}
		var disabled bool
		if err := tx.QueryRow(ctx, `SELECT disabled FROM users WHERE name = $1 FOR UPDATE`, name).Scan(&disabled); err != nil {
			return err
		}
		if !expires.After(id.Linked) || disabled {
			// Gone either way: the code is deleted, not the link made.
			name = ""
			return nil
		}
		id.User, id.LinkedBy = name, "user:"+name
		return linkChat(ctx, tx, id)
	})
	if err == nil && name == "" {
		err = fmt.Errorf("link code: %w", access.ErrNotFound)
	}
	return name, err
}

// ChatUser returns the user a chat account is linked to (ErrNotFound for
// none), disabled or not.
func (s *Store) ChatUser(ctx context.Context, p access.ChatProvider, externalID string) (access.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+prefixed("u.", userCols)+` FROM chat_identities c JOIN users u ON u.name = c.user_name
		WHERE c.provider = $1 AND c.external_id = $2`, string(p), externalID))
	if err != nil {
		return u, fmt.Errorf("%s account %s: %w", p, externalID, err)
	}
	return u, nil
}

// withChatIdentities fills in the chat accounts of us.
func (s *Store) withChatIdentities(ctx context.Context, us []access.User) error {
	if len(us) == 0 {
		return nil
	}
	names := make([]string, len(us))
	for i, u := range us {
		names[i] = u.Name
	}
	rows, err := s.pool.Query(ctx, `SELECT provider, external_id, user_name, linked_at, linked_by FROM chat_identities
		WHERE user_name = ANY($1) ORDER BY user_name, provider`, names)
	if err != nil {
		return err
	}
	ids, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.ChatIdentity, error) {
		var (
			id access.ChatIdentity
			p  string
		)
		err := r.Scan(&p, &id.ExternalID, &id.User, &id.Linked, &id.LinkedBy)
		id.Provider = access.ChatProvider(p)
		return id, err
	})
	if err != nil {
		return err
	}
	for i := range us {
		for _, id := range ids {
			if id.User == us[i].Name {
				us[i].ChatIdentities = append(us[i].ChatIdentities, id)
			}
		}
	}
	return nil
}
