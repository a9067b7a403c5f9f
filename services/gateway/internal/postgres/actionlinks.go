package postgres

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/actionlink"
	"github.com/vigil-ops/vigil/services/gateway/internal/access"
)

// UserByEmail returns the one user whose email is address (case
// insensitive), or access.ErrNotFound when none or several have it: an
// address shared by two users acts as neither.
func (s *Store) UserByEmail(ctx context.Context, address string) (access.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users WHERE email <> '' AND lower(email) = lower($1) LIMIT 2`, address)
	if err != nil {
		return access.User{}, fmt.Errorf("user of %s: %w", address, err)
	}
	us, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (access.User, error) { return scanUser(r) })
	if err != nil {
		return access.User{}, fmt.Errorf("user of %s: %w", address, err)
	}
	if len(us) != 1 {
		return access.User{}, fmt.Errorf("user of %s: %d users: %w", address, len(us), access.ErrNotFound)
	}
	return us[0], nil
}

// UseActionLink records link l as used at now and runs act, in one
// transaction: it returns used (and does not run act) when l was used
// already; a second use waits for the first's transaction, so only one
// acts. The record is kept only when act says so (keep): a link whose
// action was refused or failed can be used again.
func (s *Store) UseActionLink(ctx context.Context, l actionlink.Link, now time.Time, act func(context.Context) (keep bool)) (used bool, err error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return false, err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	tag, err := tx.Exec(ctx, `INSERT INTO action_links_used (id, action, target, recipient, used_at, expires_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO NOTHING`,
		l.ID, string(l.Action), l.Target, strings.ToLower(l.Recipient), now, l.Expires)
	if err != nil {
		return false, fmt.Errorf("record action link: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return true, nil
	}
	if !act(ctx) {
		return false, nil
	}
	return false, tx.Commit(ctx)
}

// ActionLinkUsed reports whether link id was used.
func (s *Store) ActionLinkUsed(ctx context.Context, id string) (bool, error) {
	var used bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM action_links_used WHERE id = $1)`, id).Scan(&used)
	return used, err
}
