package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/db"
)

func dbCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "db", Short: "Prepare Vigil's Postgres database"}
	cmd.AddCommand(&cobra.Command{
		Use:   "bootstrap",
		Short: "Give each service its own Postgres role, owning its schema and nothing else (run once, and again to change passwords)",
		Long: `Connects to VIGIL_DATABASE_URL as a role that may create roles (the
superuser, or one with CREATEROLE and CREATE on the database) and gives each
service a login role named <database>_<service> (vigil_monitor), which owns
the service's schema and nothing else. Each role's password is read from
VIGIL_DB_<SERVICE>_PASSWORD (or _FILE). Schemas made before, by the role the
services used to share, are handed over with their tables. Then point each
service's VIGIL_DATABASE_URL at its own role.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return dbBootstrap(cmd.Context(), cmd.OutOrStdout())
		},
	})
	return cmd
}

// dbPasswordVar is the variable holding service's Postgres password.
func dbPasswordVar(service string) string {
	return "VIGIL_DB_" + strings.ToUpper(service) + "_PASSWORD"
}

func dbBootstrap(ctx context.Context, out io.Writer) error {
	var errs []error
	dsn := os.Getenv("VIGIL_DATABASE_URL")
	if dsn == "" {
		errs = append(errs, errors.New("VIGIL_DATABASE_URL: missing: a role that may create roles (postgres://postgres:secret@postgres:5432/vigil)"))
	}
	passwords := map[string]string{}
	for _, s := range app.Services {
		pw, err := secretEnv(dbPasswordVar(s))
		switch {
		case err != nil:
			errs = append(errs, err)
		case pw == "":
			errs = append(errs, fmt.Errorf("%s: missing: the password of the %s service's role (openssl rand -hex 24)", dbPasswordVar(s), s))
		}
		passwords[s] = pw
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	logins, err := db.Bootstrap(ctx, dsn, app.Services, passwords)
	if err != nil {
		return err
	}
	for _, s := range app.Services {
		if _, err := fmt.Fprintf(out, "%s: role %s owns schema %s\n", s, logins[s].Role, s); err != nil {
			return err
		}
	}
	return nil
}

// upDatabaseLogins gives each service of `vigil up` its own role in
// dsn's database and returns their logins, and a line for the banner
// saying what the services log in as. The local cluster's roles need no
// password (it listens only on a Unix socket in a private directory and
// trusts it); on another server (VIGIL_DATABASE_URL) each role gets a
// password kept in DIR/postgres-roles/<service>, created on first start.
// When dsn's role may not create roles the services share it, and the
// line says so.
func upDatabaseLogins(ctx context.Context, log *slog.Logger, dsn, dataDir string, local bool) (map[string]db.Login, string, error) {
	var passwords map[string]string
	if !local {
		var err error
		if passwords, err = rolePasswords(filepath.Join(dataDir, "postgres-roles")); err != nil {
			return nil, "", err
		}
	}
	logins, err := db.Bootstrap(ctx, dsn, app.Services, passwords)
	if errors.Is(err, db.ErrCannotCreateRoles) {
		user := "the URL's user"
		if cfg, perr := pgx.ParseConfig(dsn); perr == nil {
			user = cfg.User
		}
		log.WarnContext(ctx, "every service logs in to Postgres as the role of VIGIL_DATABASE_URL, which may not create a role per service (grant it CREATEROLE and CREATE on the database, or run vigil db bootstrap and give it a role that may)",
			"role", user)
		return nil, fmt.Sprintf("Postgres         every service as role %s (VIGIL_DATABASE_URL's; it may not create a role per service)", user), nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("database roles: %w", err)
	}
	roles := make([]string, 0, len(app.Services))
	for _, s := range app.Services {
		roles = append(roles, logins[s].Role)
	}
	return logins, "Postgres         each service as its own role, owning its schema only: " + strings.Join(roles, ", "), nil
}

// rolePasswords are the services' Postgres passwords kept in dir, one
// file per service, created on first use.
func rolePasswords(dir string) (map[string]string, error) {
	return filePasswords(dir, "database", app.Services, func() string {
		raw := make([]byte, 24)
		_, _ = rand.Read(raw) // never fails (crypto/rand)
		return hex.EncodeToString(raw)
	})
}
