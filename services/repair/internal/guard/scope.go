package guard

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// Global is the name of the global scope. An empty scope means it too.
const Global = "global"

// Scope is where guardrails apply: everywhere, in one namespace of one
// cluster, or to one app. From least to most specific: global, namespace,
// app; each inherits what it leaves unset from the one before.
type Scope struct {
	// App names an app's scope ("app/<app>").
	App string
	// Cluster and Namespace name a namespace's scope
	// ("namespace/<cluster>/<namespace>").
	Cluster, Namespace string
}

// ParseScope reads a scope name: "global" (or ""), "app/<app>" or
// "namespace/<cluster>/<namespace>", each name a DNS-1123 label.
func ParseScope(s string) (Scope, error) {
	if s == "" || s == Global {
		return Scope{}, nil
	}
	kind, rest, _ := strings.Cut(s, "/")
	switch kind {
	case "app":
		if err := label("app", rest); err != nil {
			return Scope{}, err
		}
		return Scope{App: rest}, nil
	case "namespace":
		cluster, ns, ok := strings.Cut(rest, "/")
		if !ok {
			return Scope{}, fmt.Errorf("%q: want namespace/<cluster>/<namespace>", s)
		}
		if err := label("cluster", cluster); err != nil {
			return Scope{}, err
		}
		if err := label("namespace", ns); err != nil {
			return Scope{}, err
		}
		return Scope{Cluster: cluster, Namespace: ns}, nil
	}
	return Scope{}, fmt.Errorf("%q: want %q, \"app/<app>\" or \"namespace/<cluster>/<namespace>\"", s, Global)
}

// IsGlobal reports whether s is the global scope.
func (s Scope) IsGlobal() bool { return s == Scope{} }

// String returns the scope's name, as ParseScope reads it.
func (s Scope) String() string {
	switch {
	case s.App != "":
		return "app/" + s.App
	case s.Cluster != "" || s.Namespace != "":
		return "namespace/" + s.Cluster + "/" + s.Namespace
	}
	return Global
}

// label checks a DNS-1123 label, the names of apps, clusters and
// namespaces.
func label(what, name string) error {
	if name == "" {
		return fmt.Errorf("%s name is empty", what)
	}
	if len(validation.IsDNS1123Label(name)) > 0 {
		return fmt.Errorf("%s name %q must be at most 63 lowercase letters, digits and '-', starting and ending with a letter or digit", what, name)
	}
	return nil
}

// isGlobal reports whether a stored scope name is the global scope.
func isGlobal(scope string) bool { return scope == "" || scope == Global }

// canonical returns the name the scope is stored under: "" is Global.
func canonical(scope string) string {
	if scope == "" {
		return Global
	}
	return scope
}
