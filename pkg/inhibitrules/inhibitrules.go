// Package inhibitrules reads and writes Alertmanager's inhibit_rules as
// the API's rules: the document `vigil inhibitions apply -f` and the web
// console's editor take, and `vigil inhibitions get` and the console
// show. A whole alertmanager.yml will do (its other keys are ignored);
// inside a rule an unknown field is refused rather than dropped (a
// misspelt equal would inhibit far more). Monitor checks each matcher,
// field by field, when the rules are applied.
package inhibitrules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"sigs.k8s.io/yaml"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// rule is one inhibit rule as Alertmanager writes it, the deprecated maps
// included.
type rule struct {
	SourceMatchers []string          `json:"source_matchers,omitempty"`
	TargetMatchers []string          `json:"target_matchers,omitempty"`
	Equal          []string          `json:"equal,omitempty"`
	SourceMatch    map[string]string `json:"source_match,omitempty"`
	SourceMatchRE  map[string]string `json:"source_match_re,omitempty"`
	TargetMatch    map[string]string `json:"target_match,omitempty"`
	TargetMatchRE  map[string]string `json:"target_match_re,omitempty"`
}

// Parse reads the inhibit_rules of data (YAML or JSON), the deprecated
// maps (source_match, target_match_re…) written as matchers. A document
// without inhibit_rules is refused: an empty list removes every rule,
// a missing one is more likely a mistake.
func Parse(data []byte) ([]*monitorv1.InhibitRule, error) {
	js, err := yaml.YAMLToJSONStrict(data)
	if err != nil {
		return nil, fmt.Errorf("not YAML: %w", err)
	}
	var top struct {
		InhibitRules json.RawMessage `json:"inhibit_rules"`
	}
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, fmt.Errorf("not a mapping with inhibit_rules: %w", err)
	}
	if top.InhibitRules == nil {
		return nil, errors.New("no inhibit_rules (an empty list removes every rule: inhibit_rules: [])")
	}
	var rules []rule
	dec := json.NewDecoder(bytes.NewReader(top.InhibitRules))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("inhibit_rules: %w", err)
	}
	out := make([]*monitorv1.InhibitRule, len(rules))
	for i, r := range rules {
		out[i] = &monitorv1.InhibitRule{
			SourceMatchers: slices.Concat(r.SourceMatchers, matchersOf(r.SourceMatch, "="), matchersOf(r.SourceMatchRE, "=~")),
			TargetMatchers: slices.Concat(r.TargetMatchers, matchersOf(r.TargetMatch, "="), matchersOf(r.TargetMatchRE, "=~")),
			Equal:          r.Equal,
		}
	}
	return out, nil
}

// Format writes rules as a document Parse reads back.
func Format(rules []*monitorv1.InhibitRule) ([]byte, error) {
	out := make([]rule, len(rules))
	for i, r := range rules {
		out[i] = rule{SourceMatchers: r.GetSourceMatchers(), TargetMatchers: r.GetTargetMatchers(), Equal: r.GetEqual()}
	}
	return yaml.Marshal(map[string][]rule{"inhibit_rules": out})
}

// matchersOf writes a deprecated map as matchers, in name order.
func matchersOf(m map[string]string, op string) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strconv.Quote(n) + op + strconv.Quote(m[n])
	}
	return out
}
