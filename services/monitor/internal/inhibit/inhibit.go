// Package inhibit holds Alertmanager's inhibition rules: while a firing
// alert matches a rule's source_matchers, the alerts that match its
// target_matchers and have the same values of its equal labels are held
// back (stored and shown, but they open no incident). The rules mean here
// what they mean in Alertmanager's inhibit_rules, so a rule is pasted from
// one to the other.
//
// The package is pure: a Set answers, for a firing alert's labels, under
// which keys it is a source and under which keys it is a target. A target
// is inhibited while a firing source shares one of its keys; the monitor
// keeps the sources' keys in its database and looks a chunk's targets up
// there in one statement.
package inhibit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"

	"github.com/vigil-ops/vigil/pkg/matcher"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Errors of changing the rules in force.
var (
	// ErrFromFile: the inhibition file defines the rules; change the file.
	ErrFromFile = errors.New("the inhibition rules are defined by the inhibition file (VIGIL_INHIBIT_FILE): change the file")
	// ErrVersion: the rules changed since the version the change was
	// made from.
	ErrVersion = errors.New("the inhibition rules changed since that version: get them again")
)

// MaxRules bounds a rule set: every firing alert is matched against every
// rule.
const MaxRules = 1000

// Rule is one inhibition rule, with Alertmanager's field names. The
// deprecated maps (source_match, source_match_re, ...) are read as
// Alertmanager reads them: equality and anchored regular expression
// matchers added to the lists.
type Rule struct {
	SourceMatchers []string          `json:"source_matchers,omitempty"`
	TargetMatchers []string          `json:"target_matchers,omitempty"`
	Equal          []string          `json:"equal,omitempty"`
	SourceMatch    map[string]string `json:"source_match,omitempty"`
	SourceMatchRE  map[string]string `json:"source_match_re,omitempty"`
	TargetMatch    map[string]string `json:"target_match,omitempty"`
	TargetMatchRE  map[string]string `json:"target_match_re,omitempty"`
}

// compiled is a rule ready to match.
type compiled struct {
	id       string
	src, tgt []*labels.Matcher
	equal    []string
}

// Set is a compiled rule set. The zero Set, and nil, have no rules.
type Set struct {
	rules []compiled
	ids   []string
}

// Compile checks rules and compiles them. Every problem is reported at
// once, as a *server.BadRequestError with fields named as in the file
// ("inhibit_rules[0].source_matchers[1]").
func Compile(rules []Rule) (*Set, error) {
	var bad server.BadRequestError
	if len(rules) > MaxRules {
		bad.Addf("inhibit_rules", "at most %d rules", MaxRules)
		return nil, bad.Err("invalid inhibition rules")
	}
	s := &Set{}
	seen := map[string]int{}
	for i, r := range rules {
		at := fmt.Sprintf("inhibit_rules[%d].", i)
		src := side(&bad, at+"source_matchers", r.SourceMatchers, r.SourceMatch, r.SourceMatchRE)
		tgt := side(&bad, at+"target_matchers", r.TargetMatchers, r.TargetMatch, r.TargetMatchRE)
		equal := make([]string, 0, len(r.Equal))
		for j, l := range r.Equal {
			if !model.UTF8Validation.IsValidLabelName(l) {
				bad.Addf(fmt.Sprintf("%sequal[%d]", at, j), "%q is not a label name", l)
				continue
			}
			if !slices.Contains(equal, l) {
				equal = append(equal, l)
			}
		}
		if src == nil || tgt == nil {
			continue
		}
		// Sorted: the order the labels are written in changes neither the
		// rule nor its keys.
		slices.Sort(equal)
		c := compiled{src: src, tgt: tgt, equal: equal}
		c.id = ruleID(c)
		if j, dup := seen[c.id]; dup {
			bad.Addf(at[:len(at)-1], "the same rule as inhibit_rules[%d]", j)
			continue
		}
		seen[c.id] = i
		s.rules = append(s.rules, c)
		s.ids = append(s.ids, c.id)
	}
	if err := bad.Err("invalid inhibition rules"); err != nil {
		return nil, err
	}
	return s, nil
}

