// Package kubeaccess is what Vigil's own identities may do in a cluster,
// as RBAC rules: the deploy service, which holds a cluster's admin
// credential, makes a ClusterRole of them and binds a service account to
// it (see docs/adr/0008-cluster-access-for-analysis.md): the read-only
// identity cluster-wide, the repair identity per namespace (Grants) and
// under an admission policy (ApplyRepairPolicy).
package kubeaccess

import rbacv1 "k8s.io/api/rbac/v1"

// RepairRules are what the repair identity (service account
// `vigil-repair`) needs to carry out the closed set of repair actions
// (typesv1.RepairAction), and nothing else:
//
//   - Deployments: read them, and patch them to restart (a pod template
//     annotation), scale (spec.replicas), roll back (the pod template of
//     an earlier revision) and raise a memory limit. Patches are sent as
//     server-side dry runs too, which RBAC checks as the patch itself.
//   - ReplicaSets: read them, to find a Deployment's revisions and pods.
//   - Pods: read them, to count healthy replicas, and delete one for its
//     controller to replace.
//   - HorizontalPodAutoscalers: read them, to scale a Deployment only
//     within the bounds of the one that owns its replica count.
//
// Watch is for verifying a repair; the scale subresource is not needed
// (replicas are patched on the Deployment). No Secrets, ConfigMaps,
// namespaces, nodes, RBAC, pods/exec or pods/log; nothing created.
//
// The ClusterRole is bound with a RoleBinding in each namespace the
// identity may act in (Grants), never cluster-wide. RBAC cannot say which
// fields a patch may change: with these rules a Deployment's image could
// be patched too. The admission policy ApplyRepairPolicy installs does:
// replicas, the restart annotation, memory, and an image tag in a
// rollback, nothing else.
var RepairRules = []rbacv1.PolicyRule{
	{
		APIGroups: []string{"apps"},
		Resources: []string{"deployments"},
		Verbs:     []string{"get", "list", "watch", "patch"},
	},
	{
		APIGroups: []string{"apps"},
		Resources: []string{"replicasets"},
		Verbs:     []string{"get", "list", "watch"},
	},
	{
		APIGroups: []string{""},
		Resources: []string{"pods"},
		Verbs:     []string{"get", "list", "watch", "delete"},
	},
	{
		APIGroups: []string{"autoscaling"},
		Resources: []string{"horizontalpodautoscalers"},
		Verbs:     []string{"get", "list"},
	},
}
