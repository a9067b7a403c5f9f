package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

// currentRole is who a pool of service, logged in as l, is in Postgres.
func currentRole(t *testing.T, dsn, service string, l db.Login) (role string, super bool) {
	t.Helper()
	pool, err := db.Open(t.Context(), dsn, service, db.As(l))
	require.NoError(t, err)
	defer pool.Close()
	require.NoError(t, pool.QueryRow(t.Context(),
		"SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&role, &super))
	return role, super
}

func databaseOf(t *testing.T, dsn string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	require.NoError(t, err)
	return cfg.Database
}

// `vigil up` gives every service its own role: without a password on the
// local cluster (a private Unix socket), with one kept in the data dir on
// another server.
func TestUpDatabaseLogins(t *testing.T) {
	t.Parallel()
	for _, local := range []bool{true, false} {
		t.Run(map[bool]string{true: "local cluster", false: "VIGIL_DATABASE_URL"}[local], func(t *testing.T) {
			t.Parallel()
			dsn, dataDir := testkit.Postgres(t), t.TempDir()
			logins, line, err := upDatabaseLogins(t.Context(), testkit.Logger(t), dsn, dataDir, local)
			require.NoError(t, err)
			require.Len(t, logins, len(app.Services))
			require.Contains(t, line, "each service as its own role")
			for _, s := range app.Services {
				l := logins[s]
				require.Equal(t, db.RoleName(databaseOf(t, dsn), s), l.Role)
				role, super := currentRole(t, dsn, s, l)
				require.Equal(t, l.Role, role)
				require.False(t, super)
				require.Contains(t, line, l.Role)
				if local {
					require.Empty(t, l.Password)
					continue
				}
				require.Len(t, l.Password, 48)
				fi, err := os.Stat(filepath.Join(dataDir, "postgres-roles", s))
				require.NoError(t, err)
				require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
			}
			again, _, err := upDatabaseLogins(t.Context(), testkit.Logger(t), dsn, dataDir, local)
			require.NoError(t, err)
			require.Equal(t, logins, again, "the same roles and passwords on the next start")
		})
	}
}

// A VIGIL_DATABASE_URL whose role may not create roles: every service
// runs as that role, and the banner says so.
func TestUpDatabaseLoginsWithoutCreateRole(t *testing.T) {
	t.Parallel()
	dsn := testkit.Postgres(t)
	admin, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	plain := databaseOf(t, dsn) + "_plain"
	_, err = admin.Exec(t.Context(), "CREATE ROLE "+plain+" LOGIN")
	require.NoError(t, err)

	logins, line, err := upDatabaseLogins(t.Context(), testkit.Logger(t), dsn+" user="+plain, t.TempDir(), false)
	require.NoError(t, err)
	require.Nil(t, logins)
	require.Contains(t, line, "every service as role "+plain)
}

func TestDBBootstrapCommand(t *testing.T) {
	dsn := testkit.Postgres(t)
	t.Setenv("VIGIL_DATABASE_URL", dsn)
	for _, s := range app.Services {
		t.Setenv(dbPasswordVar(s), "pw-"+s)
	}
	t.Setenv("VIGIL_DB_ANALYSIS_PASSWORD", "")
	var out bytes.Buffer
	err := dbBootstrap(t.Context(), &out)
	require.ErrorContains(t, err, "VIGIL_DB_ANALYSIS_PASSWORD: missing")
	var n int
	admin, err := pgx.Connect(t.Context(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = admin.Close(context.Background()) })
	require.NoError(t, admin.QueryRow(t.Context(), "SELECT count(*) FROM pg_roles WHERE rolname LIKE $1",
		databaseOf(t, dsn)+"\\_%").Scan(&n))
	require.Zero(t, n, "nothing made when a password is missing")

	t.Setenv("VIGIL_DB_ANALYSIS_PASSWORD", "pw-analysis")
	require.NoError(t, dbBootstrap(t.Context(), &out))
	for _, s := range app.Services {
		role := db.RoleName(databaseOf(t, dsn), s)
		require.Contains(t, out.String(), s+": role "+role+" owns schema "+s+"\n")
		var owner string
		require.NoError(t, admin.QueryRow(t.Context(), "SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = $1", s).Scan(&owner))
		require.Equal(t, role, owner)
	}
}

// VIGIL_DB_STATEMENT_TIMEOUT and VIGIL_ACCEPT_ADMIN_TOKEN reach the
// options; a bad value names the variable.
func TestDatabaseAndAdminTokenOptionsFromEnv(t *testing.T) {
	opts, err := appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, db.DefaultStatementTimeout, opts.StatementTimeout)
	require.False(t, opts.AcceptAdminToken, "only the gateway, by default")

	t.Setenv("VIGIL_DB_STATEMENT_TIMEOUT", "2m")
	t.Setenv("VIGIL_ACCEPT_ADMIN_TOKEN", "true")
	opts, err = appOptions(&serviceFlags{}, nil, "")
	require.NoError(t, err)
	require.Equal(t, 2*time.Minute, opts.StatementTimeout)
	require.True(t, opts.AcceptAdminToken)

	for k, v := range map[string]string{"VIGIL_DB_STATEMENT_TIMEOUT": "0s", "VIGIL_ACCEPT_ADMIN_TOKEN": "yes please"} {
		t.Run(k, func(t *testing.T) {
			t.Setenv(k, v)
			_, err := appOptions(&serviceFlags{}, nil, "")
			require.ErrorContains(t, err, k+":")
		})
	}
}
