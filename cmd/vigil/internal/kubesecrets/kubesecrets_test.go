package kubesecrets_test

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/kubesecrets"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestMain(m *testing.M) { testkit.Main(m) }

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// all reads every Secret of the namespace, by name.
func all(t *testing.T, cs kubernetes.Interface, ns string) map[string]map[string][]byte {
	t.Helper()
	list, err := cs.CoreV1().Secrets(ns).List(ctx(t), metav1.ListOptions{})
	require.NoError(t, err)
	out := map[string]map[string][]byte{}
	for _, s := range list.Items {
		out[s.Name] = s.Data
	}
	return out
}

func TestEnsureCreatesWhatIsMissingAndNeverChangesIt(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	o := kubesecrets.Options{Namespace: ns, Prefix: "r1-vigil", PostgresAdmin: true}

	got, err := kubesecrets.Ensure(ctx(t), k.Clientset, o)
	require.NoError(t, err)
	require.Equal(t, []kubesecrets.Outcome{{Name: "r1-vigil-keys", Created: true}, {Name: "r1-vigil-nats", Created: true}, {Name: "r1-vigil-postgres", Created: true}}, got)
	first := all(t, k.Clientset, ns)

	keys := first["r1-vigil-keys"]
	for _, id := range []string{"signing", "analysis", "repair"} {
		private := "signing-key"
		if id != "signing" {
			private = id + "-service-key"
		}
		seed, err := base64.StdEncoding.DecodeString(string(keys[private]))
		require.NoError(t, err)
		require.Len(t, seed, ed25519.SeedSize)
		pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
		require.Equal(t, base64.StdEncoding.EncodeToString(pub), string(keys[id+"-public-key"]), "the public key is the private key's half")
	}
	enc, err := base64.StdEncoding.DecodeString(string(keys["encryption-key"]))
	require.NoError(t, err)
	require.Len(t, enc, 32)
	require.GreaterOrEqual(t, len(keys["admin-token"]), 16)
	require.NotEqual(t, keys["signing-key"], keys["analysis-service-key"])
	require.Len(t, first["r1-vigil-nats"], len(kubesecrets.NATSUsers))
	for user, pw := range first["r1-vigil-nats"] {
		require.True(t, strings.HasPrefix(string(pw), "pw_"), "%s: nats-server reads a password starting with a digit as a number", user)
	}
	require.Len(t, first["r1-vigil-postgres"], len(kubesecrets.Services)+1, "a role per service and the superuser")
	require.NotEqual(t, first["r1-vigil-postgres"]["gateway"], first["r1-vigil-postgres"]["monitor"])

	// Again, as every upgrade runs it: nothing is made or changed.
	got, err = kubesecrets.Ensure(ctx(t), k.Clientset, o)
	require.NoError(t, err)
	require.Equal(t, []kubesecrets.Outcome{{Name: "r1-vigil-keys"}, {Name: "r1-vigil-nats"}, {Name: "r1-vigil-postgres"}}, got)
	require.Equal(t, first, all(t, k.Clientset, ns))
}

// A Secret the operator made is left exactly as it is, and only the
// Secrets named are made.
func TestEnsureLeavesAnOperatorsSecretAlone(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	mine := map[string][]byte{}
	for _, u := range kubesecrets.NATSUsers {
		mine[u] = []byte("pw_mine_" + u)
	}
	_, err := k.Clientset.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "v-nats"}, Data: mine}, metav1.CreateOptions{})
	require.NoError(t, err)

	got, err := kubesecrets.Ensure(ctx(t), k.Clientset, kubesecrets.Options{Namespace: ns, Prefix: "v", Only: []string{kubesecrets.NATS, kubesecrets.Postgres}})
	require.NoError(t, err)
	require.Equal(t, []kubesecrets.Outcome{{Name: "v-nats"}, {Name: "v-postgres", Created: true}}, got)
	secrets := all(t, k.Clientset, ns)
	require.Equal(t, mine, secrets["v-nats"])
	require.NotContains(t, secrets, "v-keys", "not asked for")
	require.NotContains(t, secrets["v-postgres"], "admin", "no superuser password unless asked")
}

// An existing Secret without a key the services read is an error naming
// the keys, and is not changed.
func TestEnsureRefusesAnIncompleteSecret(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	partial := map[string][]byte{"signing-key": []byte("mine"), "admin-token": []byte("mine-too-0123456789")}
	_, err := k.Clientset.CoreV1().Secrets(ns).Create(ctx(t), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "v-keys"}, Data: partial}, metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = kubesecrets.Ensure(ctx(t), k.Clientset, kubesecrets.Options{Namespace: ns, Prefix: "v", Only: []string{kubesecrets.Keys}})
	require.ErrorContains(t, err, "v-keys exists without signing-public-key, analysis-service-key, analysis-public-key, repair-service-key, repair-public-key, encryption-key")
	require.ErrorContains(t, err, "never changed")
	require.Equal(t, map[string]map[string][]byte{"v-keys": partial}, all(t, k.Clientset, ns))
}

// An identity without rights on Secrets is told what it needs, and nothing
// is made.
func TestEnsureWithoutRightsSaysWhatItNeeds(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	_, err := k.Clientset.CoreV1().ServiceAccounts(ns).Create(ctx(t), &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "nobody"}}, metav1.CreateOptions{})
	require.NoError(t, err)
	cfg := rest.CopyConfig(k.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + ns + ":nobody"}
	cs, err := kubernetes.NewForConfig(cfg)
	require.NoError(t, err)

	_, err = kubesecrets.Ensure(ctx(t), cs, kubesecrets.Options{Namespace: ns, Prefix: "v"})
	require.Error(t, err)
	require.True(t, apierrors.IsForbidden(err), "%v", err)
	require.ErrorContains(t, err, "read secret "+ns+"/v-keys: forbidden: this identity needs get and create on secrets in "+ns)
	require.Empty(t, all(t, k.Clientset, ns))
}

func TestEnsureRefusesUnknownSecrets(t *testing.T) {
	_, err := kubesecrets.Ensure(context.Background(), nil, kubesecrets.Options{Namespace: "ns", Prefix: "v", Only: []string{"passwords"}})
	require.EqualError(t, err, `kubesecrets: unknown secret "passwords" (want keys, nats, postgres)`)
}
