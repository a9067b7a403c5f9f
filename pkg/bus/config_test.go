package bus_test

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"flag"
	"os"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/bus"
)

var update = flag.Bool("update", false, "rewrite deploy/nats/nats.conf from the roles in permissions.go")

// shippedConfig is the repository's deploy/nats/nats.conf.
const shippedConfig = "../../deploy/nats/nats.conf"

// The shipped configuration of an external NATS is what the roles render,
// and nats-server reads from it the very permissions the embedded server
// gets.
func TestShippedConfig(t *testing.T) {
	if *update {
		require.NoError(t, os.WriteFile(shippedConfig, bus.Config(), 0o644))
	}
	got, err := os.ReadFile(shippedConfig)
	require.NoError(t, err)
	require.Equal(t, string(bus.Config()), string(got),
		"deploy/nats/nats.conf differs from what pkg/bus/permissions.go renders: run go test ./pkg/bus -run TestShippedConfig -update")

	t.Setenv("VIGIL_NATS_STORE_DIR", "/data")
	// Passwords as `openssl rand -hex 24` and `-base64 24` make them,
	// starting with a digit and with base64's punctuation, as vigil
	// generates them, and a bcrypt hash: each read as it is, in many
	// random draws.
	const hash = "$2a$04$0abBRcVcsDoYWKNWOgIPruGTNZIL/HMcM04yAdh95l.s8ZXiozLky" // nats server passwd
	for round := range 200 {
		passwords := map[string]string{}
		for i, u := range bus.Users() {
			b := make([]byte, 24)
			_, _ = rand.Read(b)
			switch i % 3 {
			case 0:
				passwords[u] = "4e" + hex.EncodeToString(b)
			case 1:
				passwords[u] = "7" + base64.StdEncoding.EncodeToString(b) + "+/="
			default:
				passwords[u] = bus.NewPassword()
			}
			t.Setenv(bus.PasswordVar(u), passwords[u])
		}
		t.Setenv(bus.PasswordVar(bus.UserPublisher), hash)
		passwords[bus.UserPublisher] = hash

		opts, err := server.ProcessConfigFile(shippedConfig)
		require.NoError(t, err)
		users := map[string]*server.User{}
		for _, u := range opts.Users {
			users[u.Username] = u
		}
		require.Len(t, users, len(bus.Users()))
		for _, name := range bus.Users() {
			u := users[name]
			require.NotNil(t, u, "user %s", name)
			require.Equal(t, passwords[name], u.Password, "user %s: password from %s", name, bus.PasswordVar(name))
			if round > 0 {
				continue
			}
			want, err := bus.Permissions(name)
			require.NoError(t, err)
			require.Equal(t, want, u.Permissions, "user %s", name)
		}
		if round == 0 {
			require.True(t, opts.JetStream, "jetstream enabled")
			require.True(t, opts.SyncAlways, "jetstream sync_interval: always")
			require.Equal(t, "/data", opts.StoreDir, "from VIGIL_NATS_STORE_DIR")
			require.Equal(t, 4222, opts.Port)
			require.Equal(t, 8222, opts.HTTPPort)
		}
	}

	// An unset store keeps the server from starting, naming it.
	require.NoError(t, os.Unsetenv("VIGIL_NATS_STORE_DIR"))
	_, err = server.ProcessConfigFile(shippedConfig)
	require.ErrorContains(t, err, "VIGIL_NATS_STORE_DIR")
	t.Setenv("VIGIL_NATS_STORE_DIR", "/data")
	// An unset password keeps the server from starting.
	require.NoError(t, os.Unsetenv(bus.PasswordVar("monitor")))
	_, err = server.ProcessConfigFile(shippedConfig)
	require.ErrorContains(t, err, bus.PasswordVar("monitor"))
}

// Every event subject has one publishing service (alerts have direct
// publishers besides), and every consumed subject has a publisher.
func TestRolesCoverEverySubject(t *testing.T) {
	t.Parallel()
	publishers := map[string][]string{}
	for _, r := range bus.Roles {
		for _, s := range r.Publishes {
			publishers[s] = append(publishers[s], r.User)
		}
	}
	for _, s := range bus.EventSubjects() {
		switch s {
		case bus.SubjectAlertFired, bus.SubjectAlertResolved:
			require.ElementsMatch(t, []string{"gateway", bus.UserPublisher}, publishers[s], s)
		default:
			require.Len(t, publishers[s], 1, "%s: publishers %v", s, publishers[s])
		}
	}
	require.Equal(t, []string{"gateway"}, publishers[bus.SubjectAlertBatched])
	for _, r := range bus.Roles {
		for _, s := range r.Consumes {
			require.NotEmpty(t, publishers[s], "%s consumes %s, which nobody publishes", r.User, s)
		}
	}
}

// The values for the official NATS chart give every user the shipped
// configuration's permissions and its password from the Secret named, and
// make the servers fsync every write.
func TestChartValues(t *testing.T) {
	var values struct {
		Config struct {
			Cluster struct {
				Enabled  bool
				Replicas int
			}
			JetStream struct {
				Enabled   bool
				FileStore struct {
					PVC struct{ Size string } `json:"pvc"`
				} `json:"fileStore"`
				Merge map[string]any
			} `json:"jetstream"`
			Merge struct {
				Authorization struct {
					Users []struct {
						User, Password string
						Permissions    *struct {
							Publish, Subscribe struct{ Allow []string }
						}
					}
				}
			}
		}
		Container struct {
			Env map[string]struct {
				ValueFrom struct {
					SecretKeyRef struct{ Name, Key string }
				} `json:"valueFrom"`
			}
		}
	}
	require.NoError(t, yaml.UnmarshalStrict(bus.ChartValues("nats-pw"), &values))
	assert.True(t, values.Config.Cluster.Enabled)
	assert.Equal(t, 3, values.Config.Cluster.Replicas)
	assert.True(t, values.Config.JetStream.Enabled)
	assert.Equal(t, map[string]any{"sync_interval": "always"}, values.Config.JetStream.Merge)

	var users []string
	for _, u := range values.Config.Merge.Authorization.Users {
		users = append(users, u.User)
		// The chart writes << $VAR >> as a variable of the server's
		// environment, which the env below sets from the Secret.
		assert.Equal(t, "<< $"+bus.PasswordVar(u.User)+" >>", u.Password, u.User)
		env := values.Container.Env[bus.PasswordVar(u.User)].ValueFrom.SecretKeyRef
		assert.Equal(t, struct{ Name, Key string }{"nats-pw", u.User}, env, u.User)
		want, err := bus.Permissions(u.User)
		require.NoError(t, err)
		if want == nil {
			assert.Nil(t, u.Permissions, "%s may do anything", u.User)
			continue
		}
		require.NotNil(t, u.Permissions, u.User)
		assert.Equal(t, want.Publish.Allow, u.Permissions.Publish.Allow, u.User)
		assert.Equal(t, want.Subscribe.Allow, u.Permissions.Subscribe.Allow, u.User)
	}
	assert.Equal(t, bus.Users(), users)
	assert.Len(t, values.Container.Env, len(users))
}
