package main

import (
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/cli"
	"github.com/compose-spec/compose-go/v2/template"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
)

// composeFile is the repository's docker-compose.yml, relative to this package.
const composeFile = "../../docker-compose.yml"

// vigilServices are the services of the `vigil serve <service>` subcommand,
// each of which gets a container in docker-compose.yml.
var vigilServices = []string{"gateway", "monitor", "notify", "analysis", "repair", "deploy"}

// loadCompose loads docker-compose.yml the way `docker compose` does, with
// only env as the interpolation environment (neither the process environment
// nor a .env file), so the result does not depend on who runs the test.
func loadCompose(t *testing.T, env ...string) (*types.Project, error) {
	t.Helper()
	opts, err := cli.NewProjectOptions([]string{composeFile},
		cli.WithWorkingDirectory(filepath.Dir(composeFile)),
		cli.WithEnv(env),
	)
	require.NoError(t, err)
	return opts.LoadProject(t.Context())
}

// natsPassword is the test's VIGIL_NATS_<USER>_PASSWORD of user.
func natsPassword(user string) string { return "pw_test_" + user }

// The test signing key pair (base64 seed and public key).
const (
	testSigningSeed   = "c2lnbmluZy1rZXktc2lnbmluZy1rZXktc2lnbmluZzA="
	testSigningPublic = "cHVibGljLWtleS1wdWJsaWMta2V5LXB1YmxpYy1rZXk="
	// The analysis service's own pair.
	testAnalysisSeed   = "YW5hbHlzaXMta2V5LWFuYWx5c2lzLWtleS1hbmFseXM="
	testAnalysisPublic = "YW5hbHlzaXMtcHViLWFuYWx5c2lzLXB1Yi1hbmFseXM="
	// The repair service's own pair.
	testRepairSeed   = "cmVwYWlyLWtleS1yZXBhaXIta2V5LXJlcGFpci1rZXk="
	testRepairPublic = "cmVwYWlyLXB1Yi1yZXBhaXItcHViLXJlcGFpci1wdWI="
)

// dbPassword is the test's VIGIL_DB_<SERVICE>_PASSWORD of service.
func dbPassword(service string) string { return "db_test_" + service }

// composeEnv is every variable docker-compose.yml requires.
func composeEnv() []string {
	env := []string{
		"VIGIL_ADMIN_TOKEN=test-token", "VIGIL_ENCRYPTION_KEY=dGVzdC1rZXktdGVzdC1rZXktdGVzdC1rZXktdGVzdC0=",
		"VIGIL_SIGNING_KEY=" + testSigningSeed, "VIGIL_SIGNING_PUBLIC_KEY=" + testSigningPublic,
		"VIGIL_ANALYSIS_SERVICE_KEY=" + testAnalysisSeed, "VIGIL_ANALYSIS_PUBLIC_KEY=" + testAnalysisPublic,
		"VIGIL_REPAIR_SERVICE_KEY=" + testRepairSeed, "VIGIL_REPAIR_PUBLIC_KEY=" + testRepairPublic,
	}
	for _, u := range bus.Users() {
		env = append(env, bus.PasswordVar(u)+"="+natsPassword(u))
	}
	for _, s := range vigilServices {
		env = append(env, dbPasswordVar(s)+"="+dbPassword(s))
	}
	return env
}

