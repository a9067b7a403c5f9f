package deploy

import (
	"context"
	"errors"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/vigil-ops/vigil/pkg/kubeaccess"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
)

// Where Vigil's repair identity may act in a cluster (ADR 8): its
// ClusterRole (kubeaccess.RepairRules) is bound by a RoleBinding in each
// namespace it is granted, never cluster-wide, and an admission policy
// (kubeaccess.ApplyRepairPolicy) limits the fields it may change. A
// namespace is granted
//
//   - when it is one of Vigil's apps': by the deployment's
//     enable_auto_repair step, revoked when the app is deleted (and gone
//     with the namespace when that is deleted);
//   - when the operator lists it (Options.RepairNamespaces), reconciled
//     at start and for every cluster registered later: a namespace taken
//     off the list loses its grant;
//   - when an admin allows repairs there (GrantRepair, RevokeRepair).
//
// A reserved namespace (reserved.Namespaces: kube-*, vigil-system,
// Vigil's own, ingress-nginx, monitoring, VIGIL_RESERVED_NAMESPACES) is
// never granted, whoever asks.

// ErrUnknownCluster is the error of a cluster that is not registered.
var ErrUnknownCluster = postgres.ErrNotFound

// provisionTimeout bounds the provisioning of one cluster.
const provisionTimeout = time.Minute

// GrantRepair lets Vigil's repair identity act in namespace of cluster,
// because an admin allowed repairs there (the namespace → team mapping):
// a RoleBinding labelled as Vigil's, applied server-side, so granting
// again is harmless. A reserved namespace is refused with a
// *reserved.Error (errors.As), an unregistered cluster with
// ErrUnknownCluster, and a namespace that does not exist with the API
// server's NotFound (apierrors.IsNotFound). Grants of the app and of the operator's list stay
// whatever the mapping does.
func (s *Service) GrantRepair(ctx context.Context, cluster, namespace string) error {
	if err := s.repairReserved.Refuse(namespace); err != nil {
		return err
	}
	g, err := s.deployer.RepairGrants(ctx, cluster)
	if err != nil {
		return err
	}
	s.teamGrants.Lock()
	defer s.teamGrants.Unlock()
	return g.Grant(ctx, namespace, kubeaccess.SourceTeam)
}

// RevokeRepair takes back what GrantRepair granted in namespace of
// cluster; revoking what is not granted is nothing to do.
func (s *Service) RevokeRepair(ctx context.Context, cluster, namespace string) error {
	g, err := s.deployer.RepairGrants(ctx, cluster)
	if err != nil {
		return err
	}
	s.teamGrants.Lock()
	defer s.teamGrants.Unlock()
	return g.Revoke(ctx, namespace, kubeaccess.SourceTeam)
}

// known is what provisioning grants by app: the apps (where they run),
// read once for every cluster. The admins' mappings are read per cluster,
// under teamGrants (provisionRepair).
type known struct {
	apps []postgres.AppRef
}

func (s *Service) known(ctx context.Context) (known, error) {
	apps, err := s.store.AppRefs(ctx, s.deps.Pool)
	if err != nil {
		return known{}, err
	}
	return known{apps: apps}, nil
}

// provisionRepair sets up the repair identity in cluster: its account,
// its admission policy, its grants in the namespaces of the apps there
// (granted again: a deployment grants them too) and in the operator's
// list (reconciled: what left the list is revoked). Grants of apps
// deleted meanwhile are not looked for here: other Vigils' apps may share
// the cluster, and deleting an app revokes its grant.
func (s *Service) provisionRepair(ctx context.Context, cluster string, k known) error {
	ctx, cancel := context.WithTimeout(ctx, provisionTimeout)
	defer cancel()
	g, err := s.deployer.RepairGrants(ctx, cluster)
	if err != nil {
		return err
	}
	if err := kubeaccess.Provision(ctx, g.Admin, kubeaccess.Repairer); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	if err := kubeaccess.ApplyRepairPolicy(ctx, g.Admin); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	var errs []error
	for _, a := range k.apps {
		if a.Cluster != cluster {
			continue
		}
		// Created by the app's first deployment: not there yet is fine.
		if err := g.Grant(ctx, a.Namespace, kubeaccess.SourceApp); err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
		}
	}
	errs = append(errs, g.Reconcile(ctx, kubeaccess.SourceAllowed, s.opts.RepairNamespaces))
	errs = append(errs, s.reconcileTeamGrants(ctx, g, cluster))
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return nil
}

// reconcileTeamGrants makes the admins' grants in cluster those of the
// namespace mappings with allow_repairs there, read now under teamGrants:
// a mapping recorded meanwhile is either in the reading or granted after
// it by its own GrantRepair, never revoked by a reading that missed it.
func (s *Service) reconcileTeamGrants(ctx context.Context, g kubeaccess.Grants, cluster string) error {
	s.teamGrants.Lock()
	defer s.teamGrants.Unlock()
	mappings, err := s.store.Mappings(ctx, s.deps.Pool)
	if err != nil {
		return err
	}
	var allowed []string
	for _, m := range mappings {
		if m.GetAllowRepairs() && m.GetCluster() == cluster && s.repairReserved.Check(m.GetNamespace()) == "" {
			allowed = append(allowed, m.GetNamespace())
		}
	}
	return g.Reconcile(ctx, kubeaccess.SourceTeam, allowed)
}

// provisionAll provisions every registered cluster, logging (not
// failing on) a cluster that cannot be: an unreachable cluster must not
// keep deploy from starting, and is provisioned again when a repair
// credential for it is issued.
func (s *Service) provisionAll(ctx context.Context) {
	cs, err := s.store.ListClusters(ctx, s.deps.Pool)
	if err != nil {
		s.log.WarnContext(ctx, "cannot list clusters to provision the repair identity", "error", err)
		return
	}
	k, err := s.known(ctx)
	if err != nil {
		s.log.WarnContext(ctx, "cannot read the apps and mappings to provision the repair identity", "error", err)
		return
	}
	for _, c := range cs {
		if err := s.provisionRepair(ctx, c.GetName(), k); err != nil {
			s.log.WarnContext(ctx, "repair identity not fully provisioned", "cluster", c.GetName(), "error", err)
		}
	}
}

// clusterAdded provisions a cluster registered through the API.
func (s *Service) clusterAdded(ctx context.Context, cluster string) {
	ctx = context.WithoutCancel(ctx)
	k, err := s.known(ctx)
	if err == nil {
		err = s.provisionRepair(ctx, cluster, k)
	}
	if err != nil {
		s.log.WarnContext(ctx, "repair identity not fully provisioned", "cluster", cluster, "error", err)
	}
}
