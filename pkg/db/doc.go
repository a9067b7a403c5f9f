// Package db gives each service its own PostgreSQL schema: Open returns a
// pgx pool whose unqualified names resolve in that schema, Migrate applies
// the service's embedded goose migrations there (version table included, so
// services never collide and replicas may start at once), and InTx runs a
// function in a transaction.
package db
