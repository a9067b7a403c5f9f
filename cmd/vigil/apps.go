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
	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"k8s.io/apimachinery/pkg/api/resource"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

func appsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "apps", Aliases: []string{"app"}, Short: "Onboard, deploy, roll back and render apps"}
	c.register(cmd)
	cmd.AddCommand(appsCreate(&c), appsUpdate(&c), appsList(&c), appsGet(&c), appsDelete(&c),
		appsDeploy(&c), appsHistory(&c), appsRollback(&c), appsRender(&c))
	return cmd
}

// appFlags are the fields of an app settable from the command line.
type appFlags struct {
	app            deployv1.App
	memoryLimit    string
	env, secrets   []string
	secretsFromEnv []string
	removeSecrets  []string
	// in is where secret values not on the command line are read; the
	// process's stdin, environment and files when nil.
	in *input
}

func (f *appFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.app.Framework, "framework", "", "flask, django, nodejs, nextjs, static or go")
	fl.StringVar(&f.app.Plan, "plan", "basic", "basic, standard, advanced or professional")
	fl.StringVar(&f.app.Image, "image", "", "container image, e.g. registry.example.com/shop:1.4.2")
	fl.StringVar(&f.app.Domain, "domain", "", "host to serve the app on, through an Ingress with TLS (cert-manager)")
	fl.StringVar(&f.app.DisplayName, "display-name", "", "human-readable name")
	fl.Int32Var(&f.app.Replicas, "replicas", 0, "replicas (0: the plan's default)")
	fl.Int32Var(&f.app.Port, "port", 0, "container port (0: the framework's default)")
	fl.StringVar(&f.memoryLimit, "memory-limit", "", "the container's memory limit, e.g. 768Mi, when above the plan's (0: the plan's; a repair that raises it sets it)")
	fl.StringVar(&f.app.Owner, "owner", "", "the team that owns the app: its operators act on it, its viewers read it (your team, unless you are an admin)")
	fl.StringVar(&f.app.Cluster, "cluster", "", "target cluster (default: the only or default cluster)")
	fl.BoolVar(&f.app.AutoRepair, "auto-repair", false, "let Vigil repair the app without asking, within its guardrails")
	fl.StringArrayVar(&f.env, "env", nil, "configuration KEY=VALUE (repeatable)")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret, stored encrypted (repeatable): KEY=@FILE reads FILE (less one trailing newline), "+
		"KEY=- reads stdin (prompting without echo on a terminal), KEY=VALUE takes VALUE as is, visible in the process list and shell history")
	fl.StringArrayVar(&f.secretsFromEnv, "secret-from-env", nil, "secret KEY=VARIABLE: the value of environment variable VARIABLE (repeatable)")
}

// parse returns the app named name as the flags describe it, and its
// secrets.
func (f *appFlags) parse(name string) (*deployv1.App, map[string]string, error) {
	env, err := keyValues("env", f.env)
	if err != nil {
		return nil, nil, err
	}
	in := f.in
	if in == nil {
		in = osInput()
	}
	secrets, err := in.secrets(f.secrets, f.secretsFromEnv)
	if err != nil {
		return nil, nil, err
	}
	app := proto.Clone(&f.app).(*deployv1.App)
	app.Name, app.Env = name, env
	if f.memoryLimit != "" {
		q, err := resource.ParseQuantity(f.memoryLimit)
		if err != nil {
			return nil, nil, fmt.Errorf("--memory-limit %q: want a quantity such as 768Mi or 2Gi", f.memoryLimit)
		}
		app.MemoryLimitBytes = q.Value()
	}
	return app, secrets, nil
}

func keyValues(flag string, kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(kvs))
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--%s %q: want KEY=VALUE", flag, kv)
		}
		m[k] = v
	}
	return m, nil
}

func appsCreate(c *clientFlags) *cobra.Command {
	var (
		f     appFlags
		adopt bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --framework F --plan P --image IMG [--domain D]",
		Short: "Register an app (deploy it with `vigil apps deploy`)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, secrets, err := f.parse(args[0])
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.CreateApp(ctx, &deployv1.CreateAppRequest{App: app, Secrets: secrets, AdoptNamespace: adopt})
			}, func(w io.Writer, m proto.Message) { printApp(w, m.(*deployv1.CreateAppResponse).GetApp()) })
		},
	}
	f.register(cmd)
	cmd.Flags().BoolVar(&adopt, "adopt-namespace", false, "admins only: give the app the namespace another team's deleted app of the same name left behind (deleted without --delete-resources)")
	return cmd
}

