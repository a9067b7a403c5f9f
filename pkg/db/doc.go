// Package db gives each service its own PostgreSQL schema: Open returns a
// pgx pool whose unqualified names resolve in that schema and whose
// statements are bounded by a statement_timeout, Migrate applies the
// service's embedded goose migrations there (version table included, so
// services never collide and replicas may start at once), InTx runs a
// function in a transaction, and Bootstrap gives each service a login role
// of its own that owns its schema and nothing else.
package db
