package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/proto"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// fakeDeploy records the requests the CLI sends and the token they carry.
type fakeDeploy struct {
	deployv1.UnimplementedAppServiceServer
	deployv1.UnimplementedClusterServiceServer
	got   proto.Message
	token string
}

func (f *fakeDeploy) record(ctx context.Context, req proto.Message) {
	f.got = req
	if v := metadata.ValueFromIncomingContext(ctx, "authorization"); len(v) > 0 {
		f.token = v[0]
	}
}

func (f *fakeDeploy) CreateApp(ctx context.Context, r *deployv1.CreateAppRequest) (*deployv1.CreateAppResponse, error) {
	f.record(ctx, r)
	return &deployv1.CreateAppResponse{App: r.GetApp()}, nil
}

func (f *fakeDeploy) UpdateApp(ctx context.Context, r *deployv1.UpdateAppRequest) (*deployv1.UpdateAppResponse, error) {
	f.record(ctx, r)
	return &deployv1.UpdateAppResponse{App: r.GetApp()}, nil
}

func (f *fakeDeploy) AddCluster(ctx context.Context, r *deployv1.AddClusterRequest) (*deployv1.AddClusterResponse, error) {
	f.record(ctx, r)
	return &deployv1.AddClusterResponse{Cluster: &deployv1.Cluster{Name: r.GetName()}}, nil
}

// startFakeDeploy serves a fakeDeploy on loopback. The CLI reads
// VIGIL_TOKEN and the process's stdin, so tests using it are not parallel.
func startFakeDeploy(t *testing.T) (*fakeDeploy, string) {
	t.Helper()
	t.Setenv("VIGIL_TOKEN", "test-token")
	t.Setenv("VIGIL_TOKEN_FILE", "")
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &fakeDeploy{}
	srv := grpc.NewServer()
	deployv1.RegisterAppServiceServer(srv, f)
	deployv1.RegisterClusterServiceServer(srv, f)
	go func() { _ = srv.Serve(lis) }()
	t.Cleanup(srv.Stop)
	return f, lis.Addr().String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(path, []byte(content), 0o600))
	return path
}

// stdinFrom makes the process's stdin a pipe holding content.
func stdinFrom(t *testing.T, content string) {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	_, err = w.WriteString(content)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() {
		os.Stdin = old
		_ = r.Close()
	})
}

// Every way of giving a secret lands in the request, with one trailing
// line ending stripped from files and stdin.
func TestAppsSecretSources(t *testing.T) {
	f, addr := startFakeDeploy(t)
	t.Setenv("SHOP_DB_PASSWORD", "from-env")
	stdinFrom(t, "from-stdin\n")
	err := runCLI(appsCommand, addr, "create", "shop", "--framework", "go", "--image", "registry.example.com/shop:1",
		"--secret", "LITERAL=as=is",
		"--secret", "FILE=@"+writeFile(t, "pw", "from-file\n"),
		"--secret", "CRLF=@"+writeFile(t, "crlf", "crlf\r\n"),
		"--secret", "KEEP_NEWLINE=@"+writeFile(t, "nl", "line\n\n"),
		"--secret", "PEM=@"+writeFile(t, "pem", "-----BEGIN KEY-----\nabc\n-----END KEY-----\n"),
		"--secret", "STDIN=-",
		"--secret-from-env", "ENV=SHOP_DB_PASSWORD",
	)
	require.NoError(t, err)
	require.Equal(t, "Bearer test-token", f.token)
	assert.Equal(t, map[string]string{
		"LITERAL":      "as=is",
		"FILE":         "from-file",
		"CRLF":         "crlf",
		"KEEP_NEWLINE": "line\n",
		"PEM":          "-----BEGIN KEY-----\nabc\n-----END KEY-----",
		"STDIN":        "from-stdin",
		"ENV":          "from-env",
	}, f.got.(*deployv1.CreateAppRequest).GetSecrets())

	// update takes the same flags, as set_secrets.
	err = runCLI(appsCommand, addr, "update", "shop", "--secret-from-env", "ENV=SHOP_DB_PASSWORD", "--remove-secret", "LITERAL")
	require.NoError(t, err)
	got := f.got.(*deployv1.UpdateAppRequest)
	assert.Equal(t, map[string]string{"ENV": "from-env"}, got.GetSetSecrets())
	assert.Equal(t, []string{"LITERAL"}, got.GetRemoveSecrets())
}

