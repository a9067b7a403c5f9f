package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

func inhibitionsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use: "inhibitions", Aliases: []string{"inhibition", "inhibit"},
		Short: "Inhibition rules (Alertmanager's inhibit_rules): show and apply them",
		Long: `While a firing alert matches a rule's source_matchers, alerts matching its
target_matchers with the same values of its equal labels are held back: stored
and listed (vigil alerts list), but they open no incident and nobody hears of
them until the source resolves. The rules are applied whole and versioned; see
docs/noise.md#inhibition.`,
	}
	c.register(cmd)
	cmd.AddCommand(inhibitionsGet(&c), inhibitionsApply(&c))
	return cmd
}

// inhibitRule is a rule as Alertmanager's configuration writes it.
type inhibitRule struct {
	SourceMatchers []string          `json:"source_matchers,omitempty"`
	TargetMatchers []string          `json:"target_matchers,omitempty"`
	Equal          []string          `json:"equal,omitempty"`
	SourceMatch    map[string]string `json:"source_match,omitempty"`
	SourceMatchRE  map[string]string `json:"source_match_re,omitempty"`
	TargetMatch    map[string]string `json:"target_match,omitempty"`
	TargetMatchRE  map[string]string `json:"target_match_re,omitempty"`
}

func inhibitionsGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get", Short: "Show the rules in force (YAML that `inhibitions apply -f` takes back)", Args: cobra.NoArgs,
		Example: `  vigil inhibitions get > inhibit.yml`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, monitorv1.NewInhibitionServiceClient, func(ctx context.Context, cl monitorv1.InhibitionServiceClient) (proto.Message, error) {
				return cl.GetInhibitionRules(ctx, &monitorv1.GetInhibitionRulesRequest{})
			}, func(w io.Writer, m proto.Message) {
				printInhibitions(w, m.(*monitorv1.GetInhibitionRulesResponse).GetRules())
			})
		},
	}
}

func printInhibitions(w io.Writer, r *monitorv1.InhibitionRules) {
	if r.GetVersion() == 0 {
		fmt.Fprintln(w, "# No inhibition rules applied.")
		return
	}
	fmt.Fprintf(w, "# Version %d, applied by %s at %s.\n", r.GetVersion(), r.GetUpdatedBy(), when(r.GetUpdatedAt()))
	if r.GetFromFile() {
		fmt.Fprintln(w, "# From the inhibition file (VIGIL_INHIBIT_FILE): change the file, not the API.")
	}
	rules := make([]inhibitRule, len(r.GetRules()))
	for i, x := range r.GetRules() {
		fmt.Fprintf(w, "# inhibit_rules[%d] is rule %s.\n", i, x.GetId())
		rules[i] = inhibitRule{SourceMatchers: x.GetSourceMatchers(), TargetMatchers: x.GetTargetMatchers(), Equal: x.GetEqual()}
	}
	y, err := yaml.Marshal(map[string][]inhibitRule{"inhibit_rules": rules})
	if err == nil {
		_, err = w.Write(y)
	}
	if err != nil {
		fmt.Fprintf(w, "# cannot show the rules: %v\n", err)
	}
}

func inhibitionsApply(c *clientFlags) *cobra.Command {
	var (
		file    string
		version int64
	)
	cmd := &cobra.Command{
		Use: "apply -f FILE", Short: "Replace the rules with FILE's inhibit_rules (YAML, as in alertmanager.yml; - for stdin)", Args: cobra.NoArgs,
		Example: `  vigil inhibitions apply -f alertmanager.yml
  vigil inhibitions get > inhibit.yml && $EDITOR inhibit.yml && vigil inhibitions apply -f inhibit.yml --version 3`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readFileOrStdin(cmd, file)
			if err != nil {
				return err
			}
			rules, err := parseInhibitRules(data)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			return call(cmd.Context(), c, monitorv1.NewInhibitionServiceClient, func(ctx context.Context, cl monitorv1.InhibitionServiceClient) (proto.Message, error) {
				v := version
				if !cmd.Flags().Changed("version") {
					cur, err := cl.GetInhibitionRules(ctx, &monitorv1.GetInhibitionRulesRequest{})
					if err != nil {
						return nil, err
					}
					v = cur.GetRules().GetVersion()
				}
				return cl.ApplyInhibitionRules(ctx, &monitorv1.ApplyInhibitionRulesRequest{Rules: rules, Version: v})
			}, func(w io.Writer, m proto.Message) {
				r := m.(*monitorv1.ApplyInhibitionRulesResponse).GetRules()
				fmt.Fprintf(w, "Applied %d inhibition rules, version %d.\n", len(r.GetRules()), r.GetVersion())
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML with inhibit_rules (an alertmanager.yml will do; - for stdin)")
	cmd.Flags().Int64Var(&version, "version", 0, "the version FILE replaces: refused if another was applied since (default: the one in force)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

// parseInhibitRules reads inhibit_rules from YAML, the deprecated maps
// written as matchers (monitor checks the rest, field by field).
func parseInhibitRules(data []byte) ([]*monitorv1.InhibitRule, error) {
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
	var rules []inhibitRule
	dec := json.NewDecoder(bytes.NewReader(top.InhibitRules))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rules); err != nil {
		return nil, fmt.Errorf("inhibit_rules: %w", err)
	}
	out := make([]*monitorv1.InhibitRule, len(rules))
	for i, r := range rules {
		out[i] = &monitorv1.InhibitRule{
			SourceMatchers: append(slices.Clone(r.SourceMatchers), matchersOf(r.SourceMatch, "=")...),
			TargetMatchers: append(slices.Clone(r.TargetMatchers), matchersOf(r.TargetMatch, "=")...),
			Equal:          r.Equal,
		}
		out[i].SourceMatchers = append(out[i].SourceMatchers, matchersOf(r.SourceMatchRE, "=~")...)
		out[i].TargetMatchers = append(out[i].TargetMatchers, matchersOf(r.TargetMatchRE, "=~")...)
	}
	return out, nil
}

// matchersOf writes a deprecated match map as matchers, in name order.
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
