// Package ownership decides which namespaces of a cluster Vigil may
// change. A namespace is an app's when it carries the labels the
// create_namespace step puts on it (app.kubernetes.io/managed-by=vigil
// and vigil.dev/app=<app>); Vigil applies into, and deletes, only such
// namespaces, and never one whose name is reserved (Kubernetes' own, the
// namespaces the apps' NetworkPolicy trusts, and the operator's list).
package ownership

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/vigil-ops/vigil/services/deploy/internal/render"
)

// managedBy is LabelManagedBy's value on what Vigil renders.
const managedBy = "vigil"

// Selector selects what Vigil rendered for app.
func Selector(app string) string {
	return render.LabelManagedBy + "=" + managedBy + "," + render.LabelApp + "=" + app
}

// ForeignError says that a namespace is not app's to change: it exists
// and Vigil did not create it for app (Missing and Owner say why), or its
// name is reserved (Reserved says why).
type ForeignError struct {
	Namespace string
	App       string
	// Missing is the label (key=value) the namespace lacks to be app's.
	Missing string
	// Owner is who the namespace seems to belong to, from its labels.
	Owner string
	// Reserved is why the namespace's name is reserved (see Reserved).
	Reserved string
}

func (e *ForeignError) Error() string {
	if e.Reserved != "" {
		return fmt.Sprintf("namespace %s is %s: Vigil does not change it", e.Namespace, e.Reserved)
	}
	return fmt.Sprintf("namespace %s exists and is not Vigil's for app %s: it lacks the label %s (%s)",
		e.Namespace, e.App, e.Missing, e.Owner)
}

// Check returns nil when a namespace with labels is app's, and a
// *ForeignError saying why not otherwise.
func Check(namespace, app string, labels map[string]string) error {
	by, of := labels[render.LabelManagedBy], labels[render.LabelApp]
	if by == managedBy && of == app {
		return nil
	}
	e := &ForeignError{Namespace: namespace, App: app}
	switch {
	case by != managedBy:
		e.Missing = render.LabelManagedBy + "=" + managedBy
	default:
		e.Missing = render.LabelApp + "=" + app
	}
	switch {
	case by == managedBy && of != "":
		e.Owner = "it belongs to Vigil's app " + of
	case by != "" && by != managedBy:
		e.Owner = "it is managed by " + by
	default:
		e.Owner = "it seems to belong to someone else: " + describe(labels)
	}
	return e
}

// describe lists labels, but for the one Kubernetes puts on every
// namespace.
func describe(labels map[string]string) string {
	var kv []string
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k == "kubernetes.io/metadata.name" {
			continue
		}
		kv = append(kv, k+"="+labels[k])
	}
	if len(kv) == 0 {
		return "it has no labels"
	}
	return "its labels are " + strings.Join(kv, ", ")
}