func TestComposeFile(t *testing.T) {
	t.Parallel()

	project, err := loadCompose(t, composeEnv()...)
	require.NoError(t, err)

	want := append([]string{"nats", "nats-provision", "postgres", "db-bootstrap"}, vigilServices...)
	require.ElementsMatch(t, want, project.ServiceNames())

	t.Run("vigil services", func(t *testing.T) {
		t.Parallel()
		image := project.Services["gateway"].Image
		require.NotEmpty(t, image)
		for _, name := range vigilServices {
			svc := project.Services[name]
			require.Equal(t, types.ShellCommand{"serve", name}, svc.Command, "%s: command", name)
			require.Equal(t, image, svc.Image, "%s: every Vigil service runs the one image", name)
			require.NotNil(t, svc.Build, "%s: build", name)
			require.Equal(t, "deploy/Dockerfile", svc.Build.Dockerfile, "%s: dockerfile", name)
			for _, dep := range []string{"nats", "postgres"} {
				require.Contains(t, svc.DependsOn, dep, "%s: depends_on", name)
				require.Equal(t, types.ServiceConditionHealthy, svc.DependsOn[dep].Condition,
					"%s: depends_on %s", name, dep)
			}
			// The streams exist before any service starts: services may
			// not create them.
			require.Contains(t, svc.DependsOn, "nats-provision", "%s: depends_on", name)
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, svc.DependsOn["nats-provision"].Condition,
				"%s: depends_on nats-provision", name)
			// And the services' database roles.
			require.Contains(t, svc.DependsOn, "db-bootstrap", "%s: depends_on", name)
			require.Equal(t, types.ServiceConditionCompletedSuccessfully, svc.DependsOn["db-bootstrap"].Condition,
				"%s: depends_on db-bootstrap", name)
			require.NotNil(t, svc.HealthCheck, "%s: healthcheck", name)
			require.Equal(t,
				types.HealthCheckTest{"CMD", "/vigil", "healthcheck", "--url", "http://127.0.0.1:8080/readyz"},
				svc.HealthCheck.Test, "%s: healthcheck", name)
			env := map[string]string{
				"VIGIL_NATS_URL":  "nats://nats:4222",
				"VIGIL_HTTP_ADDR": "0.0.0.0:8080",
				"VIGIL_GRPC_ADDR": "0.0.0.0:9090",
				// Its own NATS user, named after it, with its own password.
				"VIGIL_NATS_USER":     name,
				"VIGIL_NATS_PASSWORD": natsPassword(name),
			}
			for k, v := range env {
				require.NotNil(t, svc.Environment[k], "%s: %s", name, k)
				require.Equal(t, v, *svc.Environment[k], "%s: %s", name, k)
			}
			// Its own Postgres role, the one db-bootstrap makes, with its
			// own password; never the superuser.
			require.NotNil(t, svc.Environment["VIGIL_DATABASE_URL"], "%s: VIGIL_DATABASE_URL", name)
			u, err := url.Parse(*svc.Environment["VIGIL_DATABASE_URL"])
			require.NoError(t, err, name)
			require.Equal(t, db.RoleName("vigil", name), u.User.Username(), "%s: VIGIL_DATABASE_URL's role", name)
			pw, _ := u.User.Password()
			require.Equal(t, dbPassword(name), pw, "%s: VIGIL_DATABASE_URL's password", name)
			require.Equal(t, "postgres:5432", u.Host, name)
			require.Equal(t, "/vigil", u.Path, name)
			require.Equal(t, "sslmode=disable", u.RawQuery, name)
		}
	})

	t.Run("admin token", func(t *testing.T) {
		t.Parallel()
		// The gateway's alone: no other container holds it, nor may
		// accept it.
		for name, svc := range project.Services {
			if name == "gateway" {
				require.NotNil(t, svc.Environment["VIGIL_ADMIN_TOKEN"])
				require.Equal(t, "test-token", *svc.Environment["VIGIL_ADMIN_TOKEN"])
				continue
			}
			for _, k := range []string{"VIGIL_ADMIN_TOKEN", "VIGIL_ADMIN_TOKEN_FILE", "VIGIL_ACCEPT_ADMIN_TOKEN"} {
				require.NotContains(t, svc.Environment, k, "%s: %s", name, k)
			}
		}
	})

	t.Run("db-bootstrap", func(t *testing.T) {
		t.Parallel()
		// The only container that logs in as the superuser: it makes
		// each service's role with the password that service logs in with.
		b := project.Services["db-bootstrap"]
		require.Equal(t, types.ShellCommand{"db", "bootstrap"}, b.Command)
		require.Equal(t, project.Services["gateway"].Image, b.Image)
		require.Equal(t, types.ServiceConditionHealthy, b.DependsOn["postgres"].Condition)
		pg := project.Services["postgres"]
		require.NotNil(t, b.Environment["VIGIL_DATABASE_URL"])
		u, err := url.Parse(*b.Environment["VIGIL_DATABASE_URL"])
		require.NoError(t, err)
		require.Equal(t, *pg.Environment["POSTGRES_USER"], u.User.Username())
		pw, _ := u.User.Password()
		require.Equal(t, *pg.Environment["POSTGRES_PASSWORD"], pw)
		require.Equal(t, "/"+*pg.Environment["POSTGRES_DB"], u.Path)
		for _, name := range vigilServices {
			v := b.Environment[dbPasswordVar(name)]
			require.NotNil(t, v, dbPasswordVar(name))
			require.Equal(t, dbPassword(name), *v)
		}
		for name, svc := range project.Services {
			if name == "db-bootstrap" || svc.Environment["VIGIL_DATABASE_URL"] == nil {
				continue
			}
			u, err := url.Parse(*svc.Environment["VIGIL_DATABASE_URL"])
			require.NoError(t, err)
			require.NotEqual(t, *pg.Environment["POSTGRES_USER"], u.User.Username(), "%s logs in as the superuser", name)
		}
	})

	t.Run("signing key", func(t *testing.T) {
		t.Parallel()
		// The gateway signs; monitor and deploy, which it calls, verify
		// with its public key and cannot sign; the others need neither.
		for name, svc := range project.Services {
			seed, pub := svc.Environment["VIGIL_SIGNING_KEY"], svc.Environment["VIGIL_SIGNING_PUBLIC_KEY"]
			switch name {
			case "gateway":
				require.NotNil(t, seed, name)
				require.Equal(t, testSigningSeed, *seed)
				require.Nil(t, pub, name)
			case "monitor", "deploy", "analysis", "repair":
				require.Nil(t, seed, "%s must not hold the gateway's private key", name)
				require.NotNil(t, pub, name)
				require.Equal(t, testSigningPublic, *pub)
			default:
				require.Nil(t, seed, name)
			}
		}
	})

	t.Run("service identities", func(t *testing.T) {
		t.Parallel()
		// Analysis and repair ask deploy for cluster credentials, each
		// with its own key; deploy holds only their public keys; no one
		// else holds any.
		seeds := map[string]string{"analysis": testAnalysisSeed, "repair": testRepairSeed}
		for name, svc := range project.Services {
			key := svc.Environment["VIGIL_SERVICE_KEY"]
			apub, rpub := svc.Environment["VIGIL_ANALYSIS_PUBLIC_KEY"], svc.Environment["VIGIL_REPAIR_PUBLIC_KEY"]
			switch name {
			case "analysis", "repair":
				require.NotNil(t, key, name)
				require.Equal(t, seeds[name], *key)
				require.NotNil(t, svc.Environment["VIGIL_DEPLOY_ADDR"], name)
				require.Equal(t, "deploy:9090", *svc.Environment["VIGIL_DEPLOY_ADDR"])
				require.Nil(t, apub, name)
				require.Nil(t, rpub, name)
			case "deploy":
				require.Nil(t, key, name)
				require.NotNil(t, apub, name)
				require.Equal(t, testAnalysisPublic, *apub)
				require.NotNil(t, rpub, name)
				require.Equal(t, testRepairPublic, *rpub)
			default:
				require.Nil(t, key, name)
				require.Nil(t, apub, name)
				require.Nil(t, rpub, name)
			}
		}
	})

	t.Run("gateway", func(t *testing.T) {
		t.Parallel()
		gw := project.Services["gateway"]
		require.NotNil(t, gw.Environment["VIGIL_MONITOR_ADDR"])
		require.Equal(t, "monitor:9090", *gw.Environment["VIGIL_MONITOR_ADDR"])
		require.NotNil(t, gw.Environment["VIGIL_DEPLOY_ADDR"])
		require.Equal(t, "deploy:9090", *gw.Environment["VIGIL_DEPLOY_ADDR"])
		require.NotNil(t, gw.Environment["VIGIL_ANALYSIS_ADDR"])
		require.Equal(t, "analysis:9090", *gw.Environment["VIGIL_ANALYSIS_ADDR"])
		require.NotNil(t, gw.Environment["VIGIL_REPAIR_ADDR"])
		require.Equal(t, "repair:9090", *gw.Environment["VIGIL_REPAIR_ADDR"])
		require.NotNil(t, gw.Environment["VIGIL_NOTIFY_ADDR"])
		require.Equal(t, "notify:9090", *gw.Environment["VIGIL_NOTIFY_ADDR"])
		var published []string
		for _, p := range gw.Ports {
			published = append(published, p.Published)
		}
		require.Subset(t, published, []string{"8080", "9090"})
	})

	t.Run("notify", func(t *testing.T) {
		t.Parallel()
		env := project.Services["notify"].Environment
		// Optional: present, and empty when the variables are unset.
		for _, k := range []string{"VIGIL_TELEGRAM_BOT_TOKEN", "VIGIL_TELEGRAM_CHAT_ID"} {
			require.Contains(t, env, k)
		}
	})

	t.Run("nats", func(t *testing.T) {
		t.Parallel()
		nats := project.Services["nats"]
		require.NotNil(t, nats.HealthCheck)
		require.True(t, slices.ContainsFunc(nats.HealthCheck.Test, func(s string) bool {
			return s == "http://127.0.0.1:8222/healthz?js-enabled-only=true"
		}), "nats healthcheck: %v", nats.HealthCheck.Test)

		// The config the container is started with is the file on disk.
		i := slices.IndexFunc(nats.Command, func(s string) bool { return s == "--config" })
		require.GreaterOrEqual(t, i, 0, "nats command: %v", nats.Command)
		require.Less(t, i+1, len(nats.Command), "nats command: %v", nats.Command)
		target := nats.Command[i+1]
		var conf string
		for _, v := range nats.Volumes {
			if v.Target == target {
				conf = v.Source
			}
		}
		require.NotEmpty(t, conf, "nats: no volume mounts %s", target)
		abs, err := filepath.Abs("../../deploy/nats/nats.conf")
		require.NoError(t, err)
		require.Equal(t, abs, conf)

		data, err := os.ReadFile(conf)
		require.NoError(t, err)
		require.Contains(t, string(data), "sync_interval: always")

		// And nats-server itself reads it that way.
		// The container gets every user's password (the config reads
		// them: TestComposeNATSConfig).
		for _, u := range bus.Users() {
			v := nats.Environment[bus.PasswordVar(u)]
			require.NotNil(t, v, "nats: %s", bus.PasswordVar(u))
			require.Equal(t, natsPassword(u), *v, "nats: %s", bus.PasswordVar(u))
		}

		require.True(t, slices.ContainsFunc(nats.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == "/data"
		}), "nats: named volume on /data")
	})

	t.Run("nats-provision", func(t *testing.T) {
		t.Parallel()
		p := project.Services["nats-provision"]
		require.Equal(t, types.ShellCommand{"nats", "provision"}, p.Command)
		require.Equal(t, project.Services["gateway"].Image, p.Image)
		for k, v := range map[string]string{
			"VIGIL_NATS_URL":      "nats://nats:4222",
			"VIGIL_NATS_USER":     bus.UserAdmin,
			"VIGIL_NATS_PASSWORD": natsPassword(bus.UserAdmin),
		} {
			require.NotNil(t, p.Environment[k], "nats-provision: %s", k)
			require.Equal(t, v, *p.Environment[k], "nats-provision: %s", k)
		}
		require.Equal(t, types.ServiceConditionHealthy, p.DependsOn["nats"].Condition)
	})

	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		pg := project.Services["postgres"]
		require.NotNil(t, pg.HealthCheck)
		require.Contains(t, pg.HealthCheck.Test, "pg_isready")
		require.True(t, slices.ContainsFunc(pg.Volumes, func(v types.ServiceVolumeConfig) bool {
			return v.Type == types.VolumeTypeVolume && v.Target == "/var/lib/postgresql/data"
		}), "postgres: named volume for the data directory")
	})
}

