package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/yaml"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// oncallCommand is `vigil oncall ...`: who is on call, the schedules, and
// overrides.
func oncallCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "oncall", Short: "Who is on call, on-call schedules and overrides (docs/escalation.md)"}
	c.register(cmd)
	oncall := func(ctx context.Context, do func(context.Context, monitorv1.OnCallServiceClient) (proto.Message, error), table func(io.Writer, proto.Message)) error {
		return call(ctx, &c, monitorv1.NewOnCallServiceClient, do, table)
	}

	var at string
	who := &cobra.Command{
		Use: "who TEAM|SCHEDULE", Short: "Who is on call for a team (its default schedule) or in a schedule, now or --at a time",
		Example: `  vigil oncall who payments
  vigil oncall who payments --at 2026-03-29T09:30:00+02:00
  vigil oncall who payments --at 12h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &monitorv1.WhoIsOnCallRequest{Team: args[0]}
			if at != "" {
				t, err := parseWhen(at, time.Now())
				if err != nil {
					return fmt.Errorf("--at %q: %w", at, err)
				}
				req.At = timestamppb.New(t)
			}
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				return teamOrSchedule(func(team bool) (proto.Message, error) {
					r := proto.Clone(req).(*monitorv1.WhoIsOnCallRequest)
					if !team {
						r.Team, r.Schedule = "", args[0]
					}
					return cl.WhoIsOnCall(ctx, r)
				})
			}, func(w io.Writer, m proto.Message) {
				r := m.(*monitorv1.WhoIsOnCallResponse)
				if r.GetUser() == "" {
					fmt.Fprintf(w, "Nobody is on call in schedule %s then.\n", r.GetSchedule())
					return
				}
				loc := zone(r.GetZone())
				fmt.Fprintf(w, "%s (schedule %s), on call from %s until %s (%s)\n", r.GetUser(), r.GetSchedule(),
					r.GetShiftStart().AsTime().In(loc).Format(time.DateTime), r.GetShiftEnd().AsTime().In(loc).Format(time.DateTime), r.GetZone())
			})
		},
	}
	who.Flags().StringVar(&at, "at", "", "a time: RFC 3339, or a duration from now (12h, -30m)")

	schedules := &cobra.Command{Use: "schedules", Aliases: []string{"schedule"}, Short: "On-call schedules"}
	var team string
	list := &cobra.Command{
		Use: "list", Short: "List the schedules", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				return cl.ListSchedules(ctx, &monitorv1.ListSchedulesRequest{Team: team})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTEAM\tZONE\tLAYERS\tOVERRIDES\tFROM FILE")
				for _, s := range m.(*monitorv1.ListSchedulesResponse).GetSchedules() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%v\n", s.GetName(), s.GetTeam(), s.GetZone(), len(s.GetLayers()), len(s.GetOverrides()), s.GetFromFile())
				}
				_ = tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&team, "team", "", "only this team's")
	get := &cobra.Command{
		Use: "get NAME", Short: "Show a schedule and who is on call over the next week", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				return cl.ListShifts(ctx, &monitorv1.ListShiftsRequest{
					Schedule: args[0], From: timestamppb.Now(), To: timestamppb.New(time.Now().Add(7 * 24 * time.Hour)),
				})
			}, func(w io.Writer, m proto.Message) {
				r := m.(*monitorv1.ListShiftsResponse)
				loc := zone(r.GetZone())
				fmt.Fprintf(w, "Schedule %s (%s), the next 7 days:\n", r.GetSchedule(), r.GetZone())
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "WHO\tFROM\tUNTIL")
				for _, s := range r.GetShifts() {
					fmt.Fprintf(tw, "%s\t%s\t%s\n", s.GetUser(), s.GetStart().AsTime().In(loc).Format(time.DateTime), s.GetEnd().AsTime().In(loc).Format(time.DateTime))
				}
				_ = tw.Flush()
			})
		},
	}
	var file string
	apply := &cobra.Command{
		Use: "apply -f FILE", Short: "Create or replace a schedule from a YAML or JSON file (the API's fields)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s := &monitorv1.OnCallSchedule{}
			if err := readDocument(cmd, file, s); err != nil {
				return err
			}
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				r, err := cl.UpdateSchedule(ctx, &monitorv1.UpdateScheduleRequest{Schedule: s})
				if status.Code(err) == codes.NotFound {
					c, err := cl.CreateSchedule(ctx, &monitorv1.CreateScheduleRequest{Schedule: s})
					return c.GetSchedule(), err
				}
				return r.GetSchedule(), err
			}, func(w io.Writer, m proto.Message) {
				fmt.Fprintf(w, "schedule %s applied\n", m.(*monitorv1.OnCallSchedule).GetName())
			})
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "the schedule (- for stdin)")
	_ = apply.MarkFlagRequired("file")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a schedule", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				return cl.DeleteSchedule(ctx, &monitorv1.DeleteScheduleRequest{Name: args[0]})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "schedule %s deleted\n", args[0]) })
		},
	}
	schedules.AddCommand(list, get, apply, del)

	var user, from, to string
	override := &cobra.Command{
		Use: "override TEAM|SCHEDULE --user U --from T --to T", Short: "Put a user on call for a while, over the rotation",
		Example: `  # I take tonight
  vigil oncall override payments --user olga --from 2026-12-24T18:00:00+08:00 --to 2026-12-25T09:00:00+08:00
  vigil oncall override payments --user olga --from 0s --to 12h`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			now := time.Now()
			start, err := parseWhen(from, now)
			if err != nil {
				return fmt.Errorf("--from %q: %w", from, err)
			}
			end, err := parseWhen(to, now)
			if err != nil {
				return fmt.Errorf("--to %q: %w", to, err)
			}
			o := &monitorv1.ScheduleOverride{Who: user, Start: timestamppb.New(start), End: timestamppb.New(end)}
			return oncall(cmd.Context(), func(ctx context.Context, cl monitorv1.OnCallServiceClient) (proto.Message, error) {
				return teamOrSchedule(func(team bool) (proto.Message, error) {
					req := &monitorv1.AddOverrideRequest{Schedule: args[0], Override: o}
					if team {
						req.Schedule, req.Team = "", args[0]
					}
					return cl.AddOverride(ctx, req)
				})
			}, func(w io.Writer, m proto.Message) {
				s := m.(*monitorv1.AddOverrideResponse).GetSchedule()
				loc := zone(s.GetZone())
				fmt.Fprintf(w, "%s is on call in schedule %s from %s until %s (%s)\n", user, s.GetName(),
					start.In(loc).Format(time.DateTime), end.In(loc).Format(time.DateTime), s.GetZone())
			})
		},
	}
	override.Flags().StringVar(&user, "user", "", "who takes over")
	override.Flags().StringVar(&from, "from", "", "when: RFC 3339, or a duration from now (0s, 2h)")
	override.Flags().StringVar(&to, "to", "", "until: RFC 3339, or a duration from now (12h)")
	for _, f := range []string{"user", "from", "to"} {
		_ = override.MarkFlagRequired(f)
	}
	cmd.AddCommand(who, schedules, override)
	return cmd
}

// teamOrSchedule calls do for a team first, then, when there is no such
// team's schedule, for a schedule of that name.
func teamOrSchedule(do func(team bool) (proto.Message, error)) (proto.Message, error) {
	m, err := do(true)
	if status.Code(err) != codes.NotFound {
		return m, err
	}
	if m, err2 := do(false); status.Code(err2) != codes.NotFound {
		return m, err2
	}
	return nil, err
}

// escalationCommand is `vigil escalation policies ...`.
func escalationCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "escalation", Short: "Escalation policies (docs/escalation.md)"}
	c.register(cmd)
	esc := func(ctx context.Context, do func(context.Context, monitorv1.EscalationServiceClient) (proto.Message, error), table func(io.Writer, proto.Message)) error {
		return call(ctx, &c, monitorv1.NewEscalationServiceClient, do, table)
	}
	policies := &cobra.Command{Use: "policies", Aliases: []string{"policy"}, Short: "Escalation policies"}
	var team string
	list := &cobra.Command{
		Use: "list", Short: "List the policies", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				return cl.ListPolicies(ctx, &monitorv1.ListPoliciesRequest{Team: team})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tTEAM\tPRIORITIES\tSTEPS\tREPEAT\tFROM FILE")
				for _, p := range m.(*monitorv1.ListPoliciesResponse).GetPolicies() {
					var ps []string
					for _, pr := range p.GetPriorities() {
						ps = append(ps, priorityName(pr))
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%v\n", p.GetName(), orDash(p.GetTeam()), orDash(strings.Join(ps, ",")),
						len(p.GetSteps()), p.GetRepeat(), p.GetFromFile())
				}
				_ = tw.Flush()
			})
		},
	}
	list.Flags().StringVar(&team, "team", "", "only this team's")
	get := &cobra.Command{
		Use: "get NAME", Short: "Show a policy's steps", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				return cl.GetPolicy(ctx, &monitorv1.GetPolicyRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) {
				p := m.(*monitorv1.GetPolicyResponse).GetPolicy()
				fmt.Fprintf(w, "Policy %s (team %s), repeated %d times\n", p.GetName(), orDash(p.GetTeam()), p.GetRepeat())
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "STEP\tAFTER\tSCHEDULES\tUSERS\tTEAMS\tCHANNELS")
				for i, s := range p.GetSteps() {
					after := s.GetDelay().AsDuration().String()
					if i == 0 {
						after = "target+" + after
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, after, orDash(strings.Join(s.GetSchedules(), ",")),
						orDash(strings.Join(s.GetUsers(), ",")), orDash(strings.Join(s.GetTeams(), ",")), orDash(strings.Join(s.GetChannels(), ",")))
				}
				_ = tw.Flush()
			})
		},
	}
	var file string
	apply := &cobra.Command{
		Use: "apply -f FILE", Short: "Create or replace a policy from a YAML or JSON file (the API's fields; delays like 10m; priorities P0-P3)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p := &monitorv1.EscalationPolicy{}
			if err := readDocument(cmd, file, p); err != nil {
				return err
			}
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				r, err := cl.UpdatePolicy(ctx, &monitorv1.UpdatePolicyRequest{Policy: p})
				if status.Code(err) == codes.NotFound {
					c, err := cl.CreatePolicy(ctx, &monitorv1.CreatePolicyRequest{Policy: p})
					return c.GetPolicy(), err
				}
				return r.GetPolicy(), err
			}, func(w io.Writer, m proto.Message) {
				fmt.Fprintf(w, "escalation policy %s applied\n", m.(*monitorv1.EscalationPolicy).GetName())
			})
		},
	}
	apply.Flags().StringVarP(&file, "file", "f", "", "the policy (- for stdin)")
	_ = apply.MarkFlagRequired("file")
	del := &cobra.Command{
		Use: "delete NAME", Short: "Delete a policy", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				return cl.DeletePolicy(ctx, &monitorv1.DeletePolicyRequest{Name: args[0]})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "escalation policy %s deleted\n", args[0]) })
		},
	}
	policies.AddCommand(list, get, apply, del)

	rules := &cobra.Command{Use: "priority-rules", Short: "The priority rules and response targets (admins set them)"}
	getRules := &cobra.Command{
		Use: "get", Short: "Show the priority rules and the response targets", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				return cl.GetPriorityRules(ctx, &monitorv1.GetPriorityRulesRequest{})
			}, func(w io.Writer, m proto.Message) { printRules(w, m.(*monitorv1.GetPriorityRulesResponse).GetRules()) })
		},
	}
	var rulesFile string
	applyRules := &cobra.Command{
		Use: "apply -f FILE", Short: "Replace the priority rules and targets from a YAML or JSON file",
		Example: `  # rules.yaml
  rules:
    - matchers: ['alertname="PaymentsDown"']
      priority: P0
    - app: shop
      namespace: prod
      priority: P1
  targets:
    - {priority: P0, target: 5m}
    - {priority: P1, target: 15m}
    - {priority: P2, target: 1h}

  vigil escalation priority-rules apply -f rules.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := &monitorv1.PriorityRules{}
			if err := readDocument(cmd, rulesFile, r); err != nil {
				return err
			}
			return esc(cmd.Context(), func(ctx context.Context, cl monitorv1.EscalationServiceClient) (proto.Message, error) {
				return cl.SetPriorityRules(ctx, &monitorv1.SetPriorityRulesRequest{Rules: r})
			}, func(w io.Writer, m proto.Message) { printRules(w, m.(*monitorv1.SetPriorityRulesResponse).GetRules()) })
		},
	}
	applyRules.Flags().StringVarP(&rulesFile, "file", "f", "", "the rules (- for stdin)")
	_ = applyRules.MarkFlagRequired("file")
	rules.AddCommand(getRules, applyRules)
	cmd.AddCommand(policies, rules)
	return cmd
}