func appsUpdate(c *clientFlags) *cobra.Command {
	var f appFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--image IMG] [--plan P] [--env K=V]... [--secret K=@FILE|K=-|K=V]... [--secret-from-env K=VAR]... [--remove-secret K]...",
		Short: "Change an app; the change takes effect with its next deployment",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			app, secrets, err := f.parse(args[0])
			if err != nil {
				return err
			}
			mask := &fieldmaskpb.FieldMask{}
			for flag, path := range map[string]string{
				"framework": "framework", "plan": "plan", "image": "image", "domain": "domain",
				"display-name": "display_name", "replicas": "replicas", "port": "port", "owner": "owner",
				"auto-repair": "auto_repair", "env": "env", "memory-limit": "memory_limit_bytes",
			} {
				if cmd.Flags().Changed(flag) {
					mask.Paths = append(mask.Paths, path)
				}
			}
			if cmd.Flags().Changed("cluster") {
				return errors.New("--cluster: an app's cluster cannot change; delete and create it again")
			}
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.UpdateApp(ctx, &deployv1.UpdateAppRequest{App: app, UpdateMask: mask, SetSecrets: secrets, RemoveSecrets: f.removeSecrets})
			}, func(w io.Writer, m proto.Message) { printApp(w, m.(*deployv1.UpdateAppResponse).GetApp()) })
		},
	}
	f.register(cmd)
	cmd.Flags().StringArrayVar(&f.removeSecrets, "remove-secret", nil, "secret to remove (repeatable)")
	return cmd
}

func appsList(c *clientFlags) *cobra.Command {
	var limit int32
	cmd := &cobra.Command{
		Use: "list", Short: "List apps", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.ListApps(ctx, &deployv1.ListAppsRequest{PageSize: limit})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tFRAMEWORK\tPLAN\tREVISION\tCLUSTER\tDOMAIN\tIMAGE")
				for _, a := range m.(*deployv1.ListAppsResponse).GetApps() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\t%s\n", a.GetName(), a.GetFramework(), a.GetPlan(),
						a.GetCurrentRevision(), a.GetCluster(), dash(a.GetDomain()), a.GetImage())
				}
				_ = tw.Flush()
			})
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", 100, "how many")
	return cmd
}

func appsGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show an app", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.GetApp(ctx, &deployv1.GetAppRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) { printApp(w, m.(*deployv1.GetAppResponse).GetApp()) })
		},
	}
}

func appsDelete(c *clientFlags) *cobra.Command {
	var resources bool
	cmd := &cobra.Command{
		Use: "delete NAME", Short: "Forget an app (--delete-resources: and delete what Vigil made for it in the cluster)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.DeleteApp(ctx, &deployv1.DeleteAppRequest{Name: args[0], DeleteResources: resources})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "app %s deleted\n", args[0]) })
		},
	}
	cmd.Flags().BoolVar(&resources, "delete-resources", false, "also delete the app's namespace and everything in it, when Vigil created the namespace for the app; "+
		"otherwise only the objects labelled as Vigil's for the app, leaving the namespace alone. Without it the namespace stays as it is, "+
		"and another team's new app of the same name gets it only with an admin's --adopt-namespace")
	return cmd
}

func appsDeploy(c *clientFlags) *cobra.Command {
	var (
		image string
		wait  bool
	)
	cmd := &cobra.Command{
		Use:   "deploy NAME [--image IMG] [--wait]",
		Short: "Deploy an app as a new revision (--wait: follow the steps until it ends)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return follow(cmd.Context(), c, wait, func(ctx context.Context, cl deployv1.AppServiceClient) (func() (*deployv1.Deployment, error), error) {
				return receiver(cl.DeployApp(ctx, &deployv1.DeployAppRequest{Name: args[0], Image: image}))
			})
		},
	}
	cmd.Flags().StringVar(&image, "image", "", "deploy this image (and keep it as the app's)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show the steps as they happen and wait for the rollout")
	return cmd
}

func appsRollback(c *clientFlags) *cobra.Command {
	var (
		to   int64
		wait bool
	)
	cmd := &cobra.Command{
		Use:   "rollback NAME [--to-revision N] [--wait]",
		Short: "Return an app to the previous (or a named) revision, recorded as a new revision",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return follow(cmd.Context(), c, wait, func(ctx context.Context, cl deployv1.AppServiceClient) (func() (*deployv1.Deployment, error), error) {
				return receiver(cl.RollbackApp(ctx, &deployv1.RollbackAppRequest{Name: args[0], ToRevision: to}))
			})
		},
	}
	cmd.Flags().Int64Var(&to, "to-revision", 0, "revision to return to (default: the one before the current)")
	cmd.Flags().BoolVar(&wait, "wait", false, "show the steps as they happen and wait for the rollout")
	return cmd
}

// receiver reads the deployments a DeployApp or RollbackApp stream sends.
func receiver[M any, P interface {
	*M
	GetDeployment() *deployv1.Deployment
}](s grpc.ServerStreamingClient[M], err error) (func() (*deployv1.Deployment, error), error) {
	if err != nil {
		return nil, err
	}
	return func() (*deployv1.Deployment, error) {
		m, err := s.Recv()
		if err != nil {
			return nil, err
		}
		return P(m).GetDeployment(), nil
	}, nil
}

