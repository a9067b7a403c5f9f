package console

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"sigs.k8s.io/yaml"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/server"
)

// inhibitRule is a rule as Alertmanager's configuration (and `vigil
// inhibitions get`) writes it.
type inhibitRule struct {
	SourceMatchers []string `json:"source_matchers,omitempty"`
	TargetMatchers []string `json:"target_matchers,omitempty"`
	Equal          []string `json:"equal,omitempty"`
}

// inhibitionsData is the inhibition rules' page.
type inhibitionsData struct {
	*monitorv1.InhibitionRules
	// YAML is the rules in force as the editor shows them.
	YAML string
}

// inhibitionsPage shows the inhibition rules in force and, to those the
// policy lets apply them (admins), the same rules as YAML to edit.
func (c *Console) inhibitionsPage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := monitorv1.NewInhibitionServiceClient(c.opts.Conn).GetInhibitionRules(withToken(r.Context(), s.access), &monitorv1.GetInhibitionRulesRequest{})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	rules := make([]inhibitRule, len(res.GetRules().GetRules()))
	for i, x := range res.GetRules().GetRules() {
		rules[i] = inhibitRule{SourceMatchers: x.GetSourceMatchers(), TargetMatchers: x.GetTargetMatchers(), Equal: x.GetEqual()}
	}
	y, err := yaml.Marshal(map[string][]inhibitRule{"inhibit_rules": rules})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	c.render(w, r, s, "inhibitions", http.StatusOK, inhibitionsData{InhibitionRules: res.GetRules(), YAML: string(y)})
}

// applyInhibitions replaces the rules with the posted YAML, if the
// version the editor started from is still the one in force (the API
// answers a conflict otherwise). The API checks every matcher and names
// the bad one.
func (c *Console) applyInhibitions(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		version, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
		if err != nil {
			return "", "", server.InvalidArgument("invalid rules", server.FieldViolation{Field: "version", Description: "must be a number"})
		}
		rules, err := parseInhibitRules(r.PostFormValue("rules"))
		if err != nil {
			return "", "", server.InvalidArgument("invalid rules", server.FieldViolation{Field: "rules", Description: err.Error()})
		}
		_, err = monitorv1.NewInhibitionServiceClient(c.opts.Conn).ApplyInhibitionRules(ctx, &monitorv1.ApplyInhibitionRulesRequest{Rules: rules, Version: version})
		return "/settings/inhibitions", "done.inhibitions_applied", err
	})
}

// parseInhibitRules reads inhibit_rules from YAML (a whole
// alertmanager.yml will do); a field of a rule it does not know is
// refused rather than dropped.
func parseInhibitRules(text string) ([]*monitorv1.InhibitRule, error) {
	js, err := yaml.YAMLToJSONStrict([]byte(text))
	if err != nil {
		return nil, err
	}
	var top struct {
		InhibitRules json.RawMessage `json:"inhibit_rules"`
	}
	if err := json.Unmarshal(js, &top); err != nil {
		return nil, errors.New("want a mapping with inhibit_rules")
	}
	if top.InhibitRules == nil {
		return nil, errors.New("no inhibit_rules (an empty list removes every rule: inhibit_rules: [])")
	}
	var rules []inhibitRule
	dec := json.NewDecoder(bytes.NewReader(top.InhibitRules))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("inhibit_rules: %w", err)
	}
	out := make([]*monitorv1.InhibitRule, len(rules))
	for i, x := range rules {
		out[i] = &monitorv1.InhibitRule{SourceMatchers: x.SourceMatchers, TargetMatchers: x.TargetMatchers, Equal: x.Equal}
	}
	return out, nil
}