// side reads one side's matchers: the list, then the deprecated maps. A
// side without any is refused: it would match every alert.
func side(bad *server.BadRequestError, field string, list []string, eq, re map[string]string) []*labels.Matcher {
	ms, err := matcher.Parse(list)
	if err != nil {
		if merr := (*matcher.Error)(nil); errors.As(err, &merr) {
			bad.Addf(fmt.Sprintf("%s[%d]", field, merr.Index), "%v", merr.Err)
		} else {
			bad.Add(field, err.Error())
		}
		return nil
	}
	for _, dep := range []struct {
		suffix string
		op     labels.MatchType
		m      map[string]string
	}{{"_match", labels.MatchEqual, eq}, {"_match_re", labels.MatchRegexp, re}} {
		for _, name := range sortedKeys(dep.m) {
			at := strings.Replace(field, "_matchers", dep.suffix, 1) + "." + name
			if !model.UTF8Validation.IsValidLabelName(name) {
				bad.Addf(at, "%q is not a label name", name)
				return nil
			}
			m, err := labels.NewMatcher(dep.op, name, dep.m[name])
			if err != nil {
				bad.Addf(at, "not a regular expression: %v", err)
				return nil
			}
			ms = append(ms, m)
		}
	}
	if len(ms) == 0 {
		bad.Add(field, "no matcher: a rule without one would match every alert")
		return nil
	}
	return ms
}

func sortedKeys(m map[string]string) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// ruleID names a rule by what it means, whatever its place in the list or
// how its matchers were written: the same rule keeps its id across files,
// the API and restarts, and so the keys of its firing sources stay valid.
func ruleID(c compiled) string {
	h := sha256.New()
	for _, side := range [][]*labels.Matcher{c.src, c.tgt} {
		ss := make([]string, len(side))
		for i, m := range side {
			ss[i] = m.String()
		}
		slices.Sort(ss)
		_, _ = fmt.Fprintf(h, "%q\x00", ss)
	}
	_, _ = fmt.Fprintf(h, "%q", c.equal)
	return hex.EncodeToString(h.Sum(nil)[:6])
}

// Len is how many rules s has.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.rules)
}

// IDs are the rules' ids, in the order given.
func (s *Set) IDs() []string {
	if s == nil {
		return nil
	}
	return s.ids
}

// Match is an alert's part in one rule: the key its counterparts must
// share (the rule and the values of its equal labels), and whether the
// alert also matches the rule's other side.
type Match struct {
	// Key is the rule's id, a colon, and a digest of the equal labels'
	// values (a missing label has the empty value, as in Alertmanager: two
	// alerts that both lack it are equal).
	Key string
	// Rule is the rule's id.
	Rule string
	// Both: the alert matches the rule's source and target matchers. In
	// Alertmanager such an alert does not inhibit itself, nor another
	// that matches both: a source that is Both does not inhibit a target
	// that is Both.
	Both bool
}

// Sources are the rules whose source_matchers lset matches.
func (s *Set) Sources(lset map[string]string) []Match {
	return s.matches(lset, true)
}

// Targets are the rules whose target_matchers lset matches: lset is
// inhibited while a firing source has one of their keys (and is not Both
// when the target is).
func (s *Set) Targets(lset map[string]string) []Match {
	return s.matches(lset, false)
}

func (s *Set) matches(lset map[string]string, source bool) []Match {
	if s == nil {
		return nil
	}
	var out []Match
	for i := range s.rules {
		r := &s.rules[i]
		this, other := r.tgt, r.src
		if source {
			this, other = r.src, r.tgt
		}
		if !matcher.Matches(this, lset) {
			continue
		}
		out = append(out, Match{Key: r.key(lset), Rule: r.id, Both: matcher.Matches(other, lset)})
	}
	return out
}

func (r *compiled) key(lset map[string]string) string {
	// FNV, not a cryptographic digest: whoever could craft a collision
	// can send an alert with the very labels instead.
	h := fnv.New128a()
	for _, l := range r.equal {
		_, _ = h.Write([]byte(lset[l]))
		_, _ = h.Write([]byte{0xff}) // never in UTF-8
	}
	var sum [16]byte
	return r.id + ":" + hex.EncodeToString(h.Sum(sum[:0]))
}

// Inhibits reports whether a firing source s holds back target t under
// the same key: the self-exclusion of Alertmanager's two-sided matches.
func Inhibits(source, target Match) bool {
	return source.Key == target.Key && (!source.Both || !target.Both)
}

// Canonical are the rules as compiled, in order: the deprecated maps
// folded into the matcher lists, each matcher written as Alertmanager
// writes it, the equal labels sorted. Canonical rules compile to the same
// set.
func (s *Set) Canonical() []Rule {
	if s == nil {
		return nil
	}
	out := make([]Rule, len(s.rules))
	for i, r := range s.rules {
		out[i] = Rule{SourceMatchers: strs(r.src), TargetMatchers: strs(r.tgt), Equal: slices.Clone(r.equal)}
	}
	return out
}

func strs(ms []*labels.Matcher) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.String()
	}
	return out
}