// follow starts a deployment and prints it: without wait, once it is
// recorded; with wait, each step as it changes until the deployment ends,
// failing when the deployment fails. -o json prints each update as a JSON
// object.
func follow(ctx context.Context, c *clientFlags, wait bool,
	start func(context.Context, deployv1.AppServiceClient) (func() (*deployv1.Deployment, error), error),
) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	recv, err := start(ctx, deployv1.NewAppServiceClient(conn))
	if err != nil {
		return rpcError(err)
	}
	seen := map[string]deployv1.StepStatus{}
	for {
		d, err := recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return rpcError(err)
		}
		if c.output == "json" {
			if err := c.print(d, nil); err != nil {
				return err
			}
		} else {
			if len(seen) == 0 {
				fmt.Fprintf(os.Stdout, "%s %s revision %d (deployment %s): image %s\n",
					kindVerb(d.GetKind()), d.GetApp(), d.GetRevision(), d.GetId(), d.GetImage())
			}
			printSteps(os.Stdout, d, seen)
		}
		if !wait {
			if c.output != "json" {
				fmt.Fprintf(os.Stdout, "follow it: vigil apps history %s (or deploy with --wait)\n", d.GetApp())
			}
			return nil
		}
		switch d.GetStatus() {
		case deployv1.DeploymentStatus_DEPLOYMENT_STATUS_SUCCEEDED:
			if c.output != "json" {
				fmt.Fprintf(os.Stdout, "revision %d of %s is rolled out (%s)\n", d.GetRevision(), d.GetApp(), d.GetDuration().AsDuration().Round(100_000_000))
			}
			return nil
		case deployv1.DeploymentStatus_DEPLOYMENT_STATUS_FAILED:
			return fmt.Errorf("revision %d of %s failed: %s", d.GetRevision(), d.GetApp(), d.GetReason())
		}
	}
}

func kindVerb(k deployv1.DeploymentKind) string {
	if k == deployv1.DeploymentKind_DEPLOYMENT_KIND_ROLLBACK {
		return "rolling back"
	}
	return "deploying"
}

// printSteps prints the steps whose state changed since seen.
func printSteps(w io.Writer, d *deployv1.Deployment, seen map[string]deployv1.StepStatus) {
	for _, st := range d.GetSteps() {
		if prev, ok := seen[st.GetName()]; ok && prev == st.GetStatus() {
			continue
		}
		seen[st.GetName()] = st.GetStatus()
		if st.GetStatus() == deployv1.StepStatus_STEP_STATUS_PENDING {
			continue
		}
		line := fmt.Sprintf("  %-22s %s", st.GetName(), short(st.GetStatus().String(), "STEP_STATUS_"))
		if st.GetMessage() != "" {
			line += "  " + st.GetMessage()
		}
		fmt.Fprintln(w, line)
	}
}

func appsHistory(c *clientFlags) *cobra.Command {
	var limit int32
	cmd := &cobra.Command{
		Use: "history NAME", Short: "An app's revisions, newest first", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.ListDeployments(ctx, &deployv1.ListDeploymentsRequest{App: args[0], PageSize: limit})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "REVISION\tKIND\tSTATUS\tIMAGE\tCONFIG\tBY\tWHEN\tDURATION\tREASON")
				for _, d := range m.(*deployv1.ListDeploymentsResponse).GetDeployments() {
					kind := short(d.GetKind().String(), "DEPLOYMENT_KIND_")
					if d.GetRollbackTo() != 0 {
						kind += fmt.Sprintf(" to %d", d.GetRollbackTo())
					}
					dur := "-"
					if d.GetDuration() != nil {
						dur = d.GetDuration().AsDuration().Round(100_000_000).String()
					}
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%.12s\t%s\t%s\t%s\t%s\n", d.GetRevision(), kind,
						short(d.GetStatus().String(), "DEPLOYMENT_STATUS_"), d.GetImage(), d.GetConfigHash(),
						d.GetRequestedBy(), when(d.GetCreateTime()), dur, dash(d.GetReason()))
				}
				_ = tw.Flush()
			})
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", 20, "how many")
	return cmd
}

func appsRender(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "render NAME", Short: "Print the Kubernetes manifests Vigil applies for an app (secret values left out)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, deployv1.NewAppServiceClient, func(ctx context.Context, cl deployv1.AppServiceClient) (proto.Message, error) {
				return cl.RenderApp(ctx, &deployv1.RenderAppRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) { fmt.Fprint(w, m.(*deployv1.RenderAppResponse).GetYaml()) })
		},
	}
}

