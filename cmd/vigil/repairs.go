package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"k8s.io/apimachinery/pkg/api/resource"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/subject"
)

func repairsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "repairs", Aliases: []string{"repair"}, Short: "What Vigil repairs and why: list, show, approve, reject, later"}
	c.register(cmd)
	cmd.AddCommand(repairsList(&c), repairsGet(&c), repairsAnswer(&c, true), repairsAnswer(&c, false), repairsLater(&c))
	return cmd
}

// repairStatuses are the names of the statuses on the command line, in the
// order of a repair's life.
var repairStatuses = []struct {
	name   string
	status repairv1.RepairStatus
}{
	{"pending", repairv1.RepairStatus_REPAIR_STATUS_PENDING_APPROVAL},
	{"queued", repairv1.RepairStatus_REPAIR_STATUS_QUEUED},
	{"running", repairv1.RepairStatus_REPAIR_STATUS_RUNNING},
	{"verifying", repairv1.RepairStatus_REPAIR_STATUS_VERIFYING},
	{"succeeded", repairv1.RepairStatus_REPAIR_STATUS_SUCCEEDED},
	{"failed", repairv1.RepairStatus_REPAIR_STATUS_FAILED},
	{"rejected", repairv1.RepairStatus_REPAIR_STATUS_REJECTED},
	{"blocked", repairv1.RepairStatus_REPAIR_STATUS_BLOCKED},
	{"expired", repairv1.RepairStatus_REPAIR_STATUS_EXPIRED},
	{"dry-run", repairv1.RepairStatus_REPAIR_STATUS_DRY_RUN},
}

func repairStatusNames() []string {
	names := make([]string, len(repairStatuses))
	for i, s := range repairStatuses {
		names[i] = s.name
	}
	return names
}

// parseRepairStatus reads a status as `repairs list` shows it ("pending",
// "dry-run"), or as the API names it ("PENDING_APPROVAL", "dry_run").
func parseRepairStatus(s string) (repairv1.RepairStatus, error) {
	name := strings.ReplaceAll(strings.ToLower(strings.TrimPrefix(strings.ToUpper(s), "REPAIR_STATUS_")), "_", "-")
	for _, st := range repairStatuses {
		if name == st.name || name == hyphenated(st.status.String(), "REPAIR_STATUS_") {
			return st.status, nil
		}
	}
	return 0, fmt.Errorf("--status %q: want one of %s", s, strings.Join(repairStatusNames(), ", "))
}

// repairStatus is a status as `repairs list --status` reads it.
func repairStatus(s repairv1.RepairStatus) string {
	for _, st := range repairStatuses {
		if st.status == s {
			return st.name
		}
	}
	return hyphenated(s.String(), "REPAIR_STATUS_")
}

// hyphenated is an enum value's name without its prefix, in lower case
// with hyphens: "needs-approval", "execution-started".
func hyphenated(s, prefix string) string {
	return strings.ReplaceAll(short(s, prefix), "_", "-")
}

