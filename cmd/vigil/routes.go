package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"sigs.k8s.io/yaml"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/notify/route"
)

func routesCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use: "routes", Aliases: []string{"route"},
		Short: "Which channels hear about what: show, apply and test the routing tree",
		Long: `Routes decide which channels hear about an incident, its analysis,
repairs and deploys: by the incident's team, app, namespace, priority,
severity, labels (Alertmanager matchers) and the event's kind. The tree is
applied whole and versioned; see docs/routing.md.`,
	}
	c.register(cmd)
	cmd.AddCommand(routesGet(&c), routesApply(&c), routesTest(&c))
	return cmd
}

func routesGet(c *clientFlags) *cobra.Command {
	var history int32
	cmd := &cobra.Command{
		Use: "get [-o yaml|json]", Short: "Show the routing document in force (YAML that `routes apply -f` takes back)", Args: cobra.NoArgs,
		Example: `  vigil routes get > routes.yaml
  vigil routes get -o json --history 5`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if c.output != "table" && c.output != "yaml" && c.output != "json" {
				return fmt.Errorf("--output %q: want yaml or json", c.output)
			}
			return call(cmd.Context(), c, notifyv1.NewRouteServiceClient, func(ctx context.Context, cl notifyv1.RouteServiceClient) (proto.Message, error) {
				return cl.GetRoutes(ctx, &notifyv1.GetRoutesRequest{History: history})
			}, func(w io.Writer, m proto.Message) { printRoutes(w, m.(*notifyv1.GetRoutesResponse)) })
		},
	}
	cmd.Flags().Int32Var(&history, "history", 0, "also list this many earlier versions (who applied them, when)")
	return cmd
}

func printRoutes(w io.Writer, r *notifyv1.GetRoutesResponse) {
	cur := r.GetCurrent()
	if cur == nil {
		fmt.Fprintln(w, "# No routes applied: every channel hears about everything.")
		return
	}
	fmt.Fprintf(w, "# Version %d, applied by %s at %s.\n", cur.GetVersion(), cur.GetAppliedBy(), when(cur.GetAppliedAt()))
	if r.GetFile() != "" {
		fmt.Fprintf(w, "# From %s (VIGIL_ROUTES_FILE): change the file, not the API.\n", r.GetFile())
	}
	for _, v := range r.GetHistory() {
		fmt.Fprintf(w, "# Before: version %d, applied by %s at %s.\n", v.GetVersion(), v.GetAppliedBy(), when(v.GetAppliedAt()))
	}
	js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(cur.GetConfig())
	if err == nil {
		var y []byte
		if y, err = yaml.JSONToYAML(js); err == nil {
			_, err = w.Write(y)
		}
	}
	if err != nil {
		fmt.Fprintf(w, "# cannot show the document: %v\n", err)
	}
}

func routesApply(c *clientFlags) *cobra.Command {
	var (
		file    string
		version int64
	)
	cmd := &cobra.Command{
		Use: "apply -f FILE", Short: "Replace the routing tree with FILE's (YAML or JSON; - for stdin)", Args: cobra.NoArgs,
		Example: `  vigil routes apply -f routes.yaml
  vigil routes get > routes.yaml && $EDITOR routes.yaml && vigil routes apply -f routes.yaml --version 3`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			data, err := readFileOrStdin(cmd, file)
			if err != nil {
				return err
			}
			cfg, err := route.Parse(data)
			if err != nil {
				return badRequest(file, err)
			}
			return call(cmd.Context(), c, notifyv1.NewRouteServiceClient, func(ctx context.Context, cl notifyv1.RouteServiceClient) (proto.Message, error) {
				v := version
				if !cmd.Flags().Changed("version") {
					cur, err := cl.GetRoutes(ctx, &notifyv1.GetRoutesRequest{})
					if err != nil {
						return nil, err
					}
					v = cur.GetCurrent().GetVersion()
				}
				return cl.ApplyRoutes(ctx, &notifyv1.ApplyRoutesRequest{Config: cfg, Version: v})
			}, func(w io.Writer, m proto.Message) {
				fmt.Fprintf(w, "Applied routes version %d.\n", m.(*notifyv1.ApplyRoutesResponse).GetApplied().GetVersion())
			})
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "the routing document, YAML or JSON (- for stdin)")
	cmd.Flags().Int64Var(&version, "version", 0, "the version FILE replaces: refused if another was applied since (default: the one in force)")
	_ = cmd.MarkFlagRequired("file")
	return cmd
}