func printApp(w io.Writer, a *deployv1.App) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", a.GetName())
	if a.GetDisplayName() != "" {
		fmt.Fprintf(tw, "Display name:\t%s\n", a.GetDisplayName())
	}
	fmt.Fprintf(tw, "Framework:\t%s\n", a.GetFramework())
	fmt.Fprintf(tw, "Plan:\t%s\n", a.GetPlan())
	fmt.Fprintf(tw, "Image:\t%s\n", a.GetImage())
	fmt.Fprintf(tw, "Domain:\t%s\n", dash(a.GetDomain()))
	fmt.Fprintf(tw, "Cluster:\t%s (namespace %s)\n", a.GetCluster(), a.GetNamespace())
	fmt.Fprintf(tw, "Replicas:\t%s\n", orDefault(a.GetReplicas(), "plan default"))
	memory := "plan's"
	if b := a.GetMemoryLimitBytes(); b > 0 {
		memory = quantity(b) + " (when above the plan's)"
	}
	fmt.Fprintf(tw, "Memory limit:\t%s\n", memory)
	fmt.Fprintf(tw, "Port:\t%s\n", orDefault(a.GetPort(), "framework default"))
	fmt.Fprintf(tw, "Owner:\t%s\n", dash(a.GetOwner()))
	fmt.Fprintf(tw, "Auto-repair:\t%t\n", a.GetAutoRepair())
	fmt.Fprintf(tw, "Env:\t%s\n", dash(labels(a.GetEnv())))
	fmt.Fprintf(tw, "Secrets:\t%s\n", dash(strings.Join(a.GetSecretNames(), ", ")))
	fmt.Fprintf(tw, "Revision:\t%d\n", a.GetCurrentRevision())
	fmt.Fprintf(tw, "Created:\t%s\n", when(a.GetCreateTime()))
	_ = tw.Flush()
}

func orDefault(n int32, def string) string {
	if n == 0 {
		return def
	}
	return fmt.Sprint(n)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clustersCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "clusters", Aliases: []string{"cluster"}, Short: "Register the Kubernetes clusters apps run on"}
	c.register(cmd)
	var kubeconfig, kctx string
	add := &cobra.Command{
		Use: "add NAME --kubeconfig FILE [--context CTX]", Short: "Register a cluster (checked by calling its API server)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if kubeconfig == "" {
				return errors.New("--kubeconfig: required")
			}
			b, err := readKubeconfig(kubeconfig, os.Stdin)
			if err != nil {
				return fmt.Errorf("--kubeconfig: %w", err)
			}
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.AddCluster(ctx, &deployv1.AddClusterRequest{Name: args[0], Kubeconfig: b, Context: kctx})
			}, func(w io.Writer, m proto.Message) {
				cl := m.(*deployv1.AddClusterResponse).GetCluster()
				fmt.Fprintf(w, "cluster %s added: %s, Kubernetes %s\n", cl.GetName(), cl.GetServer(), cl.GetVersion())
			})
		},
	}
	add.Flags().StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file, or - for stdin; credentials must be embedded")
	add.Flags().StringVar(&kctx, "context", "", "context to use (default: the current one)")
	list := &cobra.Command{
		Use: "list", Short: "List clusters", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.ListClusters(ctx, &deployv1.ListClustersRequest{})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAME\tSERVER\tVERSION\tAPPS\tADDED")
				for _, cl := range m.(*deployv1.ListClustersResponse).GetClusters() {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", cl.GetName(), cl.GetServer(), cl.GetVersion(), cl.GetApps(), when(cl.GetCreateTime()))
				}
				_ = tw.Flush()
			})
		},
	}
	remove := &cobra.Command{
		Use: "remove NAME", Short: "Forget a cluster no app targets", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.RemoveCluster(ctx, &deployv1.RemoveClusterRequest{Name: args[0]})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "cluster %s removed\n", args[0]) })
		},
	}
	cmd.AddCommand(add, list, remove)
	return cmd
}

// maxKubeconfig is the deploy API's limit on a kubeconfig.
const maxKubeconfig = 1 << 20

// readKubeconfig reads the kubeconfig file path, or stdin for "-" (as in
// `kubectl config view --raw --minify | vigil clusters add NAME
// --kubeconfig -`, with no copy of the credentials on disk).
func readKubeconfig(path string, stdin io.Reader) ([]byte, error) {
	if path != "-" {
		return os.ReadFile(path)
	}
	b, err := io.ReadAll(io.LimitReader(stdin, maxKubeconfig+1))
	switch {
	case err != nil:
		return nil, fmt.Errorf("read stdin: %w", err)
	case len(b) == 0:
		return nil, errors.New("empty stdin")
	case len(b) > maxKubeconfig:
		return nil, errors.New("larger than 1 MiB")
	}
	return b, nil
}
