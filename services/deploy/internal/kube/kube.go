// Package kube is the deploy service's way into Kubernetes: a pool of
// clients per registered cluster, server-side apply of rendered objects
// (field manager "vigil"), and waiting for a Deployment's rollout with the
// reason it failed.
package kube

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/version"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// FieldManager owns the fields Vigil applies.
const FieldManager = "vigil"

// requestTimeout bounds each call to an API server, so an unreachable
// cluster fails a step instead of hanging it.
const requestTimeout = 30 * time.Second

// Config parses a kubeconfig into a client configuration, using
// contextName or the current context, and returns the API server's URL. It
// refuses what would make Vigil read local files or run programs:
// credentials must be embedded.
func Config(kubeconfig []byte, contextName string) (*rest.Config, string, error) {
	only, server, err := selectContext(kubeconfig, contextName)
	if err != nil {
		return nil, "", err
	}
	rc, err := clientcmd.NewDefaultClientConfig(*only, nil).ClientConfig()
	if err != nil {
		return nil, "", err
	}
	rc.Timeout = requestTimeout
	rc.UserAgent = "vigil-deploy"
	return rc, server, nil
}

// Cluster is what Inspect learns of a cluster.
type Cluster struct {
	// Server is the API server's URL.
	Server string
	// Version is the API server's version, from /version.
	Version string
	// Kubeconfig holds only the chosen context, its cluster and its user:
	// what Vigil stores.
	Kubeconfig []byte
}

// Inspect checks a kubeconfig the way a cluster is registered: it must
// parse (see Config) and its API server must answer /version.
func Inspect(ctx context.Context, kubeconfig []byte, contextName string) (*Cluster, error) {
	minified, err := Minify(kubeconfig, contextName)
	if err != nil {
		return nil, err
	}
	rc, server, err := Config(minified, "")
	if err != nil {
		return nil, err
	}
	client, err := NewClient(rc)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	version, err := client.Version(ctx)
	if err != nil {
		return nil, &UnreachableError{Server: server, Err: err}
	}
	return &Cluster{Server: server, Version: version, Kubeconfig: minified}, nil
}

