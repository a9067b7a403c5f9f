// Package route decides which channels hear about what: a tree of routes
// with Alertmanager's semantics where they fit. An event (an incident's
// opening, its analysis, a repair's outcome, a deploy) matches a route by
// the incident's owning team, app, namespace, priority, severity, labels
// (Alertmanager matchers) and the event's kind; the root matches
// everything; children are tried in order and the first that matches
// wins unless it says continue; a route that matches and none of whose
// children do is where the event goes, to its receivers (channel names).
//
// The package is pure: it compiles a routing document (the API's and the
// file's shape, notifyv1.RoutingConfig) into a Tree and answers Match;
// where the document lives and how channels are reached is notify's.
package route

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vigil-ops/vigil/pkg/matcher"
)

// Kind is what an event is about, as routes name it.
type Kind string

// The kinds of events notify announces.
const (
	IncidentOpened    Kind = "incident.opened"
	IncidentUpdated   Kind = "incident.updated"
	IncidentResolved  Kind = "incident.resolved"
	IncidentEscalated Kind = "incident.escalated"
	Analysis          Kind = "analysis.completed"
	ApprovalCard      Kind = "repair.approval_requested"
	RepairRequested   Kind = "repair.requested"
	RepairSucceeded   Kind = "repair.succeeded"
	RepairFailed      Kind = "repair.failed"
	RepairBlocked     Kind = "repair.blocked"
	RepairDecided     Kind = "repair.decided"
	DeployStarted     Kind = "deploy.started"
	DeploySucceeded   Kind = "deploy.succeeded"
	DeployFailed      Kind = "deploy.failed"
	DeployRolledBack  Kind = "deploy.rolled_back"
)

// Kinds are every kind a route may name, in the order docs list them.
var Kinds = []Kind{
	IncidentOpened, IncidentUpdated, IncidentResolved, IncidentEscalated, Analysis,
	ApprovalCard, RepairRequested, RepairSucceeded, RepairFailed, RepairBlocked, RepairDecided,
	DeployStarted, DeploySucceeded, DeployFailed, DeployRolledBack,
}

// KindOf is the kind of an event published on subject: the subject itself,
// but for a deploy's start, which the bus calls deploy.requested.
func KindOf(subject string) Kind {
	if subject == "deploy.requested" {
		return DeployStarted
	}
	return Kind(subject)
}

// family is the part of k before its dot: "repair" for repair.failed.
func (k Kind) family() string {
	f, _, _ := strings.Cut(string(k), ".")
	return f
}

// Event is what routes look at.
type Event struct {
	Kind Kind
	// Team, App and Namespace are the incident's (the deploy's app), from
	// its subject as monitor resolved it: a label cannot claim them.
	Team, App, Namespace string
	// Priority is P0..P3, "" when unknown; Severity critical, warning or
	// info, "" when unknown.
	Priority, Severity string
	// Labels are the incident's group labels over its first alert's.
	Labels map[string]string
}

// Tree is a compiled routing document. The nil Tree routes nothing: no
// routes were applied.
type Tree struct {
	root *node
}

// node is a route of the tree, with what it inherits already resolved.
type node struct {
	path, name                                      string
	receivers                                       []string
	teams, apps, namespaces, priorities, severities []string
	kinds                                           []Kind
	matchers                                        []*labels.Matcher
	cont                                            bool
	repeat                                          time.Duration
	language, timeZone, templates                   string
	children                                        []*node
}

// Match is a route an event goes to.
type Match struct {
	// Path is where the route sits: route, route.routes[0], ...
	Path string
	Name string
	// Receivers are channel names.
	Receivers []string
	// Why lists the conditions the event met on the way here, the root's
	// "default route" when no child matched.
	Why []string
	// RepeatInterval is how often an incident still firing is announced
	// again here (0: never).
	RepeatInterval time.Duration
	// Language and TimeZone override the channel's for messages sent
	// through this route ("" keeps the channel's).
	Language, TimeZone string
	// Templates names the template set of messages sent through this
	// route ("" keeps the channel's).
	Templates string
}

// Match is where e goes: every route it ends at, in the tree's order.
// The root is one when none of its children matched.
func (t *Tree) Match(e Event) []Match {
	if t == nil || t.root == nil {
		return nil
	}
	out := t.root.match(e, nil)
	if len(out) == 0 {
		out = []Match{t.root.result([]string{"default route"})}
	}
	return out
}

// Receivers are the channel names of ms, each once, in order.
func Receivers(ms []Match) []string {
	var out []string
	for _, m := range ms {
		for _, r := range m.Receivers {
			if !slices.Contains(out, r) {
				out = append(out, r)
			}
		}
	}
	return out
}

// match is where e goes under n, which e matched with why: the children's
// matches, or n itself when no child matched. The root calls it with its
// children only, so that "default route" is said once.
func (n *node) match(e Event, why []string) []Match {
	var out []Match
	for _, c := range n.children {
		cw, ok := c.matches(e)
		if !ok {
			continue
		}
		w := append(slices.Clip(why), cw...)
		out = append(out, c.match(e, w)...)
		if !c.cont {
			break
		}
	}
	if len(out) == 0 && why != nil {
		return []Match{n.result(why)}
	}
	return out
}

func (n *node) result(why []string) Match {
	return Match{
		Path: n.path, Name: n.name, Receivers: n.receivers, Why: why,
		RepeatInterval: n.repeat, Language: n.language, TimeZone: n.timeZone, Templates: n.templates,
	}
}

// matches says whether e meets every condition of n, and which.
func (n *node) matches(e Event) ([]string, bool) {
	why := []string{}
	for _, c := range []struct {
		field, value string
		want         []string
	}{
		{"team", e.Team, n.teams},
		{"app", e.App, n.apps},
		{"namespace", e.Namespace, n.namespaces},
		{"priority", e.Priority, n.priorities},
		{"severity", e.Severity, n.severities},
	} {
		if len(c.want) == 0 {
			continue
		}
		// An unknown value ("") matches no list: a route for P1 is not
		// for an incident whose priority nobody set.
		if c.value == "" || !slices.Contains(c.want, c.value) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("%s is %s", c.field, c.value))
	}
	if len(n.kinds) > 0 {
		if !slices.ContainsFunc(n.kinds, func(k Kind) bool { return k == e.Kind || k == Kind(e.Kind.family()+".*") }) {
			return nil, false
		}
		why = append(why, fmt.Sprintf("kind is %s", e.Kind))
	}
	if len(n.matchers) > 0 {
		if !matcher.Matches(n.matchers, e.Labels) {
			return nil, false
		}
		for _, m := range n.matchers {
			why = append(why, "labels match "+m.String())
		}
	}
	if len(why) == 0 {
		why = append(why, "matches everything")
	}
	return why, true
}

// ErrFileInCharge refuses an apply through the API while the routing
// file is in charge: the file wins, the GitOps way.
var ErrFileInCharge = errors.New("routes come from VIGIL_ROUTES_FILE: change the file and send notify SIGHUP (or restart it), or unset VIGIL_ROUTES_FILE to apply routes through the API")
