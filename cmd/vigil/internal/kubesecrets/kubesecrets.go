// Package kubesecrets makes the Secrets a Kubernetes installation of Vigil
// needs (ADR 14): the gateway's signing key and the services' own keys with
// their public halves, the encryption key, the bootstrap admin token, and
// the NATS and Postgres passwords. It creates each Secret that is missing
// and never changes one that exists, so running it on every install and
// upgrade (the chart's hook Job, `vigil secrets ensure`) rotates nothing.
package kubesecrets

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// The Secrets Ensure may make, by what it calls them in Options.Only.
const (
	// Keys is <prefix>-keys: signing-key, signing-public-key,
	// analysis-service-key, analysis-public-key, repair-service-key,
	// repair-public-key, encryption-key, admin-token.
	Keys = "keys"
	// NATS is <prefix>-nats: one password per NATS user.
	NATS = "nats"
	// Postgres is <prefix>-postgres: one password per service role, and
	// the superuser's (admin) with Options.PostgresAdmin.
	Postgres = "postgres"
)

// Kinds are the Secrets Ensure makes by default, in order.
var Kinds = []string{Keys, NATS, Postgres}

// NATSUsers are the users of deploy/nats/nats.conf (pkg/bus.Roles, the
// admin and direct publishers).
var NATSUsers = []string{"admin", "publisher", "gateway", "monitor", "analysis", "repair", "notify", "deploy"}

// Services are the services that log in to Postgres as their own role.
var Services = []string{"gateway", "monitor", "analysis", "repair", "notify", "deploy"}

// Options says which Secrets to make, and where.
type Options struct {
	// Namespace is where the Secrets are.
	Namespace string
	// Prefix starts their names: <prefix>-keys, <prefix>-nats,
	// <prefix>-postgres (the chart's full name).
	Prefix string
	// Only names the Secrets to make (Kinds when empty): those the
	// operator does not bring.
	Only []string
	// PostgresAdmin adds the superuser's password (key admin) to the
	// Postgres Secret: the chart's eval Postgres is made with it.
	PostgresAdmin bool
}

// Outcome is what became of one Secret.
type Outcome struct {
	Name string
	// Created is false for a Secret that was there already, left as is.
	Created bool
}

// Ensure creates each Secret of o that does not exist, with new random
// values, and checks that each one that exists has every key the services
// read, without changing it. It needs only get and create on Secrets in
// o.Namespace.
func Ensure(ctx context.Context, cs kubernetes.Interface, o Options) ([]Outcome, error) {
	if o.Namespace == "" || o.Prefix == "" {
		return nil, fmt.Errorf("kubesecrets: need a namespace and a prefix")
	}
	only := o.Only
	if len(only) == 0 {
		only = Kinds
	}
	var out []Outcome
	for _, kind := range only {
		if !slices.Contains(Kinds, kind) {
			return out, fmt.Errorf("kubesecrets: unknown secret %q (want %s)", kind, strings.Join(Kinds, ", "))
		}
		name := o.Prefix + "-" + kind
		created, err := ensure(ctx, cs, o.Namespace, name, o.keys(kind), func() (map[string][]byte, error) { return o.generate(kind) })
		if err != nil {
			return out, err
		}
		out = append(out, Outcome{Name: name, Created: created})
	}
	return out, nil
}

// keys are the keys the Secret of kind must hold.
func (o Options) keys(kind string) []string {
	switch kind {
	case Keys:
		return []string{"signing-key", "signing-public-key", "analysis-service-key", "analysis-public-key", "repair-service-key", "repair-public-key", "encryption-key", "admin-token"}
	case NATS:
		return NATSUsers
	default:
		if o.PostgresAdmin {
			return append(slices.Clone(Services), "admin")
		}
		return Services
	}
}

func (o Options) generate(kind string) (map[string][]byte, error) {
	data := map[string][]byte{}
	switch kind {
	case Keys:
		for _, k := range []struct{ private, public string }{
			{"signing-key", "signing-public-key"},
			{"analysis-service-key", "analysis-public-key"},
			{"repair-service-key", "repair-public-key"},
		} {
			seed, pub, err := NewKeyPair()
			if err != nil {
				return nil, err
			}
			data[k.private], data[k.public] = []byte(seed), []byte(pub)
		}
		enc, err := random(32)
		if err != nil {
			return nil, err
		}
		data["encryption-key"] = []byte(base64.StdEncoding.EncodeToString(enc))
		token, err := random(32)
		if err != nil {
			return nil, err
		}
		data["admin-token"] = []byte(hex.EncodeToString(token))
	default:
		for _, k := range o.keys(kind) {
			pw, err := random(24)
			if err != nil {
				return nil, err
			}
			// nats-server reads a password as a config value: one of
			// digits alone would be a number, so it starts with letters.
			// Postgres passwords go into URLs: hex is safe there.
			if kind == NATS {
				data[k] = []byte("pw_" + hex.EncodeToString(pw))
			} else {
				data[k] = []byte(hex.EncodeToString(pw))
			}
		}
	}
	return data, nil
}

// NewKeyPair is a new Ed25519 key: its seed (what VIGIL_SIGNING_KEY and
// VIGIL_SERVICE_KEY take) and its public key, both in base64.
func NewKeyPair() (seed, public string, err error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return "", "", err
	}
	return base64.StdEncoding.EncodeToString(priv.Seed()), base64.StdEncoding.EncodeToString(pub), nil
}

func random(n int) ([]byte, error) {
	b := make([]byte, n)
	_, err := rand.Read(b)
	return b, err
}

// ensure creates the Secret name from generate unless it exists; one that
// exists (or is created meanwhile by another run) must hold every key.
func ensure(ctx context.Context, cs kubernetes.Interface, ns, name string, keys []string, generate func() (map[string][]byte, error)) (bool, error) {
	secrets := cs.CoreV1().Secrets(ns)
	cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
	switch {
	case err == nil:
		return false, complete(cur, keys)
	case !apierrors.IsNotFound(err):
		return false, refusal("read", ns, name, err)
	}
	data, err := generate()
	if err != nil {
		return false, err
	}
	_, err = secrets.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: name,
			Labels: map[string]string{
				"app.kubernetes.io/name":       "vigil",
				"app.kubernetes.io/managed-by": "vigil-secrets-ensure",
			},
			Annotations: map[string]string{
				"vigil.dev/rotation": "never by an upgrade: see docs/production.md#rotating-a-key",
			},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}, metav1.CreateOptions{})
	switch {
	case err == nil:
		return true, nil
	case apierrors.IsAlreadyExists(err):
		// Another run made it first: theirs stands.
		cur, err := secrets.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, refusal("read", ns, name, err)
		}
		return false, complete(cur, keys)
	default:
		return false, refusal("create", ns, name, err)
	}
}

func complete(s *corev1.Secret, keys []string) error {
	var missing []string
	for _, k := range keys {
		if len(s.Data[k]) == 0 {
			missing = append(missing, k)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("secret %s/%s exists without %s: it is never changed here; add the keys to it, or delete it to have a new one made (which rotates everything in it)",
			s.Namespace, s.Name, strings.Join(missing, ", "))
	}
	return nil
}

func refusal(verb, ns, name string, err error) error {
	if apierrors.IsForbidden(err) {
		return fmt.Errorf("%s secret %s/%s: forbidden: this identity needs get and create on secrets in %s (the chart's hook Job has a Role for it): %w", verb, ns, name, ns, err)
	}
	return fmt.Errorf("%s secret %s/%s: %w", verb, ns, name, err)
}
