package deploy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/vigil-ops/vigil/pkg/auth"
	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

// readerTTL is how long a read-only token lives; it is renewed when a
// fifth of it is left.
const readerTTL = 15 * time.Minute

// Readers hands out read-only clients of the registered clusters, for
// the analysis service: each acts as Vigil's read-only service account
// (`view`, no Secrets) with a short-lived token; the cluster's kubeconfig
// never leaves the deploy service (ADR 8). In one process analysis uses
// it directly; in its own, through ClusterCredentialService.
type Readers struct {
	// account is the identity handed out: kubeaccess.Reader, or
	// kubeaccess.Repairer for Repairers.
	account        kubeaccess.Account
	pool           *pgxpool.Pool
	store          *postgres.Store
	kube           *kube.Pool
	defaultCluster string
	log            *slog.Logger

	mu     sync.Mutex
	tokens map[string]reader
}

type reader struct {
	config  *rest.Config
	client  kubernetes.Interface
	expires time.Time
	renewAt time.Time
}

// Readers is the deploy service's source of read-only cluster clients.
func (s *Service) Readers() *Readers { return s.readers }

// Repairers are like Readers, as Vigil's repair identity (ADR 8): patch
// Deployments, delete Pods, nothing else.
type Repairers struct{ r *Readers }

// Repairers is the deploy service's source of repair clients.
func (s *Service) Repairers() Repairers { return Repairers{s.repairers} }

// Repairer returns a client of cluster acting as the repair identity.
func (r Repairers) Repairer(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	return r.r.Reader(ctx, cluster)
}

// DefaultCluster is Readers.DefaultCluster.
func (r Repairers) DefaultCluster(ctx context.Context) (string, error) {
	return r.r.DefaultCluster(ctx)
}

// Reader returns a read-only client of cluster.
func (r *Readers) Reader(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	c, err := r.reader(ctx, cluster)
	if err != nil {
		return nil, err
	}
	return c.client, nil
}

func (r *Readers) reader(ctx context.Context, cluster string) (reader, error) {
	r.mu.Lock()
	c, ok := r.tokens[cluster]
	r.mu.Unlock()
	if ok && time.Now().Before(c.renewAt) {
		return c, nil
	}
	kc, err := r.store.Kubeconfig(ctx, r.pool, cluster)
	if err != nil {
		return reader{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	admin, err := r.kube.Get(cluster, kc)
	if err != nil {
		return reader{}, err
	}
	base, _, err := kube.Config(kc, "")
	if err != nil {
		return reader{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if !r.account.ClusterWide {
		// No credential of an identity that writes without the policy
		// that limits its writes: kept current at every renewal.
		if err := kubeaccess.ApplyRepairPolicy(ctx, admin.Typed); err != nil {
			return reader{}, fmt.Errorf("cluster %s: %w", cluster, err)
		}
	}
	rc, expires, err := kubeaccess.AccountConfig(ctx, admin.Typed, base, r.account, readerTTL)
	if err != nil {
		return reader{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return reader{}, err
	}
	c = reader{config: rc, client: client, expires: expires, renewAt: expires.Add(-readerTTL / 5)}
	r.mu.Lock()
	r.tokens[cluster] = c
	r.mu.Unlock()
	return c, nil
}

// DefaultCluster is the cluster an alert that names none is about: the
// configured default, or the only one registered.
func (r *Readers) DefaultCluster(ctx context.Context) (string, error) {
	if r.defaultCluster != "" {
		return r.defaultCluster, nil
	}
	cs, err := r.store.ListClusters(ctx, r.pool)
	if err != nil {
		return "", err
	}
	if len(cs) != 1 {
		return "", errors.New("no default cluster: register one, or set VIGIL_DEFAULT_CLUSTER")
	}
	return cs[0].GetName(), nil
}

// credentialServer serves ClusterCredentialService: a service in another
// process gets the token of its own account (analysis: the read-only
// one; repair: the repair one), never the cluster's kubeconfig.
type credentialServer struct {
	deployv1.UnimplementedClusterCredentialServiceServer
	readers, repairers *Readers
}

// access is which account each internal caller acts as.
var access = map[string]deployv1.ClusterAccess{
	"analysis": deployv1.ClusterAccess_CLUSTER_ACCESS_READ,
	"repair":   deployv1.ClusterAccess_CLUSTER_ACCESS_REPAIR,
}

// IssueClusterCredential implements ClusterCredentialService.
func (s credentialServer) IssueClusterCredential(ctx context.Context, req *deployv1.IssueClusterCredentialRequest) (*deployv1.IssueClusterCredentialResponse, error) {
	p, _ := auth.FromContext(ctx)
	want, ok := access[p.Name]
	if !ok || p.Kind != auth.KindService || req.GetAccess() != want {
		// The policy admits only services; each gets its own account.
		return nil, status.Errorf(codes.PermissionDenied, "%s may not act as %s in a cluster", p, req.GetAccess())
	}
	cluster := req.GetCluster()
	if cluster == "" {
		var err error
		if cluster, err = s.readers.DefaultCluster(ctx); err != nil {
			return nil, status.Error(codes.FailedPrecondition, err.Error())
		}
	}
	accounts := s.readers
	if want == deployv1.ClusterAccess_CLUSTER_ACCESS_REPAIR {
		accounts = s.repairers
	}
	c, err := accounts.reader(ctx, cluster)
	switch {
	case errors.Is(err, postgres.ErrNotFound):
		return nil, status.Errorf(codes.NotFound, "cluster %q is not registered", cluster)
	case err != nil:
		s.readers.log.WarnContext(ctx, "cannot issue a cluster credential", "cluster", cluster, "caller", p.String(), "error", err)
		return nil, status.Errorf(codes.Unavailable, "cluster %s: %v", cluster, err)
	}
	return &deployv1.IssueClusterCredentialResponse{
		Cluster:                  cluster,
		Server:                   c.config.Host,
		CertificateAuthorityData: c.config.CAData,
		TlsServerName:            c.config.ServerName,
		Token:                    c.config.BearerToken,
		ExpireTime:               timestamppb.New(c.expires),
		InsecureSkipTlsVerify:    c.config.Insecure,
	}, nil
}
