// Package subject decides what an incident is about — its subject: the
// cluster, namespace, workload and pod — and so whose it is, from an
// alert's labels and from what Vigil knows: its apps and the namespaces
// it made for them, and the namespaces an admin mapped to teams. Labels
// are data a sender chose; where they disagree with what Vigil knows,
// Vigil's knowledge wins and the disagreement is kept for people to see.
//
// The resolution order (docs/adr/0010-incident-subject.md):
//
//  1. The namespace is the alert's `namespace` label. When it is the
//     namespace Vigil made for an app, the app's team owns the subject,
//     whatever `app` label the alert carries.
//  2. Otherwise an admin's mapping of the namespace (for the alert's
//     cluster, or for any cluster) names the team.
//  3. An alert with no namespace whose `app` (or
//     `app_kubernetes_io_name`, `service`) label names one of Vigil's apps
//     is about that app, in its namespace.
//  4. Anything else belongs to no team (admins and the default team reach
//     it).
//
// The workload is the alert's `deployment`, `statefulset`, `daemonset` or
// `job_name` label; else a workload named by its app label (any kind);
// else, in an app's namespace, the app's own. A `pod` label names the
// pod, whose controller is the workload. Labels never move a subject to
// another namespace or team.
package subject

import (
	"fmt"
	"strings"

	"github.com/vigil-ops/vigil/pkg/alertlabel"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// App is one of Vigil's apps as far as subjects go.
type App struct {
	Name, Team, Cluster, Namespace string
}

// Mapping is an admin's: namespace in cluster ("": any) belongs to team.
type Mapping struct {
	Cluster, Namespace, Team string
}

// Index is what Vigil knows, ready to resolve labels against. Build one
// per batch from the apps and mappings the batch's labels mention
// (Names).
type Index struct {
	byNS    map[string][]App
	byName  map[string]App
	mapping map[[2]string]string // {cluster, namespace} → team
}

// NewIndex indexes apps and mappings.
func NewIndex(apps []App, mappings []Mapping) *Index {
	ix := &Index{byNS: map[string][]App{}, byName: map[string]App{}, mapping: map[[2]string]string{}}
	for _, a := range apps {
		ix.byName[a.Name] = a
		if a.Namespace != "" {
			ix.byNS[a.Namespace] = append(ix.byNS[a.Namespace], a)
		}
	}
	for _, m := range mappings {
		ix.mapping[[2]string{m.Cluster, m.Namespace}] = m.Team
	}
	return ix
}

// Labels that name a workload, most specific first, as kube-state-metrics
// and Prometheus' Kubernetes rules put them on alerts. ("job" is left
// out: it is usually the scrape job.)
var workloadLabels = []struct{ label, kind string }{
	{"deployment", "Deployment"},
	{"statefulset", "StatefulSet"},
	{"daemonset", "DaemonSet"},
	{"job_name", "Job"},
}

// Placing are the labels that place a subject, and so its owner; without
// a namespace, the app labels (alertlabel.AppLabels) do. An incident
// groups its alerts by them too, so that it never mixes owners.
var Placing = []string{"cluster", "namespace"}

// Names are the namespaces and app names labels mention: what an Index
// for them must hold.
func Names(labels map[string]string) (namespace string, apps []string) {
	for _, l := range alertlabel.AppLabels {
		if v := labels[l]; v != "" {
			apps = append(apps, v)
		}
	}
	return labels["namespace"], apps
}

// appLabel is the first app label set, and its name.
func appLabel(labels map[string]string) (label, value string) {
	for _, l := range alertlabel.AppLabels {
		if v := labels[l]; v != "" {
			return l, v
		}
	}
	return "", ""
}

// Resolve is the subject of an alert with labels.
func (ix *Index) Resolve(labels map[string]string) *typesv1.Subject {
	s := &typesv1.Subject{Cluster: labels["cluster"], Namespace: labels["namespace"], Pod: labels["pod"]}
	label, named := appLabel(labels)
	var mismatch []string
	switch {
	case s.Namespace != "":
		if a, ok, ambiguous := ix.appOfNamespace(s.Cluster, s.Namespace); ok {
			s.App, s.Team, s.Ownership = a.Name, a.Team, typesv1.Ownership_OWNERSHIP_APP_NAMESPACE
			if s.Cluster == "" {
				s.Cluster = a.Cluster
			}
		} else if ambiguous != "" {
			s.Ownership = typesv1.Ownership_OWNERSHIP_NONE
			mismatch = append(mismatch, ambiguous)
		} else if team, ok := ix.mapped(s.Cluster, s.Namespace); ok {
			s.Team, s.Ownership = team, typesv1.Ownership_OWNERSHIP_NAMESPACE_MAPPING
		} else {
			s.Ownership = typesv1.Ownership_OWNERSHIP_NONE
		}
		if a, ok := ix.byName[named]; ok && named != "" && a.Name != s.App && (a.Namespace != s.Namespace || (s.Cluster != "" && a.Cluster != s.Cluster)) {
			mismatch = append(mismatch, fmt.Sprintf("label %s=%s names app %s (team %s) in namespace %s, but the alert is about namespace %s (%s)",
				label, named, a.Name, orNone(a.Team), a.Namespace, s.Namespace, ownerPhrase(s)))
			// Not believed, not even as a workload's name.
			named = ""
		}
	case named != "":
		a, ok := ix.byName[named]
		if ok && (s.Cluster == "" || s.Cluster == a.Cluster) && a.Namespace != "" {
			s.Cluster, s.Namespace = a.Cluster, a.Namespace
			s.App, s.Team, s.Ownership = a.Name, a.Team, typesv1.Ownership_OWNERSHIP_APP_LABEL
		} else {
			s.Ownership = typesv1.Ownership_OWNERSHIP_NONE
		}
	default:
		s.Ownership = typesv1.Ownership_OWNERSHIP_NONE
	}
	if s.Namespace == "" {
		s.Pod = ""
	} else {
		s.Kind, s.Name = workload(labels, named, s)
	}
	s.Mismatch = strings.Join(mismatch, "; ")
	return s
}

// workload is the subject's workload: a workload label, else named (the
// app label's name, when believed), else the app whose namespace it is.
func workload(labels map[string]string, named string, s *typesv1.Subject) (kind, name string) {
	for _, wl := range workloadLabels {
		if v := labels[wl.label]; v != "" {
			return wl.kind, v
		}
	}
	if named != "" {
		return "", named
	}
	if s.Pod == "" && s.App != "" {
		return "", s.App
	}
	return "", ""
}

// appOfNamespace is the app whose namespace ns is in cluster (any cluster
// when ""). ambiguous says why none was chosen when apps of two clusters
// have that namespace and the alert names no cluster.
func (ix *Index) appOfNamespace(cluster, ns string) (a App, ok bool, ambiguous string) {
	var found []App
	for _, c := range ix.byNS[ns] {
		if cluster == "" || c.Cluster == cluster {
			found = append(found, c)
		}
	}
	switch {
	case len(found) == 1:
		return found[0], true, ""
	case len(found) > 1:
		var names []string
		for _, f := range found {
			names = append(names, fmt.Sprintf("%s (cluster %s, team %s)", f.Name, f.Cluster, orNone(f.Team)))
		}
		return App{}, false, fmt.Sprintf("namespace %s is the namespace of apps %s and the alert names no cluster", ns, strings.Join(names, ", "))
	}
	return App{}, false, ""
}

// mapped is the team an admin mapped namespace ns of cluster to: the
// cluster's own mapping first, then one for any cluster.
func (ix *Index) mapped(cluster, ns string) (string, bool) {
	if cluster != "" {
		if t, ok := ix.mapping[[2]string{cluster, ns}]; ok {
			return t, true
		}
	}
	t, ok := ix.mapping[[2]string{"", ns}]
	return t, ok
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func ownerPhrase(s *typesv1.Subject) string {
	switch {
	case s.GetApp() != "":
		return "app " + s.GetApp() + ", team " + orNone(s.GetTeam())
	case s.GetTeam() != "":
		return "team " + s.GetTeam()
	}
	return "no team"
}
