// Package kubedev runs a real Kubernetes control plane on 127.0.0.1 for
// tests and for trying Vigil without a cluster (`vigil up --kube-dev`):
// etcd, kube-apiserver (RBAC), kube-controller-manager, kube-scheduler, and
// kwok playing the kubelet of fake nodes, so Deployments roll out, pods
// become Running and Ready, and rollouts and containers can be made to fail
// on purpose (see stages.yaml). No containers run; kwok serves made-up
// container logs through the API server's pods/log (see logs.go).
//
// The binaries are built once by `make k8s-bins` (tools/k8s/build) into a
// version-keyed cache directory; Start fails with that instruction when
// they are missing.
package kubedev

import (
	"bytes"
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Version is the Kubernetes version of the control plane.
const Version = "v1.34.10"

//go:embed stages.yaml
var stages []byte

// Images on these hosts make kwok's pods fail the way real ones do.
const (
	// UnreadyImageHost: the pod runs but never becomes Ready.
	UnreadyImageHost = "unready.kwok.invalid"
	// PullFailImageHost: the pod stays Pending in ImagePullBackOff.
	PullFailImageHost = "pull-fail.kwok.invalid"
	// ConfigErrorImageHost: the pod stays Pending, its container waiting
	// in CreateContainerConfigError on the first Secret or ConfigMap it
	// references (kwok cannot look the object up: the image stands in for
	// the kubelet finding it missing).
	ConfigErrorImageHost = "config-error.kwok.invalid"
	// CrashImageHost: the container runs for a second and exits with code
	// 1 (reason Error), then restarts in CrashLoopBackOff, over and over.
	CrashImageHost = "crash.kwok.invalid"
	// OOMKillImageHost: the container runs for a second and is OOMKilled
	// (exit code 137), then restarts in CrashLoopBackOff, over and over.
	OOMKillImageHost = "oomkill.kwok.invalid"
)

// FakeNodeAnnotation marks the nodes kwok manages.
const FakeNodeAnnotation = "kwok.x-k8s.io/node"

// Binaries is the list of programs Start needs in the bin directory.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// DefaultBinDir is where `make k8s-bins` puts the binaries:
// $XDG_CACHE_HOME/vigil/k8s/<version>/bin, or ~/.cache/... without it
// (os.UserCacheDir).
func DefaultBinDir() string {
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = filepath.Join(os.TempDir(), "cache")
	}
	return filepath.Join(cache, "vigil", "k8s", Version, "bin")
}

// Options configure Start.
type Options struct {
	// BinDir holds the binaries (default DefaultBinDir()).
	BinDir string
	// Dir is where the cluster keeps its data, certificates, kubeconfigs
	// and logs (created if missing). A Dir from an earlier Start is reused
	// with its data: a dev cluster survives restarts.
	Dir string
	// Nodes is how many fake nodes to create (default 2).
	Nodes int
}

// Cluster is a running control plane.
type Cluster struct {
	// Config is an admin (system:masters) client configuration.
	Config *rest.Config
	// Kubeconfig is the path of an admin kubeconfig file, for kubectl.
	Kubeconfig string
	// Dir is the cluster's directory; each component logs to <name>.log.
	Dir string

	procs []*process
}

type process struct {
	name string
	cmd  *exec.Cmd
	log  *os.File
	done chan struct{}
	err  error
}

