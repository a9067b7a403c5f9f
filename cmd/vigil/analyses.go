package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func analysesCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "analyses", Aliases: []string{"analysis"}, Short: "What Vigil concluded about incidents"}
	c.register(cmd)
	var (
		incident, pageToken string
		limit               int32
	)
	list := &cobra.Command{
		Use: "list", Short: "List analyses, newest first", Args: cobra.NoArgs,
		Example: `  vigil analyses list
  vigil analyses list --incident 01a20236-f568-7af1-9546-d3f52f62c45a`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), &c, analysisv1.NewAnalysisServiceClient, func(ctx context.Context, cl analysisv1.AnalysisServiceClient) (proto.Message, error) {
				return cl.ListAnalyses(ctx, &analysisv1.ListAnalysesRequest{IncidentId: incident, PageSize: limit, PageToken: pageToken})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*analysisv1.ListAnalysesResponse)
				printAnalyses(w, resp.GetAnalyses())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	list.Flags().StringVar(&incident, "incident", "", "only the analyses of this incident")
	list.Flags().Int32Var(&limit, "limit", 50, "how many (at most 500)")
	list.Flags().StringVar(&pageToken, "page-token", "", "the next page, from a previous list")
	get := &cobra.Command{
		Use: "get ID", Short: "Show an analysis: cause, evidence, proposal, confidence, risk", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, analysisv1.NewAnalysisServiceClient, func(ctx context.Context, cl analysisv1.AnalysisServiceClient) (proto.Message, error) {
				return cl.GetAnalysis(ctx, &analysisv1.GetAnalysisRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) {
				printAnalysis(w, m.(*analysisv1.GetAnalysisResponse).GetAnalysis())
			})
		},
	}
	cmd.AddCommand(list, get)
	return cmd
}

// analyzeCommand is `vigil incidents analyze ID [--engine E]`.
func analyzeCommand(c *clientFlags) *cobra.Command {
	var engine string
	cmd := &cobra.Command{
		Use: "analyze ID", Short: "Analyse an incident now (again), and show the result", Args: cobra.ExactArgs(1),
		Example: `  vigil incidents analyze 01a20236-f568-7af1-9546-d3f52f62c45a
  vigil incidents analyze 01a20236-f568-7af1-9546-d3f52f62c45a --engine rules`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, analysisv1.NewAnalysisServiceClient, func(ctx context.Context, cl analysisv1.AnalysisServiceClient) (proto.Message, error) {
				return cl.AnalyzeIncident(ctx, &analysisv1.AnalyzeIncidentRequest{IncidentId: args[0], Engine: engine})
			}, func(w io.Writer, m proto.Message) {
				printAnalysis(w, m.(*analysisv1.AnalyzeIncidentResponse).GetAnalysis())
			})
		},
	}
	cmd.Flags().StringVar(&engine, "engine", "", "try this engine first: rules, ollama, openai, anthropic, gemini (rules always ends the chain)")
	return cmd
}

func target(r *typesv1.ResourceRef) string {
	if r.GetName() == "" {
		return "-"
	}
	s := r.GetNamespace() + "/" + strings.ToLower(r.GetKind()) + "/" + r.GetName()
	if r.GetCluster() != "" {
		s = r.GetCluster() + ":" + s
	}
	return s
}

func action(p *typesv1.RepairProposal) string {
	a := short(p.GetAction().String(), "REPAIR_ACTION_")
	switch {
	case p.GetScale() != nil:
		a += fmt.Sprintf(" to %d replicas", p.GetScale().GetReplicas())
	case p.GetMemoryLimit() != nil:
		a += fmt.Sprintf(" of %s to %d MiB", p.GetMemoryLimit().GetContainer(), p.GetMemoryLimit().GetLimitBytes()>>20)
	case p.GetRollback() != nil:
		a += fmt.Sprintf(" to revision %d", p.GetRollback().GetRevision())
	}
	return a
}

func printAnalyses(w io.Writer, as []*analysisv1.Analysis) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINCIDENT\tCREATED\tENGINE\tACTION\tCONFIDENCE\tRISK\tSUMMARY")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f\t%s\t%s\n", a.GetId(), a.GetIncidentId(), when(a.GetCreateTime()), a.GetEngine(),
			action(a.GetProposal()), a.GetConfidence(), short(a.GetRisk().String(), "RISK_"), a.GetSummary())
	}
	_ = tw.Flush()
}

func printAnalysis(w io.Writer, a *analysisv1.Analysis) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", a.GetId())
	fmt.Fprintf(tw, "Incident:\t%s\n", a.GetIncidentId())
	fmt.Fprintf(tw, "Target:\t%s\n", target(a.GetTarget()))
	fmt.Fprintf(tw, "Summary:\t%s\n", a.GetSummary())
	fmt.Fprintf(tw, "Root cause:\t%s\n", orDash(a.GetRootCause()))
	fmt.Fprintf(tw, "Proposal:\t%s on %s\n", action(a.GetProposal()), target(a.GetProposal().GetTarget()))
	fmt.Fprintf(tw, "Confidence:\t%.2f\n", a.GetConfidence())
	fmt.Fprintf(tw, "Risk:\t%s\n", short(a.GetRisk().String(), "RISK_"))
	fmt.Fprintf(tw, "Blast radius:\t%d pods, downtime %s %s\n", a.GetBlastRadius().GetPods(), a.GetBlastRadius().GetExpectedDowntime().AsDuration(), a.GetBlastRadius().GetNote())
	engine := a.GetEngine()
	if a.GetModel() != "" {
		engine += " (" + a.GetModel() + ")"
	}
	if a.GetRule() != "" {
		engine += " rule " + a.GetRule()
	}
	fmt.Fprintf(tw, "Engine:\t%s, %s\n", engine, a.GetDuration().AsDuration())
	if u := a.GetUsage(); u.GetInputTokens()+u.GetOutputTokens() > 0 {
		fmt.Fprintf(tw, "Tokens:\t%d in, %d out, $%.4f\n", u.GetInputTokens(), u.GetOutputTokens(), u.GetCostUsd())
	}
	_ = tw.Flush()
	if len(a.GetEvidence()) > 0 {
		fmt.Fprintln(w, "\nEvidence:")
		for _, e := range a.GetEvidence() {
			fmt.Fprintf(w, "  [%s] %s\n", e.GetSource(), e.GetSummary())
		}
	}
	for _, r := range a.GetRuledOut() {
		fmt.Fprintf(w, "Ruled out: %s\n", r)
	}
	for _, at := range a.GetAttempts() {
		fmt.Fprintf(w, "Tried %s first: %s\n", at.GetEngine(), at.GetError())
	}
	for _, g := range a.GetGaps() {
		fmt.Fprintf(w, "Not gathered: %s\n", g)
	}
	if a.GetReasoning() != "" {
		fmt.Fprintf(w, "\nReasoning: %s\n", a.GetReasoning())
	}
}
