package kubeaccess

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// RepairPolicy names the ValidatingAdmissionPolicy (and its binding) that
// limits what the repair identity may change in a Deployment.
const RepairPolicy = "vigil-repair-limits"

// RepairUser is the user the API server sees when the repair identity
// calls it: the policy matches on it.
const RepairUser = "system:serviceaccount:" + Namespace + ":" + RepairServiceAccount

// The annotations a repair may set on a Deployment's pod template or on
// the Deployment (the executors in services/repair/internal/action).
const (
	restartedAt = "kubectl.kubernetes.io/restartedAt"
	repairID    = "vigil.dev/repair-id"
)

// RBAC says which objects the repair identity may patch (Deployments in
// the namespaces granted to it) but not which fields. The policy says
// which: a Deployment updated by the repair identity may differ from what
// it was only in
//
//   - spec.replicas (scale);
//   - the pod template annotations kubectl.kubernetes.io/restartedAt and
//     vigil.dev/repair-id (restart, and the repair's mark), and the
//     Deployment's own vigil.dev/repair-id annotation (rollback's mark);
//   - a container's memory request and limit (raise memory);
//   - a container's image, to another tag or digest of the same
//     repository (rollback).
//
// Everything else must stay as it was: labels, owners and finalizers of
// the Deployment, the rest of its spec (selector, strategy, paused...),
// the pod template's labels and other annotations, every pod field
// (service account, volumes, security context, host namespaces, node
// selection...) and every container field (command, args, env, ports,
// probes, volume mounts, security context, other resources...), with the
// same containers by name. The comparison is over every field the API
// server knows, listed or not, so a field Kubernetes adds later is fixed
// too. The identity may not create or delete Deployments either.
//
// What the policy cannot check: that an image is one the Deployment ran
// before. CEL sees only the request and the Deployment as it was, not its
// ReplicaSets, so "roll back to an earlier template" is enforced by the
// rollback executor (which copies the template of one of the
// Deployment's own ReplicaSets) and bounded here to a tag or digest of
// the same repository: the identity cannot bring in an image from
// anywhere else, but could pick any tag of the app's own repository. A
// rollback whose earlier template differs in anything else (env, labels,
// another repository) is refused, and needs a person; Vigil's own apps
// are rolled back by the deploy service, which this policy does not bind.
func repairPolicy() *admissionregistrationv1.ValidatingAdmissionPolicy {
	update := func(cond string) string { return "request.operation != 'UPDATE' || " + cond }
	// A scale leaves the template alone: one comparison, not a walk of
	// every field of every container.
	template := func(cond string) string { return update("variables.sameTemplate || " + cond) }
	tplAnn := "variables.template.metadata.?annotations.orValue({})"
	oldTplAnn := "variables.oldTemplate.metadata.?annotations.orValue({})"
	// pairs applies cond to every container of the new template and the
	// old one of the same name (c and o), in both container lists, after
	// checking the names are the same.
	pairs := func(cond string) string {
		var all []string
		for _, list := range []string{"containers", "initContainers"} {
			n := "variables.template.spec.?" + list + ".orValue([])"
			o := "variables.oldTemplate.spec.?" + list + ".orValue([])"
			all = append(all, fmt.Sprintf("(%[1]s.size() == %[2]s.size() && %[1]s.all(c, %[2]s.exists(o, o.name == c.name && %[3]s)))", n, o, cond))
		}
		return strings.Join(all, " && ")
	}
	res := func(v, key string) string { return v + ".?resources.orValue({}).?" + key + ".orValue({})" }
	validations := []admissionregistrationv1.Validation{
		{
			Expression: "request.operation == 'UPDATE'",
			Message:    "Vigil's repair identity may not create or delete Deployments",
		},
		{
			Expression: update(
				"object.metadata.?labels.orValue({}) == oldObject.metadata.?labels.orValue({}) && " +
					"object.metadata.?ownerReferences.orValue([]) == oldObject.metadata.?ownerReferences.orValue([]) && " +
					"object.metadata.?finalizers.orValue([]) == oldObject.metadata.?finalizers.orValue([]) && " +
					sameExcept("object.metadata.?annotations.orValue({})", "oldObject.metadata.?annotations.orValue({})", repairID)),
			Message: "Vigil's repair identity may not change a Deployment's labels, owners, finalizers or annotations (but " + repairID + ")",
		},
		{
			Expression: update(sameExcept("object.spec", "oldObject.spec", "replicas", "template")),
			Message:    "Vigil's repair identity may change only spec.replicas and the pod template of a Deployment (not its selector, strategy or other settings)",
		},
		{
			Expression: template(sameExcept("variables.template.metadata", "variables.oldTemplate.metadata", "annotations") + " && " +
				sameExcept(tplAnn, oldTplAnn, restartedAt, repairID)),
			Message: "Vigil's repair identity may change only the pod template annotations " + restartedAt + " and " + repairID + " (not labels or other annotations)",
		},
		{
			Expression: template(sameExcept("variables.template.spec", "variables.oldTemplate.spec", "containers", "initContainers")),
			Message:    "Vigil's repair identity may not change the pod's service account, volumes, security context or any other pod field",
		},
		{
			Expression: template(pairs(sameExcept("c", "o", "image", "resources"))),
			Message:    "Vigil's repair identity may not add, remove or rename containers, or change their command, args, env, ports, probes, volume mounts, security context or any field but memory and (rolling back) the image tag",
		},
		{
			Expression: template(pairs(sameExcept("c.?resources.orValue({})", "o.?resources.orValue({})", "limits", "requests") + " && " +
				sameExcept(res("c", "limits"), res("o", "limits"), "memory") + " && " +
				sameExcept(res("c", "requests"), res("o", "requests"), "memory"))),
			Message: "Vigil's repair identity may change a container's memory request and limit, no other resource",
		},
		{
			Expression: template(pairs("(c.image == o.image || " + repository("c.image") + " == " + repository("o.image") + ")")),
			Message:    "Vigil's repair identity may change an image only to another tag or digest of the same repository (a rollback)",
		},
	}
	for i := range validations {
		validations[i].Reason = ptr.To(metav1.StatusReasonForbidden)
	}
	return &admissionregistrationv1.ValidatingAdmissionPolicy{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicy"},
		ObjectMeta: metav1.ObjectMeta{Name: RepairPolicy, Labels: managedLabels()},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			// An expression that cannot be evaluated refuses the change.
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update, admissionregistrationv1.Delete},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"},
						},
					},
				}},
			},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "repair-identity",
				Expression: "request.userInfo.username == '" + RepairUser + "'",
			}},
			Variables: []admissionregistrationv1.Variable{
				{Name: "template", Expression: "object.spec.template"},
				{Name: "oldTemplate", Expression: "oldObject.spec.template"},
				{Name: "sameTemplate", Expression: "object.spec.template == oldObject.spec.template"},
			},
			Validations: validations,
		},
	}
}

