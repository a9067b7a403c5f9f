// Package reserved names the namespaces Vigil's repair identity never acts
// in, whatever an admin or an analysis asks: the cluster's own, Vigil's
// own, the ones every app's NetworkPolicy trusts, and those the operator
// lists. The deploy service never binds the repair identity there (RBAC),
// and the repair service's guardrails block a repair there (with the
// reason given here), so the two agree.
package reserved

import (
	"fmt"
	"strings"
	"sync"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Why a namespace is reserved, as the reasons say it.
const (
	WhyKubernetes = "the cluster's own (kube-*)"
	WhyVigil      = "Vigil's own"
	WhyTrusted    = "trusted by every app's NetworkPolicy (the ingress controller's or Prometheus's)"
	WhyOperator   = "reserved by this Vigil's operator (VIGIL_RESERVED_NAMESPACES)"
)

// Builtin are the namespaces reserved whatever is configured: Kubernetes'
// own, the one holding Vigil's service accounts (vigil-system), and the
// ingress controller's and Prometheus's, which every app's NetworkPolicy
// admits traffic from (a workload changed there could reach every app).
var Builtin = []Entry{
	{"kube-*", WhyKubernetes},
	{"vigil-system", WhyVigil},
	{"ingress-nginx", WhyTrusted},
	{"monitoring", WhyTrusted},
}

// Entry is a namespace name, or a prefix of names ending in "*", with why
// it is reserved.
type Entry struct{ Pattern, Why string }

// Namespaces is a set of reserved namespaces. The zero value and nil
// reserve nothing; use New.
type Namespaces struct {
	names    map[string]string
	prefixes []Entry
}

// New returns Builtin plus own (the namespace Vigil runs in, when set)
// plus extra, the operator's list of names or "prefix-*".
func New(own string, extra []string) (*Namespaces, error) {
	n := &Namespaces{names: map[string]string{}}
	add := func(e Entry) error {
		p := strings.TrimSpace(e.Pattern)
		if prefix, ok := strings.CutSuffix(p, "*"); ok {
			// A prefix: what it makes with a letter must be a name.
			if prefix == "" || strings.Contains(prefix, "*") || len(validation.IsDNS1123Label(prefix+"a")) > 0 {
				return fmt.Errorf("%q is not a namespace name or a prefix of one followed by *", e.Pattern)
			}
			n.prefixes = append(n.prefixes, Entry{prefix, e.Why})
			return nil
		}
		if len(validation.IsDNS1123Label(p)) > 0 {
			return fmt.Errorf("%q is not a namespace name or a prefix of one followed by *", e.Pattern)
		}
		if _, ok := n.names[p]; !ok {
			n.names[p] = e.Why
		}
		return nil
	}
	for _, e := range Builtin {
		if err := add(e); err != nil {
			return nil, err
		}
	}
	if own != "" {
		if err := add(Entry{own, "the namespace Vigil runs in (VIGIL_NAMESPACE)"}); err != nil {
			return nil, fmt.Errorf("VIGIL_NAMESPACE: %w", err)
		}
	}
	for _, e := range extra {
		if err := add(Entry{e, WhyOperator}); err != nil {
			return nil, fmt.Errorf("VIGIL_RESERVED_NAMESPACES: %w", err)
		}
	}
	return n, nil
}

// Default is New with nothing configured, built once (a Namespaces is
// never changed after New).
var Default = sync.OnceValue(func() *Namespaces {
	n, err := New("", nil)
	if err != nil {
		panic(err) // Builtin are valid
	}
	return n
})

// Check returns why namespace is reserved, or "" when it is not.
func (n *Namespaces) Check(namespace string) string {
	if n == nil {
		return ""
	}
	if why, ok := n.names[namespace]; ok {
		return why
	}
	for _, p := range n.prefixes {
		if strings.HasPrefix(namespace, p.Pattern) {
			return p.Why
		}
	}
	return ""
}

// Error is a refusal to grant or repair in a reserved namespace.
type Error struct{ Namespace, Why string }

func (e *Error) Error() string {
	return fmt.Sprintf("namespace %s is %s: Vigil never repairs there", e.Namespace, e.Why)
}

// Refuse returns an *Error when namespace is reserved, nil otherwise.
func (n *Namespaces) Refuse(namespace string) error {
	if why := n.Check(namespace); why != "" {
		return &Error{Namespace: namespace, Why: why}
	}
	return nil
}