func printRules(w io.Writer, r *monitorv1.PriorityRules) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "#\tMATCHERS\tAPP\tTEAM\tNAMESPACE\tPRIORITY")
	for i, rule := range r.GetRules() {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", i+1, orDash(strings.Join(rule.GetMatchers(), ", ")), orDash(rule.GetApp()),
			orDash(rule.GetTeam()), orDash(rule.GetNamespace()), priorityName(rule.GetPriority()))
	}
	_ = tw.Flush()
	if len(r.GetTargets()) == 0 {
		fmt.Fprintln(w, "Response targets: the defaults (P0 5m, P1 15m, P2 1h, P3 none)")
		return
	}
	var ts []string
	for _, t := range r.GetTargets() {
		ts = append(ts, priorityName(t.GetPriority())+" "+t.GetTarget().AsDuration().String())
	}
	fmt.Fprintf(w, "Response targets: %s (others none)\n", strings.Join(ts, ", "))
}

// incidentEscalationCommands are `vigil incidents escalate|snooze|priority`.
func incidentEscalationCommands(c *clientFlags) []*cobra.Command {
	inc := func(ctx context.Context, do func(context.Context, monitorv1.IncidentServiceClient) (proto.Message, error), table func(io.Writer, proto.Message)) error {
		return call(ctx, c, monitorv1.NewIncidentServiceClient, do, table)
	}
	escalate := &cobra.Command{
		Use: "escalate ID", Short: "Take the incident's escalation to its next step now", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inc(cmd.Context(), func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.EscalateIncident(ctx, &monitorv1.EscalateIncidentRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) {
				fmt.Fprintf(w, "incident %s escalated to step %d\n", args[0], m.(*monitorv1.EscalateIncidentResponse).GetLevel())
			})
		},
	}
	var d time.Duration
	snooze := &cobra.Command{
		Use: "snooze ID --for 30m", Short: "Pause the incident's escalation for a while (at most 24h)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return inc(cmd.Context(), func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.SnoozeIncident(ctx, &monitorv1.SnoozeIncidentRequest{Id: args[0], Duration: durationpb.New(d)})
			}, func(w io.Writer, m proto.Message) {
				fmt.Fprintf(w, "incident %s snoozed until %s\n", args[0], when(m.(*monitorv1.SnoozeIncidentResponse).GetSnoozedUntil()))
			})
		},
	}
	snooze.Flags().DurationVar(&d, "for", 30*time.Minute, "how long")
	prio := &cobra.Command{
		Use: "priority ID P0|P1|P2|P3", Short: "Set the incident's priority by hand (alerts no longer change it)", Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parsePriority(args[1])
			if err != nil {
				return err
			}
			return inc(cmd.Context(), func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.SetIncidentPriority(ctx, &monitorv1.SetIncidentPriorityRequest{Id: args[0], Priority: p})
			}, func(w io.Writer, m proto.Message) {
				printIncident(w, m.(*monitorv1.SetIncidentPriorityResponse).GetIncident())
			})
		},
	}
	return []*cobra.Command{escalate, snooze, prio}
}

