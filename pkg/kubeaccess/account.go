package kubeaccess

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// The read-only identity Vigil's analysis uses in a cluster: a service
// account bound to the built-in `view` ClusterRole (workloads, pods and
// their logs, events; not Secrets), in a namespace of Vigil's own.
const (
	Namespace            = "vigil-system"
	ReaderServiceAccount = "vigil-analysis"
	readerBinding        = "vigil-analysis-view"
)

// The repair identity: a service account whose ClusterRole of
// RepairRules (patch Deployments, delete Pods, read what those need; no
// Secrets) is bound only in the namespaces granted to it (Grants), never
// cluster-wide, and whose changes ApplyRepairPolicy limits (ADR 8).
const (
	RepairServiceAccount = "vigil-repair"
	repairRole           = "vigil-repair"
	repairBinding        = "vigil-repair"
)

// Account is one of Vigil's identities in a cluster.
type Account struct {
	ServiceAccount, Binding string
	// Role is the ClusterRole bound; Rules, when set, are its rules,
	// created (and kept current) by Vigil.
	Role  string
	Rules []rbacv1.PolicyRule
	// ClusterWide binds Role in every namespace (a ClusterRoleBinding
	// named Binding); otherwise only Grants bind it, one namespace at a
	// time, and a ClusterRoleBinding an earlier version made is deleted.
	ClusterWide bool
}

// Reader is the read-only identity of analysis. It reads cluster-wide:
// the analysis of an incident in any namespace gathers its evidence, and
// `view` neither writes nor reads Secrets; which namespace an analysis
// may read is decided by the incident's subject, in Vigil's code.
var Reader = Account{ServiceAccount: ReaderServiceAccount, Binding: readerBinding, Role: "view", ClusterWide: true}

// Repairer is the identity of repair: it writes, so it is bound per
// namespace (Grants).
var Repairer = Account{ServiceAccount: RepairServiceAccount, Binding: repairBinding, Role: repairRole, Rules: RepairRules}

// Provision creates account a in a cluster when missing, with admin, the
// cluster's admin client: Vigil's namespace, the service account, the
// role (kept at a's rules when they are Vigil's) and, for a ClusterWide
// account, its binding. An account bound per namespace acts only where
// Grants bound it.
func Provision(ctx context.Context, admin kubernetes.Interface, a Account) error {
	labels := map[string]string{"app.kubernetes.io/managed-by": "vigil"}
	create := func(what string, err error) error {
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("create %s: %w", what, err)
	}
	_, err := admin.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace, Labels: labels}}, metav1.CreateOptions{})
	if err := create("namespace "+Namespace, err); err != nil {
		return err
	}
	_, err = admin.CoreV1().ServiceAccounts(Namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: a.ServiceAccount, Labels: labels},
	}, metav1.CreateOptions{})
	if err := create("service account "+a.ServiceAccount, err); err != nil {
		return err
	}
	if a.Rules != nil {
		role := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: a.Role, Labels: labels}, Rules: a.Rules}
		_, err = admin.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		if apierrors.IsAlreadyExists(err) {
			// Keep it at the rules this version needs, no more.
			var cur *rbacv1.ClusterRole
			if cur, err = admin.RbacV1().ClusterRoles().Get(ctx, a.Role, metav1.GetOptions{}); err == nil {
				cur.Rules = a.Rules
				_, err = admin.RbacV1().ClusterRoles().Update(ctx, cur, metav1.UpdateOptions{})
			}
		}
		if err != nil {
			return fmt.Errorf("cluster role %s: %w", a.Role, err)
		}
	}
	if a.ClusterWide {
		_, err = admin.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: a.Binding, Labels: labels},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: a.Role},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: a.ServiceAccount, Namespace: Namespace}},
		}, metav1.CreateOptions{})
		if err := create("cluster role binding "+a.Binding, err); err != nil {
			return err
		}
	} else if err := deleteClusterBinding(ctx, admin, a.Binding); err != nil {
		return err
	}
	return nil
}

// AccountConfig returns a rest.Config for account a, with a short-lived
// token (TokenRequest, ttl) and no other credential, and when the token
// expires, after Provision. base is the cluster's own config (server,
// CA), whose credentials are dropped.
func AccountConfig(ctx context.Context, admin kubernetes.Interface, base *rest.Config, a Account, ttl time.Duration) (*rest.Config, time.Time, error) {
	if err := Provision(ctx, admin, a); err != nil {
		return nil, time.Time{}, err
	}
	secs := int64(ttl / time.Second)
	tr, err := admin.CoreV1().ServiceAccounts(Namespace).CreateToken(ctx, a.ServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("request a token for %s/%s: %w", Namespace, a.ServiceAccount, err)
	}
	rc := rest.AnonymousClientConfig(base)
	rc.BearerToken = tr.Status.Token
	rc.QPS, rc.Burst = 50, 100
	return rc, tr.Status.ExpirationTimestamp.Time, nil
}

// deleteClusterBinding deletes the ClusterRoleBinding name if Vigil made
// it: earlier versions bound the repair identity cluster-wide.
func deleteClusterBinding(ctx context.Context, admin kubernetes.Interface, name string) error {
	crb, err := admin.RbacV1().ClusterRoleBindings().Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil
	case err != nil:
		return fmt.Errorf("read cluster role binding %s: %w", name, err)
	case crb.Labels["app.kubernetes.io/managed-by"] != "vigil":
		return fmt.Errorf("cluster role binding %s is not Vigil's: delete it, Vigil's repair identity is bound per namespace", name)
	}
	err = admin.RbacV1().ClusterRoleBindings().Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &crb.UID}})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("delete the cluster-wide binding %s: %w", name, err)
	}
	return nil
}