func readFileOrStdin(cmd *cobra.Command, file string) ([]byte, error) {
	if file == "-" {
		return io.ReadAll(io.LimitReader(cmd.InOrStdin(), route.MaxFileSize+1))
	}
	return os.ReadFile(file) //nolint:gosec // the user's own file
}

// badRequest says what is wrong with file, field by field.
func badRequest(file string, err error) error {
	var bad *server.BadRequestError
	if !errors.As(err, &bad) {
		return fmt.Errorf("%s: %w", file, err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", file, bad.Message)
	for _, v := range bad.Violations {
		fmt.Fprintf(&b, "\n  %s: %s", v.Field, v.Description)
	}
	return errors.New(b.String())
}

type routeTestFlags struct {
	labels                                         string
	team, app, namespace, priority, severity, kind string
}

func routesTest(c *clientFlags) *cobra.Command {
	var f routeTestFlags
	cmd := &cobra.Command{
		Use: "test --labels K=V,... [--team T] [--priority P1] [--kind incident.opened]", Args: cobra.NoArgs,
		Short: "Where an event would go: the routes it matches, why, and the channels",
		Example: `  vigil routes test --labels 'alertname=KubePodCrashLooping,namespace=payments' --team payments --priority P1
  vigil routes test --team payments --kind repair.failed`,
		RunE: func(cmd *cobra.Command, _ []string) error {
			labels, err := parseLabels(f.labels)
			if err != nil {
				return err
			}
			req := &notifyv1.TestRoutesRequest{
				Labels: labels, Team: f.team, App: f.app, Namespace: f.namespace,
				Priority: strings.ToUpper(f.priority), Severity: strings.ToLower(f.severity), Kind: f.kind,
			}
			return call(cmd.Context(), c, notifyv1.NewRouteServiceClient, func(ctx context.Context, cl notifyv1.RouteServiceClient) (proto.Message, error) {
				return cl.TestRoutes(ctx, req)
			}, func(w io.Writer, m proto.Message) { printRouteTest(w, m.(*notifyv1.TestRoutesResponse)) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.labels, "labels", "", "the incident's labels, NAME=VALUE separated by commas")
	fl.StringVar(&f.team, "team", "", "the incident's team (its owner, as monitor resolves it)")
	fl.StringVar(&f.app, "app", "", "the incident's (or deploy's) app")
	fl.StringVar(&f.namespace, "namespace", "", "the incident's namespace")
	fl.StringVar(&f.priority, "priority", "", "P0, P1, P2 or P3 (unset: unknown)")
	fl.StringVar(&f.severity, "severity", "", "critical, warning or info")
	fl.StringVar(&f.kind, "kind", string(route.IncidentOpened), "the event's kind: incident.opened, repair.failed, deploy.started, ...")
	return cmd
}

// parseLabels reads NAME=VALUE,NAME=VALUE.
func parseLabels(s string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, fmt.Errorf("--labels: %q: want NAME=VALUE", part)
		}
		out[strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
	}
	return out, nil
}

func printRouteTest(w io.Writer, r *notifyv1.TestRoutesResponse) {
	if r.GetVersion() == 0 {
		fmt.Fprintln(w, "No routes applied: every channel hears about everything.")
	} else {
		fmt.Fprintf(w, "Routes version %d\n", r.GetVersion())
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ROUTE\tNAME\tCHANNELS\tREPEAT\tWHY")
		for _, m := range r.GetMatches() {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.GetPath(), orDash(m.GetName()), orDash(strings.Join(m.GetReceivers(), ",")),
				orDash(m.GetRepeatInterval()), strings.Join(m.GetWhy(), "; "))
		}
		_ = tw.Flush()
	}
	if len(r.GetChannels()) == 0 {
		fmt.Fprintln(w, "Channels: none (no channel hears about it)")
		return
	}
	fmt.Fprintf(w, "Channels: %s\n", strings.Join(r.GetChannels(), ", "))
}
