package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/seal"
)

// Channel store errors.
var (
	ErrChannelNotFound = errors.New("channel not found")
	ErrChannelExists   = errors.New("channel exists")
	// ErrNoKey: a credential cannot be sealed or opened without
	// VIGIL_ENCRYPTION_KEY.
	ErrNoKey = errors.New("VIGIL_ENCRYPTION_KEY is not set: notify cannot store or read channel credentials")
)

// Channel is a channel managed through the API, as stored.
type Channel struct {
	Name, Kind, Target string
	Settings           Settings
	// Credential is the channel's secret in the clear: sealed in the
	// database, never returned by the API.
	Credential string
	// Sealed: a credential is stored. Unsealed is why it could not be
	// opened (no key, another key): such a channel cannot be used, and
	// keeps its sealed credential until one is given anew.
	Sealed   bool
	Unsealed error
	// Language and TimeZone are what its messages are drawn in;
	// Templates, the template set they are drawn with ("": the default).
	Language, TimeZone, Templates string
	// Team owns it ("" for none); User is the person it reaches (a
	// personal channel).
	Team, User           string
	CreatedBy, UpdatedBy string
	CreatedAt, UpdatedAt time.Time
}

// Settings are a channel's options besides its target and credential.
type Settings struct {
	APIURL   string `json:"api_url,omitempty"`
	SMTPHost string `json:"smtp_host,omitempty"`
	SMTPPort int    `json:"smtp_port,omitempty"`
	TLS      string `json:"tls,omitempty"`
	Username string `json:"username,omitempty"`
	From     string `json:"from,omitempty"`
	CAFile   string `json:"ca_file,omitempty"`
}

// Channels stores channels, their credentials sealed with box (nil: no
// key, and no credential can be stored or read).
type Channels struct {
	pool *pgxpool.Pool
	box  *seal.Box
}

// NewChannels returns the channel store over pool.
func NewChannels(pool *pgxpool.Pool, box *seal.Box) *Channels { return &Channels{pool: pool, box: box} }

// credentialOwner binds a sealed credential to its channel: copied into
// another row, it does not open.
func credentialOwner(name string) string { return "notify.channels.credential:" + name }

const channelColumns = `name, kind, target, settings, credential, language, time_zone, team, user_name, templates, created_by, created_at, updated_by, updated_at`

