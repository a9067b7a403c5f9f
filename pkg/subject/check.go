package subject

import (
	"fmt"
	"strings"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Verdict says whether a repair may act on a target for a subject.
type Verdict struct {
	// OK: the target is the subject's workload (or, for a pod subject,
	// PodOwner must still be checked in the cluster).
	OK bool
	// Reason says why not, for people.
	Reason string
	// PodOwner: the subject names only a pod; the target must be the
	// workload that controls it (or the pod itself, for deleting it),
	// which only the cluster can tell.
	PodOwner string
}

// Check says whether a repair of action may act on target, for an
// incident about s. cluster is the default cluster's name, for a subject
// or target that names none. Nothing else is allowed: another namespace,
// another cluster, another workload, or a subject that names no workload
// at all (a person must act).
func Check(s *typesv1.Subject, target *typesv1.ResourceRef, action typesv1.RepairAction, cluster string) Verdict {
	no := func(format string, a ...any) Verdict { return Verdict{Reason: fmt.Sprintf(format, a...)} }
	if s.GetNamespace() == "" {
		return no("the incident's subject names no namespace: only a person can tell what to repair")
	}
	if target.GetNamespace() != s.GetNamespace() {
		return no("the target's namespace %q is not the incident's subject's (%s)", target.GetNamespace(), s.GetNamespace())
	}
	if tc, sc := or(target.GetCluster(), cluster), or(s.GetCluster(), cluster); tc != sc {
		return no("the target's cluster %q is not the incident's subject's (%s)", tc, sc)
	}
	kind, name := target.GetKind(), target.GetName()
	if action == typesv1.RepairAction_REPAIR_ACTION_DELETE_POD && kind == "Pod" {
		switch {
		case s.GetPod() != "" && name == s.GetPod():
			return Verdict{OK: true}
		case s.GetName() != "" && strings.HasPrefix(name, s.GetName()+"-"):
			// A pod of the subject's workload; the executor checks its
			// controller in the cluster.
			return Verdict{OK: true}
		}
		return no("pod %s is not the incident's subject's (%s)", name, describe(s))
	}
	switch {
	case s.GetName() != "":
		if name != s.GetName() || (s.GetKind() != "" && kind != s.GetKind()) {
			return no("%s %s/%s is not the incident's subject (%s)", kind, target.GetNamespace(), name, describe(s))
		}
		return Verdict{OK: true}
	case s.GetPod() != "":
		return Verdict{OK: true, PodOwner: s.GetPod()}
	}
	return no("the incident's subject (%s) names no workload: only a person can tell what to repair", describe(s))
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// describe names s for people: "Deployment payments/payments", "pod
// payments/x", "namespace payments".
func describe(s *typesv1.Subject) string {
	switch {
	case s.GetName() != "":
		kind := s.GetKind()
		if kind == "" {
			kind = "workload"
		}
		return kind + " " + s.GetNamespace() + "/" + s.GetName()
	case s.GetPod() != "":
		return "pod " + s.GetNamespace() + "/" + s.GetPod()
	}
	return "namespace " + s.GetNamespace()
}

// Describe names s for people, with its owner: "Deployment
// payments/payments (app payments, team team-b)".
func Describe(s *typesv1.Subject) string {
	if s.GetNamespace() == "" {
		return "nothing Vigil can place (no namespace)"
	}
	return describe(s) + " (" + ownerPhrase(s) + ")"
}
