package ownership

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Reserved are the namespace names no app may have. Kubernetes' own
// (default, kube-*) always are: the create_namespace step would put them
// under the restricted Pod Security profile and an isolating
// NetworkPolicy.
type Reserved struct {
	// names and prefixes (from "prefix-*") as given, with why.
	names    map[string]string
	prefixes []prefix
}

type prefix struct{ prefix, why string }

// Builtin are the reserved names every Reserved has.
var Builtin = []string{"default", "kube-*"}

// NewReserved returns the built-in reserved names plus own (the
// namespaces Vigil itself runs in: an app there would sit next to Vigil's
// credentials) plus trusted (the namespaces the apps' NetworkPolicy
// admits traffic from: an app there could reach every other app) plus
// extra, the operator's list. Each entry is a namespace name or a prefix
// ending in "*".
func NewReserved(own, trusted, extra []string) (*Reserved, error) {
	r := &Reserved{names: map[string]string{}}
	for _, group := range []struct {
		entries []string
		why     string
	}{
		{Builtin, "reserved for Kubernetes"},
		{own, "Vigil's own (where Vigil's cluster accounts or Vigil itself live)"},
		{trusted, "trusted by every app's NetworkPolicy (the ingress controller's or Prometheus's)"},
		{extra, "reserved by this Vigil's operator (VIGIL_RESERVED_NAMESPACES)"},
	} {
		for _, e := range group.entries {
			if err := r.add(e, group.why); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func (r *Reserved) add(entry, why string) error {
	entry = strings.TrimSpace(entry)
	if p, ok := strings.CutSuffix(entry, "*"); ok {
		// A prefix: what it makes with a letter must be a name.
		if p == "" || len(validation.IsDNS1123Label(p+"a")) > 0 || strings.Contains(p, "*") {
			return fmt.Errorf("%q is not a namespace name or a prefix of one followed by *", entry)
		}
		r.prefixes = append(r.prefixes, prefix{p, why})
		return nil
	}
	if len(validation.IsDNS1123Label(entry)) > 0 {
		return fmt.Errorf("%q is not a namespace name or a prefix of one followed by *", entry)
	}
	if _, ok := r.names[entry]; !ok {
		r.names[entry] = why
	}
	return nil
}

// Foreign returns a *ForeignError for app when namespace is reserved, nil
// otherwise.
func (r *Reserved) Foreign(namespace, app string) error {
	if why := r.Check(namespace); why != "" {
		return &ForeignError{Namespace: namespace, App: app, Reserved: why}
	}
	return nil
}

// Check returns why namespace is reserved, or "" when it is not.
func (r *Reserved) Check(namespace string) string {
	if why, ok := r.names[namespace]; ok {
		return why
	}
	for _, p := range r.prefixes {
		if strings.HasPrefix(namespace, p.prefix) {
			return p.why
		}
	}
	return ""
}
