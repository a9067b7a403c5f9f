package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/durationpb"
	"k8s.io/apimachinery/pkg/api/resource"

	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func guardrailsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use: "guardrails", Aliases: []string{"guardrail"},
		Short: "What repairs may run without a person: show and set the guardrails of a scope, pause and resume",
		Long: `Guardrails are set per scope: global, namespace/CLUSTER/NAMESPACE or
app/NAME. A field a scope leaves unset inherits: an app's from its
namespace's, a namespace's from the global ones, the global ones from the
configuration file and the defaults. Deny lists add up.`,
	}
	c.register(cmd)
	cmd.AddCommand(guardrailsGet(&c), guardrailsSet(&c), guardrailsPause(&c, true), guardrailsPause(&c, false))
	return cmd
}

// guardrailFields are the guardrails in the order they are shown: each
// proto field and the flag of `guardrails set` that sets it.
var guardrailFields = []struct{ field, flag string }{
	{"max_auto_per_hour", "max-auto-per-hour"},
	{"max_auto_per_resource", "max-auto-per-resource"},
	{"cooldown", "cooldown"},
	{"min_confidence", "min-confidence"},
	{"max_auto_risk", "max-auto-risk"},
	{"max_pods_affected", "max-pods-affected"},
	{"min_healthy_replicas", "min-healthy-replicas"},
	{"deny", "deny"},
	{"allowed_namespaces", "allowed-namespaces"},
	{"dry_run", "dry-run"},
	{"paused", "paused"},
	{"approval_ttl", "approval-ttl"},
	{"undo_on_failure", "undo-on-failure"},
	{"verify_window", "verify-window"},
	{"max_replicas", "max-replicas"},
	{"max_memory_bytes", "max-memory"},
	{"auto", "auto"},
}

// globalOnly are the fields only the global scope sets.
var globalOnly = map[string]bool{"max_auto_per_hour": true, "allowed_namespaces": true, "paused": true}

func guardrailFieldNames() []string {
	names := make([]string, len(guardrailFields))
	for i, f := range guardrailFields {
		names[i] = f.field
	}
	return names
}

func registerScope(cmd *cobra.Command, scope *string) {
	cmd.Flags().StringVar(scope, "scope", "global", "global, app/NAME or namespace/CLUSTER/NAMESPACE")
	_ = cmd.RegisterFlagCompletionFunc("scope", cobra.FixedCompletions([]string{"global", "app/", "namespace/"}, cobra.ShellCompDirectiveNoSpace))
}

func guardrailsGet(c *clientFlags) *cobra.Command {
	var scope string
	cmd := &cobra.Command{
		Use: "get [--scope S]", Short: "Show a scope's guardrails as set, and as they apply", Args: cobra.NoArgs,
		Example: `  vigil guardrails get
  vigil guardrails get --scope app/shop
  vigil guardrails get --scope namespace/prod/shop -o json`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
				return cl.GetGuardrails(ctx, &repairv1.GetGuardrailsRequest{Scope: scope})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*repairv1.GetGuardrailsResponse)
				printGuardrails(w, scope, resp.GetSet(), resp.GetEffective())
			})
		},
	}
	registerScope(cmd, &scope)
	return cmd
}

// guardrailFlags are the flags of `guardrails set`.
type guardrailFlags struct {
	scope                                      string
	maxAutoPerHour, maxAutoPerResource         int32
	maxPodsAffected, minHealthyReplicas        int32
	maxReplicas                                int32
	cooldown, approvalTTL, verifyWindow        time.Duration
	minConfidence                              float64
	maxAutoRisk, maxMemory                     string
	deny, allowedNamespaces, clear             []string
	dryRun, paused, undoOnFailure, autoRepairs bool
}

