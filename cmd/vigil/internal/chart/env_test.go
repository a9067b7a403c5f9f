package chart

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/kubesecrets"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The environment the chart gives each container is enough: with exactly
// that (Secrets resolved from the ones `vigil secrets ensure` made and an
// operator's NATS Secret, addresses pointed at this machine), the
// provisioning Jobs' commands succeed against the real nats-server
// (deploy/nats/nats.conf) and Postgres, and every service starts as
// `vigil serve` and becomes ready.
func TestChartEnv(t *testing.T) {
	k := testkit.SharedKube(t)
	ns := k.Namespace(t)
	nats := testkit.ExternalNATS(t)
	pg, err := pgx.ParseConfig(testkit.Postgres(t))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// The operator's NATS passwords, those nats-server runs with; the
	// rest made as the hook makes them.
	natsSecret := map[string][]byte{}
	for user, pw := range nats.Passwords {
		natsSecret[user] = []byte(pw)
	}
	for name, data := range map[string]map[string][]byte{"own-nats": natsSecret, "pg-admin": {"password": []byte("unused: the test cluster trusts its socket")}} {
		_, err = k.Clientset.CoreV1().Secrets(ns).Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}, metav1.CreateOptions{})
		require.NoError(t, err)
	}
	_, err = kubesecrets.Ensure(ctx, k.Clientset, kubesecrets.Options{Namespace: ns, Prefix: "vigil", Only: []string{kubesecrets.Keys, kubesecrets.Postgres}})
	require.NoError(t, err)

	// Postgres on its Unix socket: pgx takes a host that is a path.
	manifest, err := helm(t, "template", "vigil", "deploy/helm/vigil", "--namespace", ns,
		"--set", "nats.url="+nats.URL, "--set", "nats.existingSecret=own-nats",
		"--set", "postgres.host="+url.PathEscape(pg.Host), "--set", "postgres.port="+strconv.Itoa(int(pg.Port)),
		"--set", "postgres.database="+pg.Database, "--set", "postgres.sslmode=disable",
		"--set", "postgres.admin.user="+pg.User, "--set", "postgres.admin.existingSecret=pg-admin")
	require.NoError(t, err)
	containers := map[string]corev1.Container{}
	for _, u := range objects(t, manifest) {
		var spec corev1.PodTemplateSpec
		switch u.GetKind() {
		case "Deployment", "Job":
			tpl, _, _ := unstructured.NestedMap(u.Object, "spec", "template")
			require.NoError(t, runtime.DefaultUnstructuredConverter.FromUnstructured(tpl, &spec))
			containers[strings.TrimPrefix(u.GetName(), "vigil-")] = spec.Spec.Containers[0]
		}
	}

	// Each service's listeners on this machine; what the chart gives as
	// vigil-<service>:9090 is the service's gRPC port here.
	ports := map[string][2]int{}
	addrs := map[string]string{}
	for _, svc := range []string{"gateway", "monitor", "analysis", "repair", "notify", "deploy"} {
		ports[svc] = [2]int{freePort(t), freePort(t)}
		addrs["vigil-"+svc+":9090"] = fmt.Sprintf("127.0.0.1:%d", ports[svc][1])
	}
	env := func(name string) []string {
		t.Helper()
		c, ok := containers[name]
		require.True(t, ok, "no container %s", name)
		out := []string{"HOME=" + t.TempDir(), "PATH=" + os.Getenv("PATH")}
		for _, e := range c.Env {
			v := e.Value
			switch {
			case e.ValueFrom == nil:
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				s, err := k.Clientset.CoreV1().Secrets(ns).Get(ctx, ref.Name, metav1.GetOptions{})
				require.NoError(t, err, "%s: %s", name, e.Name)
				require.Contains(t, s.Data, ref.Key, "%s: %s", name, e.Name)
				v = string(s.Data[ref.Key])
			case e.ValueFrom.FieldRef != nil:
				require.Equal(t, "metadata.namespace", e.ValueFrom.FieldRef.FieldPath)
				v = ns
			case e.ValueFrom.ResourceFieldRef != nil:
				q := c.Resources.Limits[corev1.ResourceName(strings.TrimPrefix(e.ValueFrom.ResourceFieldRef.Resource, "limits."))]
				v = strconv.FormatInt(q.Value(), 10)
			default:
				t.Fatalf("%s: %s: a source this test does not know", name, e.Name)
			}
			if a, ok := addrs[v]; ok {
				v = a
			}
			if p, ok := ports[name]; ok && e.Name == "VIGIL_HTTP_ADDR" {
				v = fmt.Sprintf("127.0.0.1:%d", p[0])
			}
			if p, ok := ports[name]; ok && e.Name == "VIGIL_GRPC_ADDR" {
				v = fmt.Sprintf("127.0.0.1:%d", p[1])
			}
			out = append(out, e.Name+"="+v)
		}
		return out
	}

	bin := vigilBinary(t)
	for _, job := range []string{"nats-provision", "db-bootstrap"} {
		cmd := exec.CommandContext(ctx, bin, containers[job].Args...)
		cmd.Env = env(job)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", job, out)
	}
	for _, svc := range []string{"deploy", "monitor", "analysis", "repair", "notify", "gateway"} {
		c := containers[svc]
		require.Equal(t, []string{"serve", svc}, c.Args)
		log, err := os.Create(filepath.Join(t.TempDir(), svc+".log"))
		require.NoError(t, err)
		cmd := exec.Command(bin, c.Args...)
		cmd.Env = env(svc)
		cmd.Stdout, cmd.Stderr = log, log
		require.NoError(t, cmd.Start())
		exited := make(chan struct{})
		var waitErr error
		go func() { waitErr = cmd.Wait(); close(exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				b, _ := os.ReadFile(log.Name())
				t.Logf("vigil serve %s:\n%s", svc, b)
			}
		})
		readyz := fmt.Sprintf("http://127.0.0.1:%d/readyz", ports[svc][0])
		require.Eventually(t, func() bool {
			select {
			case <-exited:
				return true // reported below
			default:
			}
			resp, err := http.Get(readyz)
			if err != nil {
				return false
			}
			_ = resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, time.Minute, 100*time.Millisecond, "vigil serve %s ready", svc)
		select {
		case <-exited:
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("vigil serve %s exited: %v\n%s", svc, waitErr, b)
		default:
		}
	}
}

// vigilBinary builds cmd/vigil once for the test, with the race detector
// when the test has it, so that the packages come from the same cache.
func vigilBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "vigil")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/vigil")...)
	cmd.Dir = root(t)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/vigil: %s", out)
	return bin
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