// printEscalation says where an incident's escalation is.
func printEscalation(w io.Writer, e *monitorv1.IncidentEscalation) {
	if e == nil {
		return
	}
	switch {
	case e.GetPolicy() == "":
		fmt.Fprintf(w, "Escalation: none (%s)\n", e.GetStopped())
	case e.GetNextStepAt() == nil:
		fmt.Fprintf(w, "Escalation: policy %s, %d steps taken, stopped (%s)\n", e.GetPolicy(), e.GetLevel(), e.GetStopped())
	default:
		fmt.Fprintf(w, "Escalation: policy %s, %d steps taken, next at %s\n", e.GetPolicy(), e.GetLevel(), when(e.GetNextStepAt()))
	}
	if e.GetSnoozedUntil() != nil && e.GetSnoozedUntil().AsTime().After(time.Now()) {
		fmt.Fprintf(w, "Snoozed: until %s by %s\n", when(e.GetSnoozedUntil()), e.GetSnoozedBy())
	}
}

func parsePriority(s string) (typesv1.Priority, error) {
	v, ok := typesv1.Priority_value["PRIORITY_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("priority %q: want P0, P1, P2 or P3", s)
	}
	return typesv1.Priority(v), nil
}

// priorityName is "P0" to "P3" ("" when unset).
func priorityName(p typesv1.Priority) string {
	if p == typesv1.Priority_PRIORITY_UNSPECIFIED {
		return ""
	}
	return strings.TrimPrefix(p.String(), "PRIORITY_")
}