func repairPolicyBinding() *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	return &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		TypeMeta:   metav1.TypeMeta{APIVersion: "admissionregistration.k8s.io/v1", Kind: "ValidatingAdmissionPolicyBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: RepairPolicy, Labels: managedLabels()},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        RepairPolicy,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}
}

// sameExcept is a CEL expression true when maps a and b are equal but
// for keys. The objects the API server hands a policy are maps of every
// field it knows, so this compares fields nobody listed too.
func sameExcept(a, b string, keys ...string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = "'" + k + "'"
	}
	ks := "[" + strings.Join(quoted, ", ") + "]"
	return fmt.Sprintf("(%[1]s.all(k, k in %[3]s || (k in %[2]s && %[1]s[k] == %[2]s[k])) && %[2]s.all(k, k in %[3]s || k in %[1]s))", a, b, ks)
}

// repository is a CEL expression of image's repository: without its
// digest (@...) and its tag (a ":" after the last "/", so that a
// registry's port stays).
func repository(image string) string {
	name := image + ".split('@')[0]"
	return fmt.Sprintf("(%[1]s.lastIndexOf(':') > %[1]s.lastIndexOf('/') ? %[1]s.substring(0, %[1]s.lastIndexOf(':')) : %[1]s)", name)
}

// ApplyRepairPolicy installs (or brings up to date) the admission policy
// that limits the repair identity's changes, and its binding, with the
// cluster's admin client. Without it the deploy service hands out no
// repair credential: it needs admissionregistration.k8s.io/v1
// (Kubernetes 1.30 or later). When it changed anything it waits for the
// API server to enforce it (policyRefresh).
func ApplyRepairPolicy(ctx context.Context, admin kubernetes.Interface) error {
	vap := admin.AdmissionregistrationV1().ValidatingAdmissionPolicies()
	vapb := admin.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	var before []string
	if p, err := vap.Get(ctx, RepairPolicy, metav1.GetOptions{}); err == nil {
		before = append(before, p.ResourceVersion)
	}
	if b, err := vapb.Get(ctx, RepairPolicy, metav1.GetOptions{}); err == nil {
		before = append(before, b.ResourceVersion)
	}
	p, err := json.Marshal(repairPolicy())
	if err != nil {
		return err
	}
	applied, err := vap.Patch(ctx, RepairPolicy, types.ApplyPatchType, p, applyOptions())
	if err != nil {
		return fmt.Errorf("admission policy %s (needs Kubernetes 1.30 or later): %w", RepairPolicy, err)
	}
	b, err := json.Marshal(repairPolicyBinding())
	if err != nil {
		return err
	}
	bound, err := vapb.Patch(ctx, RepairPolicy, types.ApplyPatchType, b, applyOptions())
	if err != nil {
		return fmt.Errorf("admission policy binding %s: %w", RepairPolicy, err)
	}
	if slices.Equal(before, []string{applied.ResourceVersion, bound.ResourceVersion}) {
		return nil
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(policyRefresh):
		return nil
	}
}

// policyRefresh is how long the API server may take to enforce a new or
// changed policy: it recompiles policies at most once a second
// (k8s.io/apiserver's policy source), so a credential handed out at once
// could write before the policy holds.
const policyRefresh = 2 * time.Second

// FieldManager owns what Vigil applies for its identities.
const FieldManager = "vigil-access"

func applyOptions() metav1.PatchOptions {
	return metav1.PatchOptions{FieldManager: FieldManager, Force: ptr.To(true)}
}

func managedLabels() map[string]string {
	return map[string]string{"app.kubernetes.io/managed-by": "vigil"}
}
