package main

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
)

func playbooksCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "playbooks", Aliases: []string{"playbook"}, Short: "What Vigil learned from its repairs"}
	c.register(cmd)
	list := &cobra.Command{
		Use: "list", Short: "List each action's record on each kind of incident", Args: cobra.NoArgs,
		Long: `List how often each repair action worked on each kind of incident
(alert name and workload kind), and the confidence that record supports.
A record of fewer than 3 outcomes does not count yet: its confidence is -.`,
		Example: `  vigil playbooks list
  vigil playbooks list -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), &c, analysisv1.NewAnalysisServiceClient, func(ctx context.Context, cl analysisv1.AnalysisServiceClient) (proto.Message, error) {
				return cl.ListPlaybooks(ctx, &analysisv1.ListPlaybooksRequest{})
			}, func(w io.Writer, m proto.Message) {
				printPlaybooks(w, m.(*analysisv1.ListPlaybooksResponse).GetPlaybooks())
			})
		},
	}
	cmd.AddCommand(list)
	return cmd
}

func printPlaybooks(w io.Writer, ps []*analysisv1.Playbook) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SIGNATURE\tACTION\tSUCCEEDED\tFAILED\tCONFIDENCE\tLAST OUTCOME")
	for _, p := range ps {
		conf := "-"
		if p.GetConfidence() > 0 {
			conf = fmt.Sprintf("%.2f", p.GetConfidence())
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\t%s\n", p.GetSignature(), short(p.GetAction().String(), "REPAIR_ACTION_"),
			p.GetSuccesses(), p.GetFailures(), conf, when(p.GetLastOutcomeTime()))
	}
	_ = tw.Flush()
}
