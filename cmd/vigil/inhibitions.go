package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/inhibitrules"
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
	for i, x := range r.GetRules() {
		fmt.Fprintf(w, "# inhibit_rules[%d] is rule %s.\n", i, x.GetId())
	}
	y, err := inhibitrules.Format(r.GetRules())
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
			rules, err := inhibitrules.Parse(data)
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