func repairsList(c *clientFlags) *cobra.Command {
	var (
		incident, statusName, pageToken string
		limit                           int32
	)
	cmd := &cobra.Command{
		Use: "list", Short: "List repairs, newest first", Args: cobra.NoArgs,
		Example: `  vigil repairs list --status pending
  vigil repairs list --incident 01a20236-f568-7af1-9546-d3f52f62c45a -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &repairv1.ListRepairsRequest{IncidentId: incident, PageSize: limit, PageToken: pageToken}
			if statusName != "" {
				st, err := parseRepairStatus(statusName)
				if err != nil {
					return err
				}
				req.Status = st
			}
			return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
				return cl.ListRepairs(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*repairv1.ListRepairsResponse)
				printRepairs(w, resp.GetRepairs(), time.Now())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&incident, "incident", "", "only the repairs of this incident")
	fl.StringVar(&statusName, "status", "", "only repairs in this status: "+strings.Join(repairStatusNames(), ", "))
	fl.Int32Var(&limit, "limit", 50, "how many (at most 500)")
	fl.StringVar(&pageToken, "page-token", "", "the next page, from a previous list")
	_ = cmd.RegisterFlagCompletionFunc("status", cobra.FixedCompletions(repairStatusNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func repairsGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show a repair: what, why it was decided so, who answered, and its timeline", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
				return cl.GetRepair(ctx, &repairv1.GetRepairRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) { printRepair(w, m.(*repairv1.GetRepairResponse).GetRepair()) })
		},
	}
}

// repairsAnswer is `repairs approve ID` or `repairs reject ID [--reason]`.
func repairsAnswer(c *clientFlags, approve bool) *cobra.Command {
	var reason string
	cmd := &cobra.Command{
		Use: "approve ID", Short: "Approve a repair waiting for a person: it is queued to run", Args: cobra.ExactArgs(1),
		Example: `  vigil repairs list --status pending
  vigil repairs approve 0198a0a0-0000-7000-8000-000000000001`,
	}
	if !approve {
		cmd.Use, cmd.Short = "reject ID [--reason TEXT]", "Reject a repair waiting for a person: it does not run"
		cmd.Example = `  vigil repairs reject 0198a0a0-0000-7000-8000-000000000001 --reason 'deploying a fix'`
		cmd.Flags().StringVar(&reason, "reason", "", "why (kept in the repair's timeline)")
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var refused bool
		err := call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
			var (
				resp interface{ GetRepair() *repairv1.Repair }
				err  error
			)
			if approve {
				resp, err = cl.ApproveRepair(ctx, &repairv1.ApproveRepairRequest{Id: args[0]})
			} else {
				resp, err = cl.RejectRepair(ctx, &repairv1.RejectRepairRequest{Id: args[0], Reason: reason})
			}
			refused = status.Code(err) == codes.FailedPrecondition
			if err != nil {
				return nil, err
			}
			return resp.(proto.Message), nil
		}, func(w io.Writer, m proto.Message) {
			printAnswer(w, m.(interface{ GetRepair() *repairv1.Repair }).GetRepair(), approve)
		})
		if refused {
			// Decided already, expired, or never approvable: the timeline
			// says by whom and why.
			verb := "rejected"
			if approve {
				verb = "approved"
			}
			return fmt.Errorf("not %s: %w\n  its timeline: vigil repairs get %s", verb, err, args[0])
		}
		return err
	}
	return cmd
}

// repairsLater is `repairs later ID [--for 30m]`.
func repairsLater(c *clientFlags) *cobra.Command {
	var d time.Duration
	cmd := &cobra.Command{
		Use:   "later ID [--for DURATION]",
		Short: "Snooze a repair waiting for a person: it keeps waiting, and is asked for again when the snooze ends",
		Long: `Snooze a repair waiting for a person, as "Later" on its card does: it keeps
waiting, the card says who snoozed it until when, and a reminder is sent when
the snooze ends (VIGIL_APPROVAL_SNOOZE, 30 min, unless --for) -- unless the
approval expires first: a snooze never outlives it.`,
		Example: `  vigil repairs later 0198a0a0-0000-7000-8000-000000000001
  vigil repairs later 0198a0a0-0000-7000-8000-000000000001 --for 10m`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &repairv1.PostponeRepairRequest{Id: args[0]}
			if d != 0 {
				req.For = durationpb.New(d)
			}
			return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
				return cl.PostponeRepair(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				r := m.(*repairv1.PostponeRepairResponse).GetRepair()
				fmt.Fprintf(w, "Repair %s snoozed until %s by %s.\n", r.GetId(), when(r.GetSnoozedUntil()), r.GetSnoozedBy())
			})
		},
	}
	cmd.Flags().DurationVar(&d, "for", 0, "how long (1m to 24h; default: the service's VIGIL_APPROVAL_SNOOZE)")
	return cmd
}

// printAnswer prints what became of an answered repair.
func printAnswer(w io.Writer, r *repairv1.Repair, approve bool) {
	verb := "rejected"
	if approve {
		verb = "approved"
	}
	fmt.Fprintf(w, "Repair %s %s: %s on %s is %s.\n", r.GetId(), verb, action(r.GetProposal()),
		kindTarget(r.GetProposal().GetTarget()), repairStatus(r.GetStatus()))
}

// kindTarget is a target as "Deployment shop/checkout".
func kindTarget(r *typesv1.ResourceRef) string {
	if r.GetName() == "" {
		return "-"
	}
	s := r.GetName()
	if r.GetNamespace() != "" {
		s = r.GetNamespace() + "/" + s
	}
	if r.GetKind() != "" {
		s = r.GetKind() + " " + s
	}
	return s
}

// shortID is the first block of a UUID: enough to tell incidents apart in
// a table.
func shortID(id string) string {
	if i := strings.IndexByte(id, '-'); i > 0 {
		return id[:i]
	}
	return orDash(id)
}

// age is how long ago t was, as kubectl shows it: "45s", "12m", "5h", "3d".
func age(t *timestamppb.Timestamp, now time.Time) string {
	if t == nil {
		return "-"
	}
	d := max(now.Sub(t.AsTime()), 0)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	}
	return fmt.Sprintf("%dd", int(d.Hours()/24))
}

func printRepairs(w io.Writer, rs []*repairv1.Repair, now time.Time) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tINCIDENT\tACTION\tTARGET\tDECISION\tSTATUS\tRISK\tCONFIDENCE\tAGE")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.2f\t%s\n", r.GetId(), shortID(r.GetIncidentId()), action(r.GetProposal()),
			kindTarget(r.GetProposal().GetTarget()), hyphenated(r.GetDecision().String(), "DECISION_"), repairStatus(r.GetStatus()),
			short(r.GetRisk().String(), "RISK_"), r.GetConfidence(), age(r.GetCreateTime(), now))
	}
	_ = tw.Flush()
}

func printRepair(w io.Writer, r *repairv1.Repair) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	p := r.GetProposal()
	fmt.Fprintf(tw, "ID:\t%s\n", r.GetId())
	fmt.Fprintf(tw, "Incident:\t%s\n", orDash(r.GetIncidentId()))
	analysis := orDash(r.GetAnalysisId())
	if r.GetEngine() != "" {
		analysis += " (" + r.GetEngine() + ")"
	}
	fmt.Fprintf(tw, "Analysis:\t%s\n", analysis)
	if r.GetSummary() != "" {
		fmt.Fprintf(tw, "Summary:\t%s\n", r.GetSummary())
	}
	fmt.Fprintf(tw, "Action:\t%s\n", short(p.GetAction().String(), "REPAIR_ACTION_"))
	t := kindTarget(p.GetTarget())
	if c := p.GetTarget().GetCluster(); c != "" {
		t += " (cluster " + c + ")"
	}
	fmt.Fprintf(tw, "Target:\t%s\n", t)
	if s := params(p); s != "" {
		fmt.Fprintf(tw, "Params:\t%s\n", s)
	}
	fmt.Fprintf(tw, "Status:\t%s\n", repairStatus(r.GetStatus()))
	fmt.Fprintf(tw, "Decision:\t%s\n", hyphenated(r.GetDecision().String(), "DECISION_"))
	reasons := r.GetReasons()
	if len(reasons) == 0 && r.GetDecisionReason() != "" {
		reasons = []string{r.GetDecisionReason()}
	}
	for i, reason := range reasons {
		label := ""
		if i == 0 {
			label = "Reasons:"
		}
		fmt.Fprintf(tw, "%s\t- %s\n", label, reason)
	}
	fmt.Fprintf(tw, "Risk:\t%s\n", short(r.GetRisk().String(), "RISK_"))
	fmt.Fprintf(tw, "Confidence:\t%.2f\n", r.GetConfidence())
	fmt.Fprintf(tw, "Pods affected:\t%d\n", r.GetPodsAffected())
	fmt.Fprintf(tw, "Expected downtime:\t%s\n", duration(r.GetExpectedDowntime()))
	fmt.Fprintf(tw, "App:\t%s (team %s)\n", orDash(r.GetApp()), orDash(r.GetTeam()))
	if s := r.GetSubject(); s != nil {
		fmt.Fprintf(tw, "Incident about:\t%s\n", subject.Describe(s))
	}
	if r.GetDecidedBy() != "" {
		fmt.Fprintf(tw, "Decided by:\t%s via %s\n", r.GetDecidedBy(), orDash(r.GetDecidedVia()))
	}
	if r.GetExpireTime() != nil {
		fmt.Fprintf(tw, "Expires:\t%s\n", when(r.GetExpireTime()))
	}
	if r.GetDryRun() {
		fmt.Fprintf(tw, "Dry run:\tyes (a Kubernetes server-side dry run: nothing changes)\n")
	}
	fmt.Fprintf(tw, "Created:\t%s\n", when(r.GetCreateTime()))
	fmt.Fprintf(tw, "Updated:\t%s\n", when(r.GetUpdateTime()))
	_ = tw.Flush()
	if res := strings.TrimRight(r.GetDryRunResult(), "\n"); res != "" {
		fmt.Fprintln(w, "\nDry-run result:")
		for line := range strings.SplitSeq(res, "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	}
	if len(r.GetSteps()) == 0 {
		return
	}
	fmt.Fprintln(w, "\nTimeline:")
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tKIND\tACTOR\tCHANNEL\tMESSAGE")
	for _, s := range r.GetSteps() {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", when(s.GetTime()), hyphenated(s.GetKind().String(), "STEP_KIND_"),
			orDash(s.GetActor()), orDash(s.GetChannel()), orDash(s.GetMessage()))
	}
	_ = tw.Flush()
}

// params are a proposal's parameters, "" for none.
func params(p *typesv1.RepairProposal) string {
	switch {
	case p.GetScale() != nil:
		return fmt.Sprintf("replicas=%d", p.GetScale().GetReplicas())
	case p.GetMemoryLimit() != nil:
		return fmt.Sprintf("container=%s limit=%s", orDash(p.GetMemoryLimit().GetContainer()), quantity(p.GetMemoryLimit().GetLimitBytes()))
	case p.GetRollback() != nil:
		if p.GetRollback().GetRevision() == 0 {
			return "revision=previous"
		}
		return fmt.Sprintf("revision=%d", p.GetRollback().GetRevision())
	}
	return ""
}

// quantity writes bytes as Kubernetes does: "512Mi", "4Gi".
func quantity(b int64) string {
	return resource.NewQuantity(b, resource.BinarySI).String()
}

// duration writes d as people write it: "10m", "1h30m", "45s"; "-" for
// none.
func duration(d *durationpb.Duration) string {
	if d == nil {
		return "-"
	}
	return human.Duration(d.AsDuration())
}
