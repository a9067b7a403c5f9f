package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/seal"
	"github.com/vigil-ops/vigil/services/gateway/internal/source/registry"
)

// Source store errors.
var (
	ErrSourceNotFound = errors.New("source not found")
	ErrSourceExists   = errors.New("source exists")
	// ErrNoKey: a secret cannot be sealed or opened without
	// VIGIL_ENCRYPTION_KEY.
	ErrNoKey = errors.New("VIGIL_ENCRYPTION_KEY is not set: the gateway cannot store or read a source's secret")
)

// Sources stores the declared webhook sources, their secrets sealed with
// box (nil: no key, and no secret can be stored or read).
type Sources struct {
	store *Store
	box   *seal.Box
}

// Sources returns the store of declared sources, sealing with box.
func (s *Store) Sources(box *seal.Box) *Sources { return &Sources{store: s, box: box} }

// secretOwner binds a sealed secret to its source: copied into another
// row, it does not open.
func secretOwner(name string) string { return "gateway.sources.secret:" + name }

const sourceColumns = `name, type, team, auth, secret, settings, created_by, created_at, updated_by, updated_at`

// ListSources is every declared source, by name, secrets opened.
func (s *Sources) ListSources(ctx context.Context) ([]registry.Declared, error) {
	rows, err := s.store.pool.Query(ctx, `SELECT `+sourceColumns+` FROM sources ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list sources: %w", err)
	}
	defer rows.Close()
	var out []registry.Declared
	for rows.Next() {
		d, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// GetSource is source name.
func (s *Sources) GetSource(ctx context.Context, name string) (registry.Declared, error) {
	return s.get(ctx, s.store.pool, name, "")
}

type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Sources) get(ctx context.Context, q rowQuerier, name, lock string) (registry.Declared, error) {
	d, err := s.scan(q.QueryRow(ctx, `SELECT `+sourceColumns+` FROM sources WHERE name = $1`+lock, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return registry.Declared{}, fmt.Errorf("source %s: %w", name, ErrSourceNotFound)
	}
	return d, err
}

func (s *Sources) scan(row pgx.Row) (registry.Declared, error) {
	var (
		d        registry.Declared
		sealed   []byte
		settings []byte
	)
	if err := row.Scan(&d.Name, &d.Type, &d.Team, &d.Auth, &sealed, &settings, &d.CreatedBy, &d.CreatedAt, &d.UpdatedBy, &d.UpdatedAt); err != nil {
		return registry.Declared{}, err
	}
	if err := json.Unmarshal(settings, &d.Settings); err != nil {
		return registry.Declared{}, fmt.Errorf("source %s: settings: %w", d.Name, err)
	}
	d.HasSecret = len(sealed) > 0
	switch {
	case !d.HasSecret:
	case s.box == nil:
		d.Unsealed = fmt.Errorf("source %s: %w", d.Name, ErrNoKey)
	default:
		pt, err := s.box.Open(sealed, secretOwner(d.Name))
		if err != nil {
			d.Unsealed = fmt.Errorf("source %s: %w (is VIGIL_ENCRYPTION_KEY the key it was stored with?)", d.Name, err)
			break
		}
		d.Secret = string(pt)
	}
	return d, nil
}

func (s *Sources) seal(d registry.Declared) ([]byte, error) {
	if d.Secret == "" {
		return nil, nil
	}
	if s.box == nil {
		return nil, ErrNoKey
	}
	return s.box.Seal([]byte(d.Secret), secretOwner(d.Name)), nil
}

// CreateSource stores d, by d.CreatedBy; ErrSourceExists when its name is
// taken.
func (s *Sources) CreateSource(ctx context.Context, d registry.Declared) (registry.Declared, error) {
	sealed, err := s.seal(d)
	if err != nil {
		return registry.Declared{}, err
	}
	settings, err := json.Marshal(d.Settings)
	if err != nil {
		return registry.Declared{}, err
	}
	err = db.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO sources (name, type, team, auth, secret, settings, created_by, updated_by)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $7)`, d.Name, d.Type, d.Team, d.Auth, sealed, settings, d.CreatedBy)
		if uniqueViolation(err) {
			return fmt.Errorf("source %s: %w", d.Name, ErrSourceExists)
		}
		if err != nil {
			return fmt.Errorf("create source %s: %w", d.Name, err)
		}
		return bumpSources(ctx, tx)
	})
	if err != nil {
		return registry.Declared{}, err
	}
	return s.GetSource(ctx, d.Name)
}

// UpdateSource changes source name as change says, in one transaction:
// change gets the stored source and returns it changed (or an error,
// which changes nothing). by is who changes it.
func (s *Sources) UpdateSource(ctx context.Context, name, by string, change func(registry.Declared) (registry.Declared, error)) (registry.Declared, error) {
	err := db.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		old, err := s.get(ctx, tx, name, " FOR UPDATE")
		if err != nil {
			return err
		}
		d, err := change(old)
		if err != nil {
			return err
		}
		d.Name = old.Name
		if old.Unsealed != nil && d.Secret == "" && d.HasSecret {
			// Its secret cannot be read, so not sealed again: the change
			// needs a new one.
			return old.Unsealed
		}
		sealed, err := s.seal(d)
		if err != nil {
			return err
		}
		settings, err := json.Marshal(d.Settings)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE sources SET type = $2, team = $3, auth = $4, secret = $5, settings = $6,
			updated_by = $7, updated_at = now() WHERE name = $1`,
			d.Name, d.Type, d.Team, d.Auth, sealed, settings, by); err != nil {
			return fmt.Errorf("update source %s: %w", name, err)
		}
		return bumpSources(ctx, tx)
	})
	if err != nil {
		return registry.Declared{}, err
	}
	return s.GetSource(ctx, name)
}

// DeleteSource forgets source name.
func (s *Sources) DeleteSource(ctx context.Context, name string) error {
	return db.InTx(ctx, s.store.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM sources WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("delete source %s: %w", name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("source %s: %w", name, ErrSourceNotFound)
		}
		return bumpSources(ctx, tx)
	})
}

// SourcesVersion moves with every change of the sources: a replica whose
// sources were loaded at another version reloads them.
func (s *Sources) SourcesVersion(ctx context.Context) (int64, error) {
	var v int64
	if err := s.store.pool.QueryRow(ctx, `SELECT version FROM sources_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sources version: %w", err)
	}
	return v, nil
}

func bumpSources(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE sources_version SET version = version + 1`); err != nil {
		return fmt.Errorf("bump sources version: %w", err)
	}
	return nil
}