// The nats container, with the passwords compose gives it, reads the shipped
// config to the users the services log in as, each with its role's
// permissions. Not parallel: nats-server reads the passwords from the
// process environment.
func TestComposeNATSConfig(t *testing.T) {
	project, err := loadCompose(t, composeEnv()...)
	require.NoError(t, err)
	for k, v := range project.Services["nats"].Environment {
		require.NotNil(t, v, k)
		t.Setenv(k, *v)
	}
	opts, err := server.ProcessConfigFile("../../deploy/nats/nats.conf")
	require.NoError(t, err)
	require.True(t, opts.JetStream, "jetstream enabled")
	require.True(t, opts.SyncAlways, "jetstream sync_interval: always")
	require.Equal(t, "/data", opts.StoreDir)
	require.Equal(t, 8222, opts.HTTPPort)
	users := map[string]*server.User{}
	for _, u := range opts.Users {
		users[u.Username] = u
	}
	login := map[string]string{bus.UserAdmin: *project.Services["nats-provision"].Environment["VIGIL_NATS_PASSWORD"]}
	for _, name := range vigilServices {
		login[name] = *project.Services[name].Environment["VIGIL_NATS_PASSWORD"]
	}
	for name, pw := range login {
		u := users[name]
		require.NotNil(t, u, "nats-server has no user %s", name)
		require.Equal(t, pw, u.Password, "%s logs in with the password nats-server has", name)
		want, err := bus.Permissions(name)
		require.NoError(t, err)
		require.Equal(t, want, u.Permissions, "%s", name)
	}
}

func TestComposeFileRequiresSecrets(t *testing.T) {
	t.Parallel()
	for _, missing := range []string{"VIGIL_ADMIN_TOKEN", "VIGIL_DB_GATEWAY_PASSWORD", "VIGIL_DB_ANALYSIS_PASSWORD", "VIGIL_ENCRYPTION_KEY", "VIGIL_SIGNING_KEY", "VIGIL_SIGNING_PUBLIC_KEY", "VIGIL_ANALYSIS_SERVICE_KEY", "VIGIL_ANALYSIS_PUBLIC_KEY", "VIGIL_REPAIR_SERVICE_KEY", "VIGIL_REPAIR_PUBLIC_KEY", bus.PasswordVar("gateway"), bus.PasswordVar(bus.UserAdmin)} {
		env := slices.DeleteFunc(composeEnv(), func(kv string) bool { return strings.HasPrefix(kv, missing+"=") })
		tc := struct{ missing string }{missing}
		_, err := loadCompose(t, env...)
		require.Error(t, err)
		var missing *template.MissingRequiredError
		require.ErrorAs(t, err, &missing)
		require.Equal(t, tc.missing, missing.Variable)
		require.ErrorContains(t, err, "set "+tc.missing)
	}
}