// List is every stored channel, by name, credentials opened.
func (s *Channels) List(ctx context.Context) ([]Channel, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+channelColumns+` FROM channels ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("list channels: %w", err)
	}
	defer rows.Close()
	var out []Channel
	for rows.Next() {
		c, err := s.scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// Get is channel name.
func (s *Channels) Get(ctx context.Context, name string) (Channel, error) {
	return s.get(ctx, s.pool, name, "")
}

// rowQuerier is the pool or a transaction.
type rowQuerier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func (s *Channels) get(ctx context.Context, q rowQuerier, name, lock string) (Channel, error) {
	c, err := s.scan(q.QueryRow(ctx, `SELECT `+channelColumns+` FROM channels WHERE name = $1`+lock, name))
	if errors.Is(err, pgx.ErrNoRows) {
		return Channel{}, fmt.Errorf("channel %s: %w", name, ErrChannelNotFound)
	}
	return c, err
}

func (s *Channels) scan(row pgx.Row) (Channel, error) {
	var (
		c        Channel
		settings []byte
		sealed   []byte
	)
	if err := row.Scan(&c.Name, &c.Kind, &c.Target, &settings, &sealed, &c.Language, &c.TimeZone, &c.Team, &c.User,
		&c.Templates, &c.CreatedBy, &c.CreatedAt, &c.UpdatedBy, &c.UpdatedAt); err != nil {
		return Channel{}, err
	}
	if err := json.Unmarshal(settings, &c.Settings); err != nil {
		return Channel{}, fmt.Errorf("channel %s: settings: %w", c.Name, err)
	}
	c.Sealed = len(sealed) > 0
	switch {
	case !c.Sealed:
	case s.box == nil:
		c.Unsealed = fmt.Errorf("channel %s: %w", c.Name, ErrNoKey)
	default:
		pt, err := s.box.Open(sealed, credentialOwner(c.Name))
		if err != nil {
			c.Unsealed = fmt.Errorf("channel %s: %w (is VIGIL_ENCRYPTION_KEY the key it was stored with?)", c.Name, err)
			break
		}
		c.Credential = string(pt)
	}
	return c, nil
}

func (s *Channels) seal(c Channel) ([]byte, error) {
	if c.Credential == "" {
		return nil, nil
	}
	if s.box == nil {
		return nil, ErrNoKey
	}
	return s.box.Seal([]byte(c.Credential), credentialOwner(c.Name)), nil
}

// Create stores c, by c.CreatedBy; ErrChannelExists when its name is
// taken.
func (s *Channels) Create(ctx context.Context, c Channel) (Channel, error) {
	sealed, err := s.seal(c)
	if err != nil {
		return Channel{}, err
	}
	settings, err := json.Marshal(c.Settings)
	if err != nil {
		return Channel{}, err
	}
	err = db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO channels (name, kind, target, settings, credential, language, time_zone, team, user_name, created_by, updated_by, templates)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10, $11)`,
			c.Name, c.Kind, c.Target, settings, sealed, c.Language, c.TimeZone, c.Team, c.User, c.CreatedBy, c.Templates)
		if pe, ok := errors.AsType[*pgconn.PgError](err); ok && pe.Code == "23505" {
			return fmt.Errorf("channel %s: %w", c.Name, ErrChannelExists)
		}
		if err != nil {
			return fmt.Errorf("create channel %s: %w", c.Name, err)
		}
		return bump(ctx, tx)
	})
	if err != nil {
		return Channel{}, err
	}
	return s.Get(ctx, c.Name)
}

// Update changes channel name as change says, in one transaction: change
// gets the stored channel and returns it changed (or an error, which
// changes nothing). by is who changes it.
func (s *Channels) Update(ctx context.Context, name, by string, change func(Channel) (Channel, error)) (Channel, error) {
	err := db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		old, err := s.get(ctx, tx, name, " FOR UPDATE")
		if err != nil {
			return err
		}
		c, err := change(old)
		if err != nil {
			return err
		}
		c.Name = old.Name
		if old.Unsealed != nil && c.Credential == "" {
			// Its credential cannot be read, so not sealed again: the
			// change needs a new one.
			return old.Unsealed
		}
		sealed, err := s.seal(c)
		if err != nil {
			return err
		}
		settings, err := json.Marshal(c.Settings)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE channels SET kind = $2, target = $3, settings = $4, credential = $5, language = $6,
			time_zone = $7, team = $8, user_name = $9, updated_by = $10, updated_at = now(), templates = $11 WHERE name = $1`,
			c.Name, c.Kind, c.Target, settings, sealed, c.Language, c.TimeZone, c.Team, c.User, by, c.Templates); err != nil {
			return fmt.Errorf("update channel %s: %w", name, err)
		}
		return bump(ctx, tx)
	})
	if err != nil {
		return Channel{}, err
	}
	return s.Get(ctx, name)
}

// Delete forgets channel name.
func (s *Channels) Delete(ctx context.Context, name string) error {
	return db.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM channels WHERE name = $1`, name)
		if err != nil {
			return fmt.Errorf("delete channel %s: %w", name, err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("channel %s: %w", name, ErrChannelNotFound)
		}
		return bump(ctx, tx)
	})
}

// Version moves with every change of the channels: a replica whose
// channels were loaded at another version reloads them.
func (s *Channels) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM channels_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("channels version: %w", err)
	}
	return v, nil
}

func bump(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `UPDATE channels_version SET version = version + 1`); err != nil {
		return fmt.Errorf("bump channels version: %w", err)
	}
	return nil
}