// A secret that cannot be read stops the command before anything is sent,
// with an error naming the flag and the source, never a value.
func TestAppsSecretErrors(t *testing.T) {
	f, addr := startFakeDeploy(t)
	t.Setenv("EMPTY_VAR", "")
	missing := filepath.Join(t.TempDir(), "nope")
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
		want  []string
	}{
		{"missing file", []string{"--secret", "PW=@" + missing}, "", []string{"--secret PW=@" + missing, "no such file"}},
		{"empty file", []string{"--secret", "PW=@" + writeFile(t, "empty", "\n")}, "", []string{"--secret PW=@", "is empty"}},
		{"no file name", []string{"--secret", "PW=@"}, "", []string{"--secret PW=@", "file name"}},
		{"too big", []string{"--secret", "PW=@" + writeFile(t, "big", strings.Repeat("x", 33<<10))}, "", []string{"larger than 32 KiB"}},
		{"unset variable", []string{"--secret-from-env", "PW=NOT_SET_ANYWHERE_123"}, "", []string{"--secret-from-env PW=NOT_SET_ANYWHERE_123", "is not set"}},
		{"empty variable", []string{"--secret-from-env", "PW=EMPTY_VAR"}, "", []string{"EMPTY_VAR is empty"}},
		{"no variable", []string{"--secret-from-env", "PW"}, "", []string{"want KEY=VARIABLE"}},
		{"empty stdin", []string{"--secret", "PW=-"}, "", []string{"--secret PW=-", "empty value on stdin"}},
		{"two from stdin", []string{"--secret", "A=-", "--secret", "B=-"}, "a\n", []string{"--secret B=-", "stdin holds one value"}},
		{"given twice", []string{"--secret", "PW=x", "--secret-from-env", "PW=HOME"}, "", []string{"PW: given twice"}},
		{"no key", []string{"--secret", "hunter2"}, "", []string{"want KEY=VALUE, KEY=@FILE or KEY=-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f.got = nil
			stdinFrom(t, tc.stdin)
			args := append([]string{"create", "shop", "--framework", "go", "--image", "registry.example.com/shop:1"}, tc.args...)
			err := runCLI(appsCommand, addr, args...)
			require.Error(t, err)
			for _, w := range tc.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.NotContains(t, err.Error(), "hunter2", "no value in the error")
			assert.Nil(t, f.got, "nothing sent")
		})
	}
}

// On a terminal, each KEY=- is prompted for, on stderr, without echo.
func TestSecretPromptOnTerminal(t *testing.T) {
	t.Parallel()
	var prompt bytes.Buffer
	answers := []string{"first", "second"}
	in := &input{
		terminal: func() bool { return true },
		readPassword: func() ([]byte, error) {
			a := answers[0]
			answers = answers[1:]
			return []byte(a), nil
		},
		prompt:    &prompt,
		lookupEnv: func(string) (string, bool) { return "", false },
	}
	got, err := in.secrets([]string{"A=-", "B=-"}, nil)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"A": "first", "B": "second"}, got)
	assert.Contains(t, prompt.String(), "Value of secret A (not shown): ")
	assert.Contains(t, prompt.String(), "Value of secret B (not shown): ")
	assert.NotContains(t, prompt.String(), "first")

	in.readPassword = func() ([]byte, error) { return nil, errors.New("interrupted") }
	_, err = in.secrets([]string{"A=-"}, nil)
	require.ErrorContains(t, err, "--secret A=-: read stdin: interrupted")
}

// The API token comes from --token-file or VIGIL_TOKEN_FILE (trimmed),
// else VIGIL_TOKEN.
func TestTokenFile(t *testing.T) {
	f, addr := startFakeDeploy(t)
	create := []string{"create", "shop", "--framework", "go", "--image", "registry.example.com/shop:1"}
	t.Setenv("VIGIL_TOKEN", "")

	path := writeFile(t, "token", "vgl_from_file\n")
	require.NoError(t, runCLI(appsCommand, addr, append(create, "--token-file", path)...))
	assert.Equal(t, "Bearer vgl_from_file", f.token)

	t.Setenv("VIGIL_TOKEN_FILE", writeFile(t, "token2", "vgl_from_env_file"))
	require.NoError(t, runCLI(appsCommand, addr, create...))
	assert.Equal(t, "Bearer vgl_from_env_file", f.token)

	t.Setenv("VIGIL_TOKEN", "vgl_env")
	require.NoError(t, runCLI(appsCommand, addr, create...))
	assert.Equal(t, "Bearer vgl_from_env_file", f.token, "a token file wins over VIGIL_TOKEN")

	t.Setenv("VIGIL_TOKEN_FILE", "")
	require.NoError(t, runCLI(appsCommand, addr, create...))
	assert.Equal(t, "Bearer vgl_env", f.token)

	err := runCLI(appsCommand, addr, append(create, "--token-file", filepath.Join(t.TempDir(), "nope"))...)
	require.ErrorContains(t, err, "--token-file")
	require.ErrorContains(t, err, "no such file")
	err = runCLI(appsCommand, addr, append(create, "--token-file", writeFile(t, "blank", " \n"))...)
	require.ErrorContains(t, err, "is empty")
	// Neither: the stored session, and without one, how to get one.
	t.Setenv("VIGIL_TOKEN", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
	err = runCLI(appsCommand, addr, create...)
	require.ErrorContains(t, err, "not logged in")
	require.ErrorContains(t, err, "VIGIL_TOKEN")
}

// clusters add --kubeconfig - reads the kubeconfig from stdin.
func TestClustersAddKubeconfigFromStdin(t *testing.T) {
	f, addr := startFakeDeploy(t)
	stdinFrom(t, "apiVersion: v1\nkind: Config\n")
	require.NoError(t, runCLI(clustersCommand, addr, "add", "main", "--kubeconfig", "-"))
	assert.Equal(t, "apiVersion: v1\nkind: Config\n", string(f.got.(*deployv1.AddClusterRequest).GetKubeconfig()))

	f.got = nil
	stdinFrom(t, "")
	require.ErrorContains(t, runCLI(clustersCommand, addr, "add", "main", "--kubeconfig", "-"), "--kubeconfig: empty stdin")
	assert.Nil(t, f.got)
}
