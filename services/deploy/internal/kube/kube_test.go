package kube_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
)

const twoContexts = `apiVersion: v1
kind: Config
clusters:
- name: prod
  cluster: {server: "https://prod.example.com:6443", certificate-authority-data: Zm9v}
- name: staging
  cluster: {server: "https://staging.example.com:6443"}
users:
- name: deployer
  user: {token: s3cr3t}
- name: other
  user: {token: other}
contexts:
- name: prod
  context: {cluster: prod, user: deployer}
- name: staging
  context: {cluster: staging, user: other}
current-context: staging
`

func TestConfigPicksTheContext(t *testing.T) {
	t.Parallel()
	rc, server, err := kube.Config([]byte(twoContexts), "")
	require.NoError(t, err)
	assert.Equal(t, "https://staging.example.com:6443", server, "the current context")
	assert.Equal(t, "other", rc.BearerToken)

	rc, server, err = kube.Config([]byte(twoContexts), "prod")
	require.NoError(t, err)
	assert.Equal(t, "https://prod.example.com:6443", server)
	assert.Equal(t, "s3cr3t", rc.BearerToken)
	assert.NotZero(t, rc.Timeout, "calls to a cluster are bounded")

	_, _, err = kube.Config([]byte(twoContexts), "dev")
	require.ErrorContains(t, err, `context "dev" not found`)
}

// What Vigil stores holds only the chosen context's cluster and user.
func TestMinifyKeepsOneContext(t *testing.T) {
	t.Parallel()
	b, err := kube.Minify([]byte(twoContexts), "prod")
	require.NoError(t, err)
	cfg, err := clientcmd.Load(b)
	require.NoError(t, err)
	assert.Equal(t, "prod", cfg.CurrentContext)
	assert.Len(t, cfg.Contexts, 1)
	assert.Len(t, cfg.Clusters, 1)
	require.Len(t, cfg.AuthInfos, 1)
	assert.Equal(t, "s3cr3t", cfg.AuthInfos["deployer"].Token)
}

// Credentials that would make Vigil read its host's files or run programs
// are refused.
func TestConfigRefusesHostCredentials(t *testing.T) {
	t.Parallel()
	for name, user := range map[string]string{
		"client cert file": `{client-certificate: /etc/cert.pem, client-key: /etc/key.pem}`,
		"token file":       `{tokenFile: /var/run/token}`,
		"exec plugin":      `{exec: {apiVersion: client.authentication.k8s.io/v1, command: /bin/sh, args: [-c, "id"]}}`,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg := `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://c.example.com"}}]
users: [{name: u, user: ` + user + `}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`
			_, _, err := kube.Config([]byte(cfg), "")
			require.Error(t, err)
		})
	}
	_, _, err := kube.Config([]byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://c.example.com", certificate-authority: /etc/ca.pem}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
`), "")
	require.ErrorContains(t, err, "certificate-authority-data")
	_, _, err = kube.Config([]byte("{not yaml"), "")
	require.Error(t, err)
}
