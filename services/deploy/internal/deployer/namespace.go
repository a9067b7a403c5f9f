package deployer

import (
	"context"
	"errors"
	"fmt"

	"github.com/vigil-ops/vigil/pkg/kubeaccess"

	"github.com/vigil-ops/vigil/services/deploy/internal/kube"
	"github.com/vigil-ops/vigil/services/deploy/internal/ownership"
	"github.com/vigil-ops/vigil/services/deploy/internal/postgres"
	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// clientFor returns the client of a registered cluster.
func (d *Deployer) clientFor(ctx context.Context, cluster string) (*kube.Client, error) {
	kubeconfig, err := d.store.Kubeconfig(ctx, d.pool, cluster)
	if err != nil {
		return nil, err
	}
	client, err := d.kube.Get(cluster, kubeconfig)
	if err != nil {
		return nil, err
	}
	return client, nil
}

// checkNamespace returns nil when app may apply into namespace: its name
// is not reserved, and it does not exist (the create_namespace step
// creates it) or it is the app's (ownership.Check); a
// *ownership.ForeignError when it is not.
func (d *Deployer) checkNamespace(ctx context.Context, client *kube.Client, namespace, app string) error {
	if err := d.opts.Reserved.Foreign(namespace, app); err != nil {
		return err
	}
	ns, err := client.Namespace(ctx, namespace)
	if err != nil {
		return fmt.Errorf("read namespace %s: %w", namespace, err)
	}
	if ns == nil {
		return nil
	}
	return ownership.Check(namespace, app, ns.Labels)
}

// CheckNamespace is checkNamespace for app a, on its cluster: the deploy
// API's check before it records a deployment, so that a deployment into
// a namespace that is not the app's is refused up front. The deployment
// checks again before it applies anything.
func (d *Deployer) CheckNamespace(ctx context.Context, a *postgres.App) error {
	if err := d.opts.Reserved.Foreign(a.Namespace, a.Name); err != nil {
		return err
	}
	client, err := d.clientFor(ctx, a.Cluster)
	if err != nil {
		return err
	}
	return d.checkNamespace(ctx, client, a.Namespace, a.Name)
}

// Removal is what RemoveResources deleted.
type Removal struct {
	// NamespaceDeleted: the namespace was the app's, and is being deleted
	// with everything in it.
	NamespaceDeleted bool
	// Foreign, when the namespace was not the app's, says why; it was left
	// alone, and Objects are the app's objects deleted from it.
	Foreign *ownership.ForeignError
	Objects []string
}

// RemoveResources deletes from the cluster what Vigil made for app a: its
// namespace when the namespace is the app's (ownership.Check) and its name
// is not reserved; otherwise only the objects inside it labelled as
// Vigil's for the app, leaving the namespace and everything else in it
// alone. A namespace that is not
// there is nothing to do.
func (d *Deployer) RemoveResources(ctx context.Context, a *postgres.App) (Removal, error) {
	var r Removal
	client, err := d.clientFor(ctx, a.Cluster)
	if err != nil {
		return r, err
	}
	ns, err := client.Namespace(ctx, a.Namespace)
	if err != nil || ns == nil {
		return r, err
	}
	err = d.opts.Reserved.Foreign(a.Namespace, a.Name)
	if err == nil {
		err = ownership.Check(a.Namespace, a.Name, ns.Labels)
	}
	if err == nil {
		if err := client.DeleteNamespace(ctx, ns); err != nil {
			return r, fmt.Errorf("delete namespace %s: %w", a.Namespace, err)
		}
		r.NamespaceDeleted = true
		return r, nil
	}
	if !errors.As(err, &r.Foreign) {
		return r, err
	}
	client.Refresh()
	for _, gvk := range render.Kinds {
		served, err := client.Served(gvk)
		if err != nil {
			return r, err
		}
		if !served {
			continue
		}
		gone, err := client.Prune(ctx, gvk, a.Namespace, ownership.Selector(a.Name), nil)
		r.Objects = append(r.Objects, gone...)
		if err != nil {
			return r, fmt.Errorf("delete %s of app %s in namespace %s: %w", gvk.Kind, a.Name, a.Namespace, err)
		}
	}
	return r, nil
}

func (d *Deployer) repairGrants(client *kube.Client) kubeaccess.Grants {
	return kubeaccess.Grants{Admin: client.Typed, Reserved: d.opts.RepairReserved}
}

// RepairGrants are the repair identity's grants in a registered cluster,
// made with deploy's own credential there.
func (d *Deployer) RepairGrants(ctx context.Context, cluster string) (kubeaccess.Grants, error) {
	client, err := d.clientFor(ctx, cluster)
	if err != nil {
		return kubeaccess.Grants{}, fmt.Errorf("cluster %s: %w", cluster, err)
	}
	return d.repairGrants(client), nil
}

// RevokeRepair takes away the repair identity's grant in app a's
// namespace (made by the enable_auto_repair step): the app is gone, and
// the namespace, if it stays, is no longer Vigil's to repair in. Other
// grants there (an admin's) stay.
func (d *Deployer) RevokeRepair(ctx context.Context, a *postgres.App) error {
	g, err := d.RepairGrants(ctx, a.Cluster)
	if err != nil {
		return err
	}
	return g.Revoke(ctx, a.Namespace, kubeaccess.SourceApp)
}
