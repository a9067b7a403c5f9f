package db

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"

	"github.com/jackc/pgx/v5"
)

// Login is a role to log in as: Open's As.
type Login struct {
	Role string
	// Password may be empty: the server then lets the role in only by a
	// method that needs none (the local cluster's Unix socket).
	Password string
}

// ErrCannotCreateRoles is Bootstrap's answer when the role it logged in as
// may not make the services' roles.
var ErrCannotCreateRoles = errors.New("db: this role may not create the services' roles (it needs SUPERUSER, or CREATEROLE and CREATE on the database)")

// RoleName is the role Bootstrap makes for schema in database:
// <database>_<schema> ("vigil_monitor"), shortened with a hash of the
// database's name when that is longer than 63 bytes. The database is part
// of the name because roles are shared by every database of a server: two
// Vigils on one server do not share roles.
func RoleName(database, schema string) string {
	name := database + "_" + schema
	if len(name) <= 63 {
		return name
	}
	h := fnv.New32a()
	h.Write([]byte(database))
	suffix := "_" + hex.EncodeToString(h.Sum(nil)) + "_" + schema
	return database[:63-len(suffix)] + suffix
}

// Bootstrap gives each of schemas a login role of its own (RoleName),
// which owns the schema and everything in it and nothing else: it may not
// read, write or create anything in another service's schema, nor create
// in public (PUBLIC's CREATE on public is revoked, as PostgreSQL 15 does
// by default). It connects to dsn as a role that may do so (the server's
// superuser, or one with CREATEROLE and CREATE on the database: then it
// becomes a member of the roles it makes, to hand them their schemas).
//
// It is idempotent, and is how an installation moves to its services'
// own roles: a schema made before (owned by the role that migrated it) is
// handed over with its tables, sequences, functions and types. Each
// role's password is set (as a SCRAM verifier: the password itself never
// reaches the server's logs) to passwords[schema], or removed when that is
// empty. It returns each schema's login.
func Bootstrap(ctx context.Context, dsn string, schemas []string, passwords map[string]string) (map[string]Login, error) {
	for _, s := range schemas {
		if err := validateSchema(s); err != nil {
			return nil, err
		}
		if err := validatePassword(passwords[s]); err != nil {
			return nil, fmt.Errorf("db: password of %s: %w", s, err)
		}
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("db: bootstrap: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	logins := map[string]Login{}
	err = InTx(ctx, conn, func(tx pgx.Tx) error {
		var (
			database, self              string
			super, createRole, createDB bool
		)
		if err := tx.QueryRow(ctx, `SELECT current_database(), current_user, rolsuper, rolcreaterole,
				has_database_privilege(current_database(), 'CREATE')
			FROM pg_roles WHERE rolname = current_user`).Scan(&database, &self, &super, &createRole, &createDB); err != nil {
			return err
		}
		if !super && (!createRole || !createDB) {
			return fmt.Errorf("%w: %s", ErrCannotCreateRoles, self)
		}
		// Two bootstraps of one database take turns.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", migrationLockID("vigil/db.Bootstrap")); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DO $$ BEGIN
			IF EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'public') THEN
				REVOKE CREATE ON SCHEMA public FROM PUBLIC;
			END IF; END $$`); err != nil {
			return fmt.Errorf("revoke create on public: %w", err)
		}
		for _, schema := range schemas {
			l := Login{Role: RoleName(database, schema), Password: passwords[schema]}
			if err := ownSchema(ctx, tx, schema, l, super); err != nil {
				return fmt.Errorf("schema %s, role %s: %w", schema, l.Role, err)
			}
			logins[schema] = l
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, ErrCannotCreateRoles) {
			return nil, err
		}
		return nil, fmt.Errorf("db: bootstrap: %w", err)
	}
	return logins, nil
}

// ownSchema makes l's role if missing, sets its password, and gives it
// schema and everything in it.
func ownSchema(ctx context.Context, tx pgx.Tx, schema string, l Login, super bool) error {
	role := pgx.Identifier{l.Role}.Sanitize()
	var exists, roleSuper, canLogin bool
	err := tx.QueryRow(ctx, `SELECT true, rolsuper OR rolcreaterole OR rolcreatedb OR rolreplication OR rolbypassrls, rolcanlogin
		FROM pg_roles WHERE rolname = $1`, l.Role).Scan(&exists, &roleSuper, &canLogin)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	if exists && roleSuper {
		// Made by someone else, with powers a service must not have.
		return errors.New("the role exists with SUPERUSER, CREATEROLE, CREATEDB, REPLICATION or BYPASSRLS: drop it or take those away")
	}
	password := "NULL"
	if l.Password != "" {
		v, err := scramVerifier(l.Password)
		if err != nil {
			return err
		}
		password = "'" + v + "'" // base64 and punctuation only: nothing to escape
	}
	if !exists {
		if _, err := tx.Exec(ctx, "CREATE ROLE "+role+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD "+password); err != nil {
			return fmt.Errorf("create role: %w", err)
		}
	} else if _, err := tx.Exec(ctx, "ALTER ROLE "+role+" LOGIN PASSWORD "+password); err != nil {
		return fmt.Errorf("set password: %w", err)
	}
	if !super {
		// To hand the role its schema (ALTER ... OWNER TO), the
		// bootstrapping role must be able to become it.
		if _, err := tx.Exec(ctx, "GRANT "+role+" TO CURRENT_USER"); err != nil {
			return fmt.Errorf("grant role: %w", err)
		}
	}
	ident := pgx.Identifier{schema}.Sanitize()
	if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident+" AUTHORIZATION "+role); err != nil {
		return fmt.Errorf("create schema: %w", err)
	}
	if _, err := tx.Exec(ctx, "ALTER SCHEMA "+ident+" OWNER TO "+role); err != nil {
		return fmt.Errorf("give schema: %w", err)
	}
	if _, err := tx.Exec(ctx, "REVOKE ALL ON SCHEMA "+ident+" FROM PUBLIC"); err != nil {
		return fmt.Errorf("revoke schema from PUBLIC: %w", err)
	}
	// What an earlier role made in the schema (migrations run as the
	// superuser, before there were roles) goes to the schema's role.
	// Tables first: their sequences and row types follow them.
	rows, err := tx.Query(ctx, `
		SELECT format('ALTER %s %I.%I OWNER TO %I',
			CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE' WHEN 'c' THEN 'TYPE' ELSE 'TABLE' END,
			n.nspname, c.relname, $2::text)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)
		  AND c.relkind IN ('r', 'p', 'v', 'm', 'f', 'S', 'c')
		  AND NOT (c.relkind = 'S' AND EXISTS (SELECT 1 FROM pg_depend d
			WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
		  AND NOT (c.relkind IN ('r', 'p', 'f') AND c.relispartition)
		UNION ALL
		SELECT format('ALTER ROUTINE %s OWNER TO %I', p.oid::regprocedure, $2::text)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname = $1 AND p.proowner <> (SELECT oid FROM pg_roles WHERE rolname = $2)
		UNION ALL
		SELECT format('ALTER %s %I.%I OWNER TO %I', CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, n.nspname, t.typname, $2::text)
		FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
		WHERE n.nspname = $1 AND t.typowner <> (SELECT oid FROM pg_roles WHERE rolname = $2) AND t.typtype IN ('e', 'd', 'r')`, schema, l.Role)
	if err != nil {
		return fmt.Errorf("list objects to hand over: %w", err)
	}
	stmts, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list objects to hand over: %w", err)
	}
	for _, s := range stmts {
		if _, err := tx.Exec(ctx, s); err != nil {
			return fmt.Errorf("hand over (%s): %w", s, err)
		}
	}
	return nil
}

// validatePassword accepts printable ASCII: PostgreSQL normalises other
// passwords (SASLprep) before hashing them, which scramVerifier does not.
func validatePassword(p string) error {
	for i := range len(p) {
		if p[i] < 0x21 || p[i] > 0x7e {
			return errors.New("use printable ASCII without spaces (openssl rand -hex 24)")
		}
	}
	return nil
}

// scramVerifier is what PostgreSQL stores for a SCRAM-SHA-256 password
// (RFC 5803 format, as its own libpq computes it client-side).
func scramVerifier(password string) (string, error) {
	const iterations = 4096
	salt := make([]byte, 16)
	_, _ = rand.Read(salt)
	salted, err := pbkdf2.Key(sha256.New, password, salt, iterations, sha256.Size)
	if err != nil {
		return "", err
	}
	mac := func(msg string) []byte {
		h := hmac.New(sha256.New, salted)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac("Client Key"))
	b64 := base64.StdEncoding.EncodeToString
	return fmt.Sprintf("SCRAM-SHA-256$%d:%s$%s:%s", iterations, b64(salt), b64(stored[:]), b64(mac("Server Key"))), nil
}
