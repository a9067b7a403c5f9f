package kube

import (
	"context"
	"fmt"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
)

// The read-only identity Vigil's analysis uses in a cluster: a service
// account bound to the built-in `view` ClusterRole (workloads, pods and
// their logs, events; not Secrets), in a namespace of Vigil's own.
const (
	ReaderNamespace      = "vigil-system"
	ReaderServiceAccount = "vigil-analysis"
	readerBinding        = "vigil-analysis-view"
)

// ReaderConfig returns a rest.Config for the read-only identity, with a
// short-lived token (TokenRequest, ttl) and no other credential, and when
// the token expires. It creates the namespace, service account and
// binding when missing (with c, the cluster's admin client). base is the
// cluster's own config (server, CA), whose credentials are dropped.
func ReaderConfig(ctx context.Context, c *Client, base *rest.Config, ttl time.Duration) (*rest.Config, time.Time, error) {
	labels := map[string]string{"app.kubernetes.io/managed-by": "vigil"}
	create := func(what string, err error) error {
		if err == nil || apierrors.IsAlreadyExists(err) {
			return nil
		}
		return fmt.Errorf("create %s: %w", what, err)
	}
	_, err := c.Typed.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ReaderNamespace, Labels: labels}}, metav1.CreateOptions{})
	if err := create("namespace "+ReaderNamespace, err); err != nil {
		return nil, time.Time{}, err
	}
	_, err = c.Typed.CoreV1().ServiceAccounts(ReaderNamespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: ReaderServiceAccount, Labels: labels},
	}, metav1.CreateOptions{})
	if err := create("service account "+ReaderServiceAccount, err); err != nil {
		return nil, time.Time{}, err
	}
	_, err = c.Typed.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: readerBinding, Labels: labels},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "view"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: ReaderServiceAccount, Namespace: ReaderNamespace}},
	}, metav1.CreateOptions{})
	if err := create("cluster role binding "+readerBinding, err); err != nil {
		return nil, time.Time{}, err
	}
	secs := int64(ttl / time.Second)
	tr, err := c.Typed.CoreV1().ServiceAccounts(ReaderNamespace).CreateToken(ctx, ReaderServiceAccount, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &secs},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("request a token for %s/%s: %w", ReaderNamespace, ReaderServiceAccount, err)
	}
	rc := rest.AnonymousClientConfig(base)
	rc.BearerToken = tr.Status.Token
	rc.QPS, rc.Burst = 50, 100
	return rc, tr.Status.ExpirationTimestamp.Time, nil
}