// Start runs a control plane and returns once it serves requests, its
// nodes are Ready and the default namespace's service account exists
// (about ten seconds). Stop it with Stop; if the calling process dies, the
// components die with it.
func Start(ctx context.Context, opts Options) (_ *Cluster, err error) {
	if opts.BinDir == "" {
		opts.BinDir = DefaultBinDir()
	}
	if opts.Nodes <= 0 {
		opts.Nodes = 2
	}
	if err := CheckBinaries(opts.BinDir); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("kubedev: Options.Dir is empty")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, err
	}
	pkiDir := filepath.Join(dir, "pki")
	if err := os.MkdirAll(pkiDir, 0o700); err != nil {
		return nil, fmt.Errorf("kubedev: %w", err)
	}
	c := &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()

	ports, err := freePorts(6)
	if err != nil {
		return nil, err
	}
	etcdClient, etcdPeer, apiPort, cmPort, schedPort, kwokPort := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	server := "https://127.0.0.1:" + strconv.Itoa(apiPort)

	// A fresh CA per start: kubeconfigs from an earlier start stop working,
	// the data in etcd does not care.
	p, err := newPKI(pkiDir)
	if err != nil {
		return nil, err
	}
	if err := p.serviceAccountKey(); err != nil {
		return nil, err
	}
	if _, _, err := p.issue("apiserver", "kube-apiserver", nil, []string{
		"127.0.0.1", "localhost", "10.96.0.1", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local",
	}); err != nil {
		return nil, err
	}
	// kwok serves the kubelet API of every fake node (container logs) on
	// one port of 127.0.0.1.
	if _, _, err := p.issue("kwok", "kwok", nil, []string{"127.0.0.1", "localhost"}); err != nil {
		return nil, err
	}
	kubeconfig := func(name, user string, groups []string) (string, *rest.Config, error) {
		certPEM, keyPEM, err := p.issue(name, user, groups, nil)
		if err != nil {
			return "", nil, err
		}
		path := filepath.Join(dir, name+".kubeconfig")
		cfg := clientcmdapi.NewConfig()
		cfg.Clusters["kubedev"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM()}
		cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
		cfg.Contexts["kubedev"] = &clientcmdapi.Context{Cluster: "kubedev", AuthInfo: name}
		cfg.CurrentContext = "kubedev"
		if err := clientcmd.WriteToFile(*cfg, path); err != nil {
			return "", nil, err
		}
		rc, err := clientcmd.NewDefaultClientConfig(*cfg, nil).ClientConfig()
		return path, rc, err
	}
	adminPath, admin, err := kubeconfig("admin", "kubedev-admin", []string{"system:masters"})
	if err != nil {
		return nil, err
	}
	cmPath, _, err := kubeconfig("controller-manager", "system:kube-controller-manager", nil)
	if err != nil {
		return nil, err
	}
	schedPath, _, err := kubeconfig("scheduler", "system:kube-scheduler", nil)
	if err != nil {
		return nil, err
	}
	c.Config, c.Kubeconfig = admin, adminPath
	stagesPath := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stagesPath, stages, 0o600); err != nil {
		return nil, err
	}
	if err := writeContainerLogs(dir, time.Now()); err != nil {
		return nil, err
	}

	bin := func(name string) string { return filepath.Join(opts.BinDir, name) }
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(etcdClient)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(etcdPeer)
	if err := c.run("etcd", bin("etcd"),
		"--name=kubedev",
		"--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=kubedev="+peerURL,
		// Throwaway data: no fsync, which is most of etcd's latency.
		"--unsafe-no-fsync",
		"--listen-metrics-urls=",
		"--log-level=warn",
	); err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "etcd", etcdURL+"/health", http.DefaultClient); err != nil {
		return nil, err
	}

	pkiFile := p.path
	if err := c.run("kube-apiserver", bin("kube-apiserver"),
		"--etcd-servers="+etcdURL,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(apiPort),
		"--tls-cert-file="+pkiFile("apiserver.crt"), "--tls-private-key-file="+pkiFile("apiserver.key"),
		"--client-ca-file="+pkiFile("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+pkiFile("sa.pub"),
		"--service-account-signing-key-file="+pkiFile("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=RBAC",
		// 127.0.0.1 cannot be the endpoint of the kubernetes service.
		"--endpoint-reconciler-type=none",
		"--allow-privileged=true",
		// The kubelet API (logs) is kwok's, on the nodes' InternalIP; the
		// Hostname addresses do not resolve.
		"--kubelet-preferred-address-types=InternalIP",
		"--kubelet-certificate-authority="+pkiFile("ca.crt"),
		"--profiling=false",
		"--v=0",
	); err != nil {
		return nil, err
	}
	adminHTTP, err := rest.HTTPClientFor(admin)
	if err != nil {
		return nil, err
	}
	if err := c.waitHTTP(ctx, "kube-apiserver", server+"/readyz", adminHTTP); err != nil {
		return nil, err
	}

	if err := c.run("kube-controller-manager", bin("kube-controller-manager"),
		"--kubeconfig="+cmPath,
		"--authentication-kubeconfig="+cmPath, "--authorization-kubeconfig="+cmPath,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(cmPort),
		// No pod CIDRs to hand out: kwok assigns pod IPs itself.
		"--controllers=*,-nodeipam",
		"--use-service-account-credentials=true",
		"--service-account-private-key-file="+pkiFile("sa.key"),
		"--root-ca-file="+pkiFile("ca.crt"),
		"--cluster-signing-cert-file="+pkiFile("ca.crt"), "--cluster-signing-key-file="+pkiFile("ca.key"),
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if err := c.run("kube-scheduler", bin("kube-scheduler"),
		"--kubeconfig="+schedPath,
		"--authentication-kubeconfig="+schedPath, "--authorization-kubeconfig="+schedPath,
		"--bind-address=127.0.0.1", "--secure-port="+strconv.Itoa(schedPort),
		"--leader-elect=false",
		"--profiling=false",
	); err != nil {
		return nil, err
	}
	if err := c.installLogsCRD(ctx, admin); err != nil {
		return nil, err
	}
	if err := c.run("kwok", bin("kwok"),
		"--kubeconfig="+adminPath,
		"--config="+stagesPath,
		"--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector="+FakeNodeAnnotation+"=fake",
		"--node-lease-duration-seconds=40",
		"--cidr=10.244.0.0/16",
		"--node-ip=127.0.0.1",
		"--server-address=127.0.0.1:"+strconv.Itoa(kwokPort),
		"--tls-cert-file="+pkiFile("kwok.crt"), "--tls-private-key-file="+pkiFile("kwok.key"),
		"--enable-crds=Logs",
	); err != nil {
		return nil, err
	}

	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return nil, err
	}
	for i := range opts.Nodes {
		if err := createNode(ctx, cs, fmt.Sprintf("kwok-node-%d", i)); err != nil {
			return nil, err
		}
	}
	if err := c.waitFor(ctx, "nodes to become Ready", func(ctx context.Context) (bool, error) {
		nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err
		}
		ready := 0
		for _, n := range nodes.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready++
				}
			}
		}
		return ready >= opts.Nodes, nil
	}); err != nil {
		return nil, err
	}
	if err := setKubeletPort(ctx, cs, kwokPort); err != nil {
		return nil, c.withLogs(err)
	}
	if err := WaitForServiceAccount(ctx, cs, metav1.NamespaceDefault); err != nil {
		return nil, c.withLogs(err)
	}
	return c, nil
}

