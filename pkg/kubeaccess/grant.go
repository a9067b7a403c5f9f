package kubeaccess

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/vigil-ops/vigil/pkg/reserved"
)

// Source is why the repair identity may act in a namespace. Each source
// has a RoleBinding of its own there (vigil-repair-<source>), so that
// revoking one reason leaves the others: RBAC grants the union.
type Source string

const (
	// SourceApp is the namespace of one of Vigil's apps, granted when the
	// deploy service creates it and revoked when the app is deleted.
	SourceApp Source = "app"
	// SourceAllowed is a namespace the operator listed
	// (VIGIL_REPAIR_NAMESPACES).
	SourceAllowed Source = "allowed"
	// SourceTeam is a namespace an admin mapped to a team, allowing
	// repairs there.
	SourceTeam Source = "team"
)

// LabelGrant is on every RoleBinding of the repair identity, valued with
// its Source: how Vigil finds its grants to reconcile them.
const LabelGrant = "vigil.dev/repair-grant"

// Grants binds the repair identity's ClusterRole in single namespaces,
// never cluster-wide, and never in a reserved namespace.
type Grants struct {
	// Admin is the cluster's admin client.
	Admin kubernetes.Interface
	// Reserved are refused, whoever asks (nil: reserved.Default()).
	Reserved *reserved.Namespaces
}

func (g Grants) reserved() *reserved.Namespaces {
	if g.Reserved == nil {
		return reserved.Default()
	}
	return g.Reserved
}

func bindingName(s Source) string { return repairBinding + "-" + string(s) }

// Grant lets the repair identity act in namespace, for source: a
// RoleBinding of the vigil-repair ClusterRole, applied server-side (so
// granting again changes nothing). A reserved namespace is refused with
// a *reserved.Error; a namespace that does not exist with a NotFound.
func (g Grants) Grant(ctx context.Context, namespace string, source Source) error {
	if err := g.reserved().Refuse(namespace); err != nil {
		return err
	}
	labels := managedLabels()
	labels[LabelGrant] = string(source)
	rb := &rbacv1.RoleBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: bindingName(source), Namespace: namespace, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: repairRole},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: RepairServiceAccount, Namespace: Namespace}},
	}
	b, err := json.Marshal(rb)
	if err != nil {
		return err
	}
	if _, err := g.Admin.RbacV1().RoleBindings(namespace).Patch(ctx, rb.Name, types.ApplyPatchType, b, applyOptions()); err != nil {
		return fmt.Errorf("grant repairs in namespace %s: %w", namespace, err)
	}
	return nil
}

// Revoke takes away source's grant in namespace; one that is not there
// is nothing to do.
func (g Grants) Revoke(ctx context.Context, namespace string, source Source) error {
	err := g.Admin.RbacV1().RoleBindings(namespace).Delete(ctx, bindingName(source), metav1.DeleteOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("revoke repairs in namespace %s: %w", namespace, err)
	}
	return nil
}

// Granted lists the namespaces source grants, sorted.
func (g Grants) Granted(ctx context.Context, source Source) ([]string, error) {
	list, err := g.Admin.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{
		LabelSelector: LabelGrant + "=" + string(source),
	})
	if err != nil {
		return nil, fmt.Errorf("list repair grants: %w", err)
	}
	var out []string
	for _, rb := range list.Items {
		if rb.Name == bindingName(source) {
			out = append(out, rb.Namespace)
		}
	}
	slices.Sort(out)
	return out, nil
}

// Reconcile makes source grant exactly namespaces: it grants the ones
// missing and revokes the others. It carries on past a namespace it
// cannot grant (reserved, not there yet) and returns every such error
// joined, after doing the rest.
func (g Grants) Reconcile(ctx context.Context, source Source, namespaces []string) error {
	have, err := g.Granted(ctx, source)
	if err != nil {
		return err
	}
	var errs []error
	for _, ns := range have {
		if !slices.Contains(namespaces, ns) || g.reserved().Check(ns) != "" {
			errs = append(errs, g.Revoke(ctx, ns, source))
		}
	}
	for _, ns := range namespaces {
		errs = append(errs, g.Grant(ctx, ns, source))
	}
	return errors.Join(errs...)
}
