// Package redact cleans text before it leaves the house for an LLM:
// secrets (tokens, passwords, keys, JWTs, connection strings with
// credentials) become [REDACTED:secret], emails and IP addresses become
// numbered placeholders ([EMAIL-1], [IP-1]) that stay consistent within one
// analysis, and, optionally, resource names (namespaces, workloads, pods,
// containers, nodes, clusters) become pseudonyms (ns-1, workload-1, ...)
// that Restore maps back in the model's answer.
//
// A Redactor holds the placeholders of one analysis: make a new one for
// each. It is not safe for concurrent use.
package redact

import (
	"fmt"
	"regexp"
	"sort"
	"strings"
)

// Secret is what a secret is replaced with.
const Secret = "[REDACTED:secret]"

// Kind is a kind of resource name that can be pseudonymised.
type Kind string

// The kinds of names, each with the prefix of its pseudonyms.
const (
	Cluster   Kind = "cluster"
	Namespace Kind = "ns"
	Workload  Kind = "workload"
	Pod       Kind = "pod"
	Container Kind = "container"
	Node      Kind = "node"
)

// Options configures a Redactor.
type Options struct {
	// Pseudonymise replaces resource names given to Name with pseudonyms,
	// in Name's result and wherever they appear in Text.
	Pseudonymise bool
	// Secrets are literal values always redacted (values of Secrets and
	// of secret environment variables the gatherers saw). Values shorter
	// than 4 bytes are ignored: they would redact half of every text.
	Secrets []string
}

// Redactor redacts the text of one analysis.
type Redactor struct {
	opts    Options
	secrets []string

	emails map[string]string
	ips    map[string]string

	names   map[Kind]map[string]string // kind -> real -> pseudonym
	reverse map[string]string          // pseudonym -> real
	counts  map[Kind]int
	// byLength is every real name, longest first, for replacement in text.
	byLength []string
	nameOf   map[string]string // real -> pseudonym, any kind (first kind wins)
}

// New returns a Redactor for one analysis.
func New(opts Options) *Redactor {
	r := &Redactor{
		opts:    opts,
		emails:  map[string]string{},
		ips:     map[string]string{},
		names:   map[Kind]map[string]string{},
		reverse: map[string]string{},
		counts:  map[Kind]int{},
		nameOf:  map[string]string{},
	}
	for _, s := range opts.Secrets {
		if len(s) >= 4 {
			r.secrets = append(r.secrets, s)
		}
	}
	// Longest first, so a secret containing another is redacted whole.
	sort.Slice(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	return r
}

// Name returns the pseudonym of a resource name of the given kind,
// registering it so that Text replaces it in free text and Restore maps
// it back. Without Options.Pseudonymise it returns name unchanged (after
// Text: a name could still hold an email or an address).
func (r *Redactor) Name(kind Kind, name string) string {
	if name == "" {
		return ""
	}
	if !r.opts.Pseudonymise {
		return r.Text(name)
	}
	byName := r.names[kind]
	if byName == nil {
		byName = map[string]string{}
		r.names[kind] = byName
	}
	if p, ok := byName[name]; ok {
		return p
	}
	r.counts[kind]++
	p := fmt.Sprintf("%s-%d", kind, r.counts[kind])
	byName[name] = p
	r.reverse[p] = name
	if _, ok := r.nameOf[name]; !ok {
		r.nameOf[name] = p
		r.byLength = append(r.byLength, name)
		sort.SliceStable(r.byLength, func(i, j int) bool { return len(r.byLength[i]) > len(r.byLength[j]) })
	}
	return p
}

// Text redacts secrets, emails and IP addresses in s and, when
// pseudonymising, replaces the names registered so far.
func (r *Redactor) Text(s string) string {
	if s == "" {
		return s
	}
	s = r.redactSecrets(s)
	s = emailRE.ReplaceAllStringFunc(s, func(m string) string {
		return placeholder(r.emails, "EMAIL", strings.ToLower(m))
	})
	s = r.redactIPs(s)
	if r.opts.Pseudonymise {
		s = r.replaceNames(s)
	}
	return s
}

// Restore maps the pseudonyms in a model's text back to the real names.
// Placeholders of secrets, emails and addresses stay as they are: what
// was redacted never comes back.
func (r *Redactor) Restore(s string) string {
	if len(r.reverse) == 0 || s == "" {
		return s
	}
	return pseudonymRE.ReplaceAllStringFunc(s, func(m string) string {
		if name, ok := r.reverse[m]; ok {
			return name
		}
		return m
	})
}

// RestoreName maps one pseudonym back to its real name; a string that is
// not a pseudonym of this analysis is returned unchanged (and a check
// downstream refuses a target that is not the incident's).
func (r *Redactor) RestoreName(s string) string {
	if name, ok := r.reverse[s]; ok {
		return name
	}
	return s
}

func placeholder(m map[string]string, kind, key string) string {
	if p, ok := m[key]; ok {
		return p
	}
	p := fmt.Sprintf("[%s-%d]", kind, len(m)+1)
	m[key] = p
	return p
}

// pseudonymRE finds candidate pseudonyms; Restore keeps those it knows.
var pseudonymRE = regexp.MustCompile(`\b(?:cluster|ns|workload|pod|container|node)-[0-9]+\b`)

// replaceNames replaces whole-token occurrences of registered names,
// longest first, in one pass over s so a pseudonym is never replaced
// again.
func (r *Redactor) replaceNames(s string) string {
	if len(r.byLength) == 0 {
		return s
	}
	var b strings.Builder
	i := 0
	last := 0
	for i < len(s) {
		if i > 0 && isNameByte(s[i-1]) {
			i++
			continue
		}
		matched := ""
		for _, name := range r.byLength {
			if strings.HasPrefix(s[i:], name) {
				end := i + len(name)
				if end == len(s) || !isNameByte(s[end]) {
					matched = name
					break
				}
			}
		}
		if matched == "" {
			i++
			continue
		}
		b.WriteString(s[last:i])
		b.WriteString(r.nameOf[matched])
		i += len(matched)
		last = i
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// isNameByte is a byte that can continue a Kubernetes name: a name
// adjacent to one of these is part of a longer word, not the name.
func isNameByte(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