// CheckBinaries tells, in words a person can act on, which binaries are
// missing from binDir.
func CheckBinaries(binDir string) error {
	var missing []string
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(binDir, b)); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("kubedev: %s missing from %s: run `make k8s-bins` (builds Kubernetes %s, etcd and kwok from the Go module proxy once, about 20 minutes) or set VIGIL_K8S_BIN_DIR",
		strings.Join(missing, ", "), binDir, Version)
}

// WaitForServiceAccount waits until the controller-manager has created the
// default service account of namespace: pods are refused before.
func WaitForServiceAccount(ctx context.Context, cs kubernetes.Interface, namespace string) error {
	return poll(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(namespace).Get(ctx, "default", metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return err == nil, err
	}, "default service account in "+namespace)
}

// setKubeletPort points the fake nodes' kubelet endpoint at kwok's server.
// Done here rather than in a node stage: the port changes with every
// Start, and the nodes of a reused Dir are Ready already.
func setKubeletPort(ctx context.Context, cs kubernetes.Interface, port int) error {
	nodes, err := cs.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return fmt.Errorf("kubedev: list nodes: %w", err)
	}
	patch := fmt.Appendf(nil, `{"status":{"daemonEndpoints":{"kubeletEndpoint":{"Port":%d}}}}`, port)
	for _, n := range nodes.Items {
		if n.Annotations[FakeNodeAnnotation] != "fake" {
			continue
		}
		if _, err := cs.CoreV1().Nodes().PatchStatus(ctx, n.Name, patch); err != nil {
			return fmt.Errorf("kubedev: set kubelet port of node %s: %w", n.Name, err)
		}
	}
	return nil
}

