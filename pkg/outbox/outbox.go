// Package outbox makes a service's state changes and the events that
// announce them one Postgres transaction (the outbox, published by a Relay),
// and makes handling a redelivered event a no-op (the inbox, kept by
// Handler). Both tables live in the service's own schema; Migrations creates
// them.
package outbox

import (
	"context"
	"embed"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
)

// Migrations create the outbox and processed_events tables; Migrate applies
// them.
//
//go:embed migrations/*.sql
var Migrations embed.FS

// notifyChannel is the channel the relay listens on; the schema is part of it
// so services sharing one database wake only their own relay.
func notifyChannel(schema string) string { return notifyPrefix + schema }

const notifyPrefix = "vigil_outbox_"

// Add records events in tx, to be published once tx commits. The trace
// context of ctx travels with them.
func Add(ctx context.Context, tx pgx.Tx, events ...bus.Event) error {
	if len(events) == 0 {
		return nil
	}
	ids := make([]string, len(events))
	subjects := make([]string, len(events))
	data := make([][]byte, len(events))
	headers := make([]string, len(events))
	for i, e := range events {
		m, err := bus.Encode(ctx, e)
		if err != nil {
			return err
		}
		h, err := json.Marshal(m.Headers)
		if err != nil {
			return fmt.Errorf("outbox: headers: %w", err)
		}
		ids[i], subjects[i], data[i], headers[i] = m.ID, m.Subject, m.Data, string(h)
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO outbox (event_id, subject, data, headers)
		SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::jsonb[])
		ON CONFLICT (event_id) DO NOTHING`, ids, subjects, data, headers)
	if err != nil {
		return fmt.Errorf("outbox: insert %d events: %w", len(events), err)
	}
	// Delivered when tx commits, not before.
	// Add does not know the schema by name; the search_path does.
	if _, err := tx.Exec(ctx, `SELECT pg_notify($1 || current_schema(), '')`, notifyPrefix); err != nil {
		return fmt.Errorf("outbox: notify: %w", err)
	}
	return nil
}

// Migrate creates the outbox and inbox tables in schema; their versions are
// kept apart from the service's own migrations.
func Migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	return db.Migrate(ctx, pool, schema, db.Sub(Migrations, "migrations"), db.VersionTable("goose_outbox_version"))
}