func guardrailsSet(c *clientFlags) *cobra.Command {
	var f guardrailFlags
	cmd := &cobra.Command{
		Use:   "set [--scope S] [--FIELD VALUE]... [--clear FIELD,...]",
		Short: "Change a scope's guardrails: only the flags given change; --clear makes fields inherit again",
		Example: `  vigil guardrails set --min-confidence 0.9 --max-auto-risk medium --cooldown 15m
  vigil guardrails set --scope app/shop --auto=true --max-pods-affected 1 --deny scale-deployment
  vigil guardrails set --scope namespace/prod/payments --dry-run=true
  vigil guardrails set --scope app/shop --clear min_confidence,deny`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request(cmd)
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
				return cl.SetGuardrails(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*repairv1.SetGuardrailsResponse)
				printGuardrails(w, f.scope, resp.GetSet(), resp.GetEffective())
			})
		},
	}
	registerScope(cmd, &f.scope)
	fl := cmd.Flags()
	fl.Int32Var(&f.maxAutoPerHour, "max-auto-per-hour", 0, "automatic repairs per hour, overall (global only)")
	fl.Int32Var(&f.maxAutoPerResource, "max-auto-per-resource", 0, "automatic repairs per hour on one resource")
	fl.DurationVar(&f.cooldown, "cooldown", 0, "how long a resource rests after a failed repair, e.g. 10m")
	fl.Float64Var(&f.minConfidence, "min-confidence", 0, "automatic only at or above this confidence, 0 to 1, e.g. 0.85")
	fl.StringVar(&f.maxAutoRisk, "max-auto-risk", "", "automatic only at or below this risk: low, medium or high")
	fl.Int32Var(&f.maxPodsAffected, "max-pods-affected", 0, "pods one automatic repair may touch")
	fl.Int32Var(&f.minHealthyReplicas, "min-healthy-replicas", 0, "healthy replicas a repair must leave")
	fl.StringSliceVar(&f.deny, "deny", nil, "actions never executed, e.g. scale-deployment, scale_deployment or SCALE_DEPLOYMENT, replacing the scope's own list (comma-separated; the built-in ones always apply)")
	fl.StringSliceVar(&f.allowedNamespaces, "allowed-namespaces", nil, "the only namespaces repairs may touch, replacing the list (global only; comma-separated)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "execute repairs as Kubernetes server-side dry runs only (--dry-run=false to stop)")
	fl.BoolVar(&f.paused, "paused", false, "the kill switch: no automatic repair runs, people are asked instead (global only)")
	fl.DurationVar(&f.approvalTTL, "approval-ttl", 0, "how long a person has to answer, e.g. 30m")
	fl.BoolVar(&f.undoOnFailure, "undo-on-failure", false, "undo a repair whose verification failed")
	fl.DurationVar(&f.verifyWindow, "verify-window", 0, "how long verification waits for the workload to be healthy, e.g. 5m")
	fl.Int32Var(&f.maxReplicas, "max-replicas", 0, "the most replicas a scale repair may set")
	fl.StringVar(&f.maxMemory, "max-memory", "", "the highest memory limit a repair may set, a Kubernetes quantity such as 4Gi or 512Mi")
	fl.BoolVar(&f.autoRepairs, "auto", false, "repairs may run without a person at all, within the other guardrails")
	fl.StringSliceVar(&f.clear, "clear", nil, "fields to unset, so they inherit again, e.g. min_confidence,deny (comma-separated)")
	_ = cmd.RegisterFlagCompletionFunc("max-auto-risk", cobra.FixedCompletions([]string{"low", "medium", "high"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("deny", cobra.FixedCompletions(actionNames(), cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("clear", cobra.FixedCompletions(guardrailFieldNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// request is the SetGuardrailsRequest of the flags given: a flag left out
// leaves its field as it is.
func (f *guardrailFlags) request(cmd *cobra.Command) (*repairv1.SetGuardrailsRequest, error) {
	fl := cmd.Flags()
	g := &repairv1.Guardrails{Scope: f.scope}
	for _, s := range []struct {
		flag  string
		apply func() error
	}{
		{"max-auto-per-hour", func() error { g.MaxAutoPerHour = proto.Int32(f.maxAutoPerHour); return nil }},
		{"max-auto-per-resource", func() error { g.MaxAutoPerResource = proto.Int32(f.maxAutoPerResource); return nil }},
		{"cooldown", func() error { g.Cooldown = durationpb.New(f.cooldown); return nil }},
		{"min-confidence", func() error { g.MinConfidence = proto.Float64(f.minConfidence); return nil }},
		{"max-auto-risk", func() error {
			v, ok := typesv1.Risk_value["RISK_"+strings.ToUpper(strings.TrimSpace(f.maxAutoRisk))]
			if !ok || v == 0 {
				return fmt.Errorf("--max-auto-risk %q: want low, medium or high", f.maxAutoRisk)
			}
			g.MaxAutoRisk = typesv1.Risk(v)
			return nil
		}},
		{"max-pods-affected", func() error { g.MaxPodsAffected = proto.Int32(f.maxPodsAffected); return nil }},
		{"min-healthy-replicas", func() error { g.MinHealthyReplicas = proto.Int32(f.minHealthyReplicas); return nil }},
		{"deny", func() error {
			if len(f.deny) == 0 {
				return errors.New("--deny: give the actions to deny; to deny no more than the scopes above, --clear deny")
			}
			for _, s := range f.deny {
				a, err := parseAction(s)
				if err != nil {
					return fmt.Errorf("--deny %q: %w", s, err)
				}
				g.Deny = append(g.Deny, a)
			}
			return nil
		}},
		{"allowed-namespaces", func() error {
			if len(f.allowedNamespaces) == 0 {
				return errors.New("--allowed-namespaces: give the namespaces; to allow every namespace but kube-*, --clear allowed_namespaces")
			}
			for _, ns := range f.allowedNamespaces {
				g.AllowedNamespaces = append(g.AllowedNamespaces, strings.TrimSpace(ns))
			}
			return nil
		}},
		{"dry-run", func() error { g.DryRun = proto.Bool(f.dryRun); return nil }},
		{"paused", func() error { g.Paused = proto.Bool(f.paused); return nil }},
		{"approval-ttl", func() error { g.ApprovalTtl = durationpb.New(f.approvalTTL); return nil }},
		{"undo-on-failure", func() error { g.UndoOnFailure = proto.Bool(f.undoOnFailure); return nil }},
		{"verify-window", func() error { g.VerifyWindow = durationpb.New(f.verifyWindow); return nil }},
		{"max-replicas", func() error { g.MaxReplicas = proto.Int32(f.maxReplicas); return nil }},
		{"max-memory", func() error {
			q, err := resource.ParseQuantity(strings.TrimSpace(f.maxMemory))
			if err != nil {
				return fmt.Errorf("--max-memory %q: want a Kubernetes quantity such as 4Gi, 512Mi or 4G", f.maxMemory)
			}
			g.MaxMemoryBytes = proto.Int64(q.Value())
			return nil
		}},
		{"auto", func() error { g.Auto = proto.Bool(f.autoRepairs); return nil }},
	} {
		if !fl.Changed(s.flag) {
			continue
		}
		if err := s.apply(); err != nil {
			return nil, err
		}
	}
	req := &repairv1.SetGuardrailsRequest{Guardrails: g}
	for _, name := range f.clear {
		req.Clear = append(req.Clear, clearName(name))
	}
	if !hasFields(g) && len(req.Clear) == 0 {
		return nil, errors.New("nothing to change: give the fields to set, such as --min-confidence 0.9, or --clear FIELD")
	}
	return req, nil
}

// hasFields reports whether g sets a field besides its scope.
func hasFields(g *repairv1.Guardrails) bool {
	found := false
	g.ProtoReflect().Range(func(fd protoreflect.FieldDescriptor, _ protoreflect.Value) bool {
		found = fd.Name() != "scope"
		return !found
	})
	return found
}

// clearName is the field --clear names, by its proto name (min_confidence)
// or its flag's (min-confidence). An unknown name is passed on: the
// server names the fields it knows.
func clearName(name string) string {
	name = strings.TrimSpace(name)
	for _, f := range guardrailFields {
		if name == f.flag || name == "--"+f.flag {
			return f.field
		}
	}
	return strings.ReplaceAll(name, "-", "_")
}

// parseAction reads an action as the API names it (RESTART_DEPLOYMENT), as
// the command line shows it (restart_deployment), or with hyphens
// (restart-deployment).
func parseAction(s string) (typesv1.RepairAction, error) {
	name := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(s), "-", "_"))
	v, ok := typesv1.RepairAction_value["REPAIR_ACTION_"+strings.TrimPrefix(name, "REPAIR_ACTION_")]
	if !ok || v == 0 {
		return 0, fmt.Errorf("want an action: %s", strings.Join(actionNames(), ", "))
	}
	return typesv1.RepairAction(v), nil
}

// actionNames are the actions as the command line shows them
// (restart_deployment, as `vigil analyses list` does).
func actionNames() []string {
	values := typesv1.RepairAction(0).Descriptor().Values()
	var names []string
	for i := range values.Len() {
		if v := values.Get(i); v.Number() != 0 {
			names = append(names, short(string(v.Name()), "REPAIR_ACTION_"))
		}
	}
	return names
}

func guardrailsPause(c *clientFlags, pause bool) *cobra.Command {
	cmd := &cobra.Command{
		Use: "pause", Short: "The kill switch: no automatic repair runs; people are asked instead", Args: cobra.NoArgs,
	}
	if !pause {
		cmd.Use, cmd.Short = "resume", "Let automatic repairs run again, within the guardrails"
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		req := &repairv1.SetGuardrailsRequest{Guardrails: &repairv1.Guardrails{Scope: "global", Paused: proto.Bool(pause)}}
		return call(cmd.Context(), c, repairv1.NewRepairServiceClient, func(ctx context.Context, cl repairv1.RepairServiceClient) (proto.Message, error) {
			return cl.SetGuardrails(ctx, req)
		}, func(w io.Writer, m proto.Message) {
			if m.(*repairv1.SetGuardrailsResponse).GetEffective().GetPaused() {
				fmt.Fprintln(w, "Automatic repairs paused: people are asked instead. `vigil guardrails resume` lets them run again.")
				return
			}
			fmt.Fprintln(w, "Automatic repairs resumed, within the guardrails (`vigil guardrails get`).")
		})
	}
	return cmd
}

// printGuardrails shows each field as the scope sets it, next to the value
// that applies.
func printGuardrails(w io.Writer, scope string, set, effective *repairv1.Guardrails) {
	if s := set.GetScope(); s != "" {
		scope = s
	}
	if scope == "" {
		scope = "global"
	}
	fmt.Fprintf(w, "Scope: %s\n", scope)
	if effective.GetPaused() {
		fmt.Fprintln(w, "Paused: no automatic repair runs, people are asked instead (`vigil guardrails resume`)")
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tSET\tEFFECTIVE")
	for _, f := range guardrailFields {
		s, ok := guardrailValue(set, f.field)
		switch {
		case ok:
		case globalOnly[f.field] && scope != "global":
			s = "(global only)"
		default:
			s = "inherited"
		}
		e, ok := guardrailValue(effective, f.field)
		if !ok {
			e = "-"
			if f.field == "allowed_namespaces" {
				e = "every namespace but kube-*"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", f.field, s, e)
	}
	_ = tw.Flush()
}

// guardrailValue is the value of g's field, false when the field is unset.
func guardrailValue(g *repairv1.Guardrails, field string) (string, bool) {
	if g == nil {
		return "", false
	}
	m := g.ProtoReflect()
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(field))
	if fd == nil || !m.Has(fd) {
		return "", false
	}
	switch field {
	case "cooldown", "approval_ttl", "verify_window":
		return duration(m.Get(fd).Message().Interface().(*durationpb.Duration)), true
	case "max_memory_bytes":
		return quantity(g.GetMaxMemoryBytes()), true
	case "max_auto_risk":
		return short(g.GetMaxAutoRisk().String(), "RISK_"), true
	case "deny":
		names := make([]string, len(g.GetDeny()))
		for i, a := range g.GetDeny() {
			names[i] = short(a.String(), "REPAIR_ACTION_")
		}
		return strings.Join(names, ","), true
	case "allowed_namespaces":
		return strings.Join(g.GetAllowedNamespaces(), ","), true
	}
	return fmt.Sprint(m.Get(fd).Interface()), true
}
