package deploy

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

// readerTTL is how long a read-only token lives; it is renewed when a
// fifth of it is left.
const readerTTL = 15 * time.Minute

// Readers hands out read-only clients of the registered clusters, for
// the analysis service in this process: each acts as Vigil's read-only
// service account (`view`, no Secrets) with a short-lived token; the
// cluster's kubeconfig never leaves the deploy service (ADR 8).
type Readers struct {
	pool           *pgxpool.Pool
	store          *postgres.Store
	kube           *kube.Pool
	defaultCluster string

	mu     sync.Mutex
	tokens map[string]reader
}

type reader struct {
	client  kubernetes.Interface
	renewAt time.Time
}

// Readers is the deploy service's source of read-only cluster clients.
func (s *Service) Readers() *Readers { return s.readers }

// Reader returns a read-only client of cluster.
func (r *Readers) Reader(ctx context.Context, cluster string) (kubernetes.Interface, error) {
	r.mu.Lock()
	c, ok := r.tokens[cluster]
	r.mu.Unlock()
	if ok && time.Now().Before(c.renewAt) {
		return c.client, nil
	}
	kc, err := r.store.Kubeconfig(ctx, r.pool, cluster)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	admin, err := r.kube.Get(cluster, kc)
	if err != nil {
		return nil, err
	}
	base, _, err := kube.Config(kc, "")
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	rc, expires, err := kube.ReaderConfig(ctx, admin, base, readerTTL)
	if err != nil {
		return nil, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	client, err := kubernetes.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.tokens[cluster] = reader{client: client, renewAt: expires.Add(-readerTTL / 5)}
	r.mu.Unlock()
	return client, nil
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