// parseWhen reads an RFC 3339 time, or a duration from now (2h, -30m).
func parseWhen(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05+08:00) or a duration from now (2h, -30m)")
	}
	return now.Add(d), nil
}

// zone is the location named, or UTC.
func zone(name string) *time.Location {
	if loc, err := time.LoadLocation(name); err == nil {
		return loc
	}
	return time.UTC
}

// readDocument reads a YAML or JSON file (- for stdin) with the API's
// field names into m; durations may be written as Go does (10m) and
// priorities as P0 to P3.
func readDocument(cmd *cobra.Command, path string, m proto.Message) error {
	data, err := readFileOrStdin(cmd, path)
	if err != nil {
		return err
	}
	js, err := yaml.YAMLToJSON(data)
	if err != nil {
		return fmt.Errorf("%s: not YAML: %w", path, err)
	}
	var doc any
	if err := json.Unmarshal(js, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if js, err = json.Marshal(friendly(doc, "")); err != nil {
		return err
	}
	if err := protojson.Unmarshal(js, m); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// friendly turns what people write into what protojson reads: "10m" for
// a delay into "600s", "P1" into "PRIORITY_P1".
func friendly(v any, key string) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = friendly(e, k)
		}
	case []any:
		for i, e := range x {
			x[i] = friendly(e, key)
		}
	case string:
		switch key {
		case "delay", "target":
			if d, err := time.ParseDuration(x); err == nil {
				return fmt.Sprintf("%gs", d.Seconds())
			}
		case "priorities", "priority":
			if p, err := parsePriority(x); err == nil {
				return p.String()
			}
		}
	}
	return v
}
