// Package priority says how urgent an incident is: P0 to P3, from its
// severity and ordered rules (Alertmanager matchers on its first alert's
// labels, its subject's app, team and namespace), and how soon a person
// should acknowledge it (its response target). It is pure: monitor stores
// the rules and asks Of when an incident opens or its severity rises.
package priority

import (
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/matcher"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Rule sets Priority for the incidents it matches: every field set must.
type Rule struct {
	Matchers             []string
	App, Team, Namespace string
	Priority             typesv1.Priority
}

// Rules are the priority rules, in order (the first match wins), and the
// response target of each priority.
type Rules struct {
	Rules []Rule
	// Targets replace DefaultTargets when set; a priority missing from
	// them has none (it does not escalate).
	Targets map[typesv1.Priority]time.Duration
}

// DefaultTargets are the seeds' SLA: P0 5 minutes, P1 15, P2 an hour, P3
// none.
var DefaultTargets = map[typesv1.Priority]time.Duration{
	typesv1.Priority_PRIORITY_P0: 5 * time.Minute,
	typesv1.Priority_PRIORITY_P1: 15 * time.Minute,
	typesv1.Priority_PRIORITY_P2: time.Hour,
}

// maxTarget bounds a response target: a week catches a typo.
const maxTarget = 7 * 24 * time.Hour

// Incident is what the rules look at.
type Incident struct {
	Severity typesv1.Severity
	// Labels are its first alert's.
	Labels               map[string]string
	App, Team, Namespace string
}

// Set is Rules compiled: Validate's work done once.
type Set struct {
	rules   []rule
	targets map[typesv1.Priority]time.Duration
}

type rule struct {
	Rule
	ms []*labels.Matcher
}

// Compile validates rs and readies it; the error is a
// *server.BadRequestError naming every bad field ("rules[1].matchers[0]").
func Compile(rs Rules) (*Set, error) {
	var bad server.BadRequestError
	s := &Set{targets: DefaultTargets}
	for i, r := range rs.Rules {
		f := func(name string) string { return fmt.Sprintf("rules[%d].%s", i, name) }
		ms, err := matcher.Parse(r.Matchers)
		if err != nil {
			var perr *matcher.Error
			if errors.As(err, &perr) {
				bad.Add(f(fmt.Sprintf("matchers[%d]", perr.Index)), perr.Err.Error())
			} else {
				bad.Add(f("matchers"), err.Error())
			}
		}
		if !Valid(r.Priority) {
			bad.Addf(f("priority"), "must be P0, P1, P2 or P3, got %s", r.Priority)
		}
		if len(r.Matchers) == 0 && r.App == "" && r.Team == "" && r.Namespace == "" {
			bad.Add(f("matchers"), "a rule needs matchers, an app, a team or a namespace (one that matches every incident hides the rules after it)")
		}
		s.rules = append(s.rules, rule{Rule: r, ms: ms})
	}
	if rs.Targets != nil {
		s.targets = make(map[typesv1.Priority]time.Duration, len(rs.Targets))
		for p, d := range rs.Targets {
			switch {
			case !Valid(p):
				bad.Addf("targets", "priority must be P0, P1, P2 or P3, got %s", p)
			case d <= 0 || d > maxTarget:
				bad.Addf(fmt.Sprintf("targets[%s]", Name(p)), "must be more than 0 and at most %s, got %s", maxTarget, d)
			}
			s.targets[p] = d
		}
	}
	if err := bad.Err("invalid priority rules"); err != nil {
		return nil, err
	}
	return s, nil
}

// Of is the priority of inc: the first rule that matches it, else its
// severity's (critical P1, warning P2, info or none P3). P0 comes only from
// a rule or a person: no alert alone stops everything.
func (s *Set) Of(inc Incident) typesv1.Priority {
	for _, r := range s.rules {
		if r.App != "" && r.App != inc.App || r.Team != "" && r.Team != inc.Team ||
			r.Namespace != "" && r.Namespace != inc.Namespace || !matcher.Matches(r.ms, inc.Labels) {
			continue
		}
		return r.Priority
	}
	switch inc.Severity {
	case typesv1.Severity_SEVERITY_CRITICAL:
		return typesv1.Priority_PRIORITY_P1
	case typesv1.Severity_SEVERITY_WARNING:
		return typesv1.Priority_PRIORITY_P2
	}
	return typesv1.Priority_PRIORITY_P3
}

// Target is the response target of p, and false when it has none.
func (s *Set) Target(p typesv1.Priority) (time.Duration, bool) {
	d, ok := s.targets[p]
	return d, ok
}

// Higher reports whether a is more urgent than b (P0 is the most urgent;
// unset is the least).
func Higher(a, b typesv1.Priority) bool {
	if !Valid(a) {
		return false
	}
	return !Valid(b) || a < b
}

// Valid reports whether p is one of P0 to P3.
func Valid(p typesv1.Priority) bool {
	return p >= typesv1.Priority_PRIORITY_P0 && p <= typesv1.Priority_PRIORITY_P3
}

// Name is "P0" to "P3" ("" for unset).
func Name(p typesv1.Priority) string {
	if !Valid(p) {
		return ""
	}
	return fmt.Sprintf("P%d", int(p)-1)
}

// Parse reads "P0" to "P3" (or "p1").
func Parse(s string) (typesv1.Priority, error) {
	if len(s) == 2 && (s[0] == 'P' || s[0] == 'p') && s[1] >= '0' && s[1] <= '3' {
		return typesv1.Priority(s[1]-'0') + typesv1.Priority_PRIORITY_P0, nil
	}
	return 0, fmt.Errorf("priority must be P0, P1, P2 or P3, got %q", s)
}