func createNode(ctx context.Context, cs kubernetes.Interface, name string) error {
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Annotations: map[string]string{FakeNodeAnnotation: "fake"},
			Labels: map[string]string{
				"kubernetes.io/hostname": name,
				"kubernetes.io/os":       "linux",
				"kubernetes.io/arch":     "amd64",
				"type":                   "kwok",
			},
		},
	}
	_, err := cs.CoreV1().Nodes().Create(ctx, node, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("kubedev: create node %s: %w", name, err)
	}
	return nil
}

// run starts a component with its output in <dir>/<name>.log.
func (c *Cluster) run(name, path string, args ...string) error {
	logf, err := os.OpenFile(filepath.Join(c.Dir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Dir = c.Dir
	// Die with the process that started us, whatever happens to it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	p := &process{name: name, cmd: cmd, log: logf, done: make(chan struct{})}
	started := make(chan error, 1)
	go func() {
		// Pdeathsig fires when the OS thread that forked the child exits,
		// not the process: a thread the Go runtime retires (one a
		// goroutine locked and returned on, as pgcluster's does when its
		// postgres exits) would take the component with it mid-test. The
		// thread that forks it is kept, locked to this goroutine, until
		// the component exits.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		p.err = cmd.Wait()
		close(p.done)
	}()
	if err := <-started; err != nil {
		_ = logf.Close()
		return fmt.Errorf("kubedev: start %s: %w", name, err)
	}
	c.procs = append(c.procs, p)
	return nil
}

// Stop ends the components, last started first, and waits for them.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		_ = p.log.Close()
	}
	c.procs = nil
}

func (c *Cluster) waitHTTP(ctx context.Context, name, url string, client *http.Client) error {
	return c.waitFor(ctx, name+" to answer "+url, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, err // not listening yet: waitFor polls on
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

// waitFor polls cond for up to a minute, failing early when a component
// exits. Errors from cond are taken as "not yet" (the control plane is
// coming up); the last one is reported on timeout. The error carries the
// end of the components' logs.
func (c *Cluster) waitFor(ctx context.Context, what string, cond func(context.Context) (bool, error)) error {
	var last error
	err := poll(ctx, 60*time.Second, func(ctx context.Context) (bool, error) {
		for _, p := range c.procs {
			select {
			case <-p.done:
				exit := p.err
				if exit == nil {
					exit = errors.New("exit status 0")
				}
				return false, fmt.Errorf("%s exited: %w", p.name, exit)
			default:
			}
		}
		ok, err := cond(ctx)
		last = err
		return ok && err == nil, nil
	}, what)
	if err != nil && last != nil {
		err = fmt.Errorf("%w (last error: %w)", err, last)
	}
	return c.withLogs(err)
}

func (c *Cluster) withLogs(err error) error {
	if err == nil {
		return nil
	}
	var b bytes.Buffer
	for _, p := range c.procs {
		fmt.Fprintf(&b, "\n--- %s (last lines of %s)\n%s", p.name, filepath.Join(c.Dir, p.name+".log"), tail(filepath.Join(c.Dir, p.name+".log"), 15))
	}
	return fmt.Errorf("%w%s", err, b.String())
}

func poll(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error), what string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond(ctx)
		if err != nil {
			return fmt.Errorf("kubedev: waiting for %s: %w", what, err)
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("kubedev: waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
	}
}

func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// freePorts reserves n distinct loopback ports by listening on them at
// once, then releases them for the components to bind.
func freePorts(n int) ([]int, error) {
	ports := make([]int, n)
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("kubedev: find a free port: %w", err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}
