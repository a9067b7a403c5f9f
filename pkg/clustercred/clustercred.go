// Package clustercred gives a Vigil service in its own process clients of
// the registered clusters, as the deploy service hands them out
// (ClusterCredentialService, ADR 8): a short-lived token of the service's
// own account per cluster, renewed when a fifth of its life is left. The
// cluster's kubeconfig stays with deploy.
package clustercred

import (
	"context"
	"fmt"
	"sync"
	"time"

	"google.golang.org/grpc"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// Clusters asks deploy for credentials of one account.
type Clusters struct {
	client deployv1.ClusterCredentialServiceClient
	access deployv1.ClusterAccess

	mu       sync.Mutex
	clusters map[string]remoteCluster
	// dflt is the default cluster's name, as deploy last said.
	dflt      string
	dfltUntil time.Time
}

type remoteCluster struct {
	client  kubernetes.Interface
	renewAt time.Time
}

// New asks deploy at conn for access; the connection must authenticate
// as the service whose account that is (auth.ServiceIdentity).
func New(conn grpc.ClientConnInterface, access deployv1.ClusterAccess) *Clusters {
	return &Clusters{client: deployv1.NewClusterCredentialServiceClient(conn), access: access, clusters: map[string]remoteCluster{}}
}

// Client returns a client of cluster acting as the account.
func (r *Clusters) Client(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	r.mu.Lock()
	c, ok := r.clusters[cluster]
	r.mu.Unlock()
	if ok && time.Now().Before(c.renewAt) {
		return c.client, nil
	}
	_, client, err := r.issue(ctx, cluster)
	return client, err
}

// DefaultCluster is the cluster an alert that names none is about, as
// deploy says.
func (r *Clusters) DefaultCluster(ctx context.Context) (string, error) {
	r.mu.Lock()
	name, until := r.dflt, r.dfltUntil
	r.mu.Unlock()
	if name != "" && time.Now().Before(until) {
		return name, nil
	}
	name, _, err := r.issue(ctx, "")
	return name, err
}

// issue asks deploy for a credential of cluster ("": the default one).
func (r *Clusters) issue(ctx context.Context, cluster string) (string, kubernetes.Interface, error) {
	resp, err := r.client.IssueClusterCredential(ctx, &deployv1.IssueClusterCredentialRequest{
		Cluster: cluster, Access: r.access,
	})
	if err != nil {
		return "", nil, fmt.Errorf("cluster credential from the deploy service: %w", err)
	}
	rc := &rest.Config{
		Host:        resp.GetServer(),
		BearerToken: resp.GetToken(),
		TLSClientConfig: rest.TLSClientConfig{
			CAData: resp.GetCertificateAuthorityData(), ServerName: resp.GetTlsServerName(), Insecure: resp.GetInsecureSkipTlsVerify(),
		},
		// As deploy's in-process clients.
		QPS: 50, Burst: 100,
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return "", nil, err
	}
	expires := resp.GetExpireTime().AsTime()
	renewAt := expires.Add(-time.Until(expires) / 5)
	r.mu.Lock()
	r.clusters[resp.GetCluster()] = remoteCluster{client: client, renewAt: renewAt}
	if cluster == "" {
		r.dflt, r.dfltUntil = resp.GetCluster(), renewAt
	}
	r.mu.Unlock()
	return resp.GetCluster(), client, nil
}