// UnreachableError is Inspect's answer for a kubeconfig that parses but
// whose API server did not answer.
type UnreachableError struct {
	Server string
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("the API server at %s did not answer /version: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// Minify returns a kubeconfig holding only the chosen context, its cluster
// and its user.
func Minify(kubeconfig []byte, contextName string) ([]byte, error) {
	only, _, err := selectContext(kubeconfig, contextName)
	if err != nil {
		return nil, err
	}
	return clientcmd.Write(*only)
}

func selectContext(kubeconfig []byte, contextName string) (*clientcmdapi.Config, string, error) {
	cfg, err := clientcmd.Load(kubeconfig)
	if err != nil {
		return nil, "", fmt.Errorf("not a kubeconfig: %w", err)
	}
	if contextName == "" {
		contextName = cfg.CurrentContext
	}
	kctx, ok := cfg.Contexts[contextName]
	if contextName == "" || !ok {
		return nil, "", fmt.Errorf("context %q not found", contextName)
	}
	cluster, ok := cfg.Clusters[kctx.Cluster]
	if !ok {
		return nil, "", fmt.Errorf("cluster %q of context %q not found", kctx.Cluster, contextName)
	}
	if cluster.Server == "" {
		return nil, "", fmt.Errorf("cluster %q has no server", kctx.Cluster)
	}
	if cluster.CertificateAuthority != "" {
		return nil, "", errors.New("certificate-authority names a file: embed it as certificate-authority-data")
	}
	only := clientcmdapi.NewConfig()
	only.Clusters[kctx.Cluster] = cluster
	if user := cfg.AuthInfos[kctx.AuthInfo]; user != nil {
		switch {
		case user.ClientCertificate != "" || user.ClientKey != "":
			return nil, "", errors.New("client-certificate/client-key name files: embed them as client-certificate-data/client-key-data")
		case user.TokenFile != "":
			return nil, "", errors.New("tokenFile names a file: embed the token")
		case user.Exec != nil || user.AuthProvider != nil:
			return nil, "", errors.New("exec and auth-provider credentials run programs on Vigil's host: use a service account token or a client certificate")
		}
		only.AuthInfos[kctx.AuthInfo] = user
	}
	only.Contexts[contextName] = kctx
	only.CurrentContext = contextName
	return only, cluster.Server, nil
}

// Client talks to one cluster.
type Client struct {
	Typed   kubernetes.Interface
	Dynamic dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
}

// NewClient builds a client for rc.
func NewClient(rc *rest.Config) (*Client, error) {
	rc = rest.CopyConfig(rc)
	if rc.QPS == 0 {
		// client-go's default (5/s, bursts of 10) would throttle an
		// onboarding's dozen applies into seconds of waiting.
		rc.QPS, rc.Burst = 50, 100
	}
	typed, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	dyn, err := dynamic.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(typed.Discovery()))
	return &Client{Typed: typed, Dynamic: dyn, mapper: mapper}, nil
}

// Version asks the API server for its version: the check a new cluster
// must pass.
func (c *Client) Version(ctx context.Context) (string, error) {
	body, err := c.Typed.Discovery().RESTClient().Get().AbsPath("/version").Timeout(10 * time.Second).DoRaw(ctx)
	if err != nil {
		return "", err
	}
	var v version.Info
	if err := json.Unmarshal(body, &v); err != nil || v.GitVersion == "" {
		return "", fmt.Errorf("/version answered %.100q, not a Kubernetes version", body)
	}
	return v.GitVersion, nil
}

// ErrNoKind is returned for an object whose kind the cluster does not
// serve (its CRD is not installed).
var ErrNoKind = errors.New("kind not served by the cluster")

// Refresh forgets what the client learnt of the cluster's kinds, so that
// CRDs installed (or removed) since are seen. Discovery is cached
// otherwise: a deployment refreshes once, at its start.
func (c *Client) Refresh() { c.mapper.Reset() }

// Apply server-side-applies obj as FieldManager, taking over fields other
// managers set (Vigil owns what it renders).
func (c *Client) Apply(ctx context.Context, obj *unstructured.Unstructured) (*unstructured.Unstructured, error) {
	ri, err := c.resource(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return nil, err
	}
	data, err := obj.MarshalJSON()
	if err != nil {
		return nil, err
	}
	return ri.Patch(ctx, obj.GetName(), types.ApplyPatchType, data, metav1.PatchOptions{FieldManager: FieldManager, Force: new(true)})
}

// resource finds the REST resource of gvk, namespaced to namespace when
// the kind is namespaced.
func (c *Client) resource(gvk schema.GroupVersionKind, namespace string) (dynamic.ResourceInterface, error) {
	mapping, err := c.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if meta.IsNoMatchError(err) {
		return nil, fmt.Errorf("%s: %w", gvk.Kind, ErrNoKind)
	}
	if err != nil {
		return nil, err
	}
	if mapping.Scope.Name() == meta.RESTScopeNameNamespace {
		return c.Dynamic.Resource(mapping.Resource).Namespace(namespace), nil
	}
	return c.Dynamic.Resource(mapping.Resource), nil
}

// Exists tells whether obj is in the cluster.
func (c *Client) Exists(ctx context.Context, obj *unstructured.Unstructured) (bool, error) {
	ri, err := c.resource(obj.GroupVersionKind(), obj.GetNamespace())
	if err != nil {
		return false, err
	}
	_, err = ri.Get(ctx, obj.GetName(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return false, nil
	case err != nil:
		return false, err
	}
	return true, nil
}

// Prune deletes the objects of kind gvk in namespace that match selector
// and are not named in keep: what Vigil applied once and renders no more
// (the HPA of a plan that no longer autoscales, the Ingress of a removed
// domain). It returns what it deleted, as Kind/name.
func (c *Client) Prune(ctx context.Context, gvk schema.GroupVersionKind, namespace, selector string, keep map[string]bool) ([]string, error) {
	ri, err := c.resource(gvk, namespace)
	if err != nil {
		return nil, err
	}
	list, err := ri.List(ctx, metav1.ListOptions{LabelSelector: selector})
	if apierrors.IsNotFound(err) {
		return nil, nil // the namespace is not there yet
	}
	if err != nil {
		return nil, err
	}
	var deleted []string
	for _, o := range list.Items {
		if keep[o.GetName()] {
			continue
		}
		err := ri.Delete(ctx, o.GetName(), metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return deleted, err
		}
		deleted = append(deleted, gvk.Kind+"/"+o.GetName())
	}
	return deleted, nil
}

// Served tells whether the cluster serves gvk (as of the last Refresh).
func (c *Client) Served(gvk schema.GroupVersionKind) (bool, error) {
	_, err := c.resource(gvk, "")
	if errors.Is(err, ErrNoKind) {
		return false, nil
	}
	return err == nil, err
}

// Namespace returns the namespace name, or nil when there is none.
func (c *Client) Namespace(ctx context.Context, name string) (*corev1.Namespace, error) {
	ns, err := c.Typed.CoreV1().Namespaces().Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return ns, nil
}

// ErrChanged is DeleteNamespace's answer when the namespace is no longer
// the one its caller read (deleted and created again, or changed since).
var ErrChanged = errors.New("the namespace changed since it was read")

// DeleteNamespace deletes ns, as read by Namespace, and, through it,
// everything in it; only if it is still that version of that namespace,
// so that what its caller checked (its labels) still holds. A namespace
// already gone is not an error.
func (c *Client) DeleteNamespace(ctx context.Context, ns *corev1.Namespace) error {
	uid, rv := ns.UID, ns.ResourceVersion
	err := c.Typed.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{
		Preconditions: &metav1.Preconditions{UID: &uid, ResourceVersion: &rv},
	})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		return fmt.Errorf("namespace %s: %w", ns.Name, ErrChanged)
	}
	return err
}

// Pool keeps one Client per cluster name, so connections and discovery
// are reused across deployments.
type Pool struct {
	mu      sync.Mutex
	clients map[string]*pooled
}

type pooled struct {
	client *Client
	// The sealed kubeconfig it was built from: a re-registered cluster
	// gets a new client.
	source string
}

// NewPool returns an empty pool.
func NewPool() *Pool { return &Pool{clients: map[string]*pooled{}} }

// Get returns the client for cluster, building it from kubeconfig when the
// pool has none for this kubeconfig.
func (p *Pool) Get(cluster string, kubeconfig []byte) (*Client, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[cluster]; ok && c.source == string(kubeconfig) {
		return c.client, nil
	}
	rc, _, err := Config(kubeconfig, "")
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	c, err := NewClient(rc)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	p.clients[cluster] = &pooled{client: c, source: string(kubeconfig)}
	return c, nil
}

// Forget drops a removed cluster's client.
func (p *Pool) Forget(cluster string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.clients, cluster)
}
