package main

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/kubesecrets"
)

func secretsCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "secrets", Short: "Make the Secrets Vigil needs on Kubernetes (the Helm chart's hook runs this)"}
	var (
		o          kubesecrets.Options
		kubeconfig string
		only       string
	)
	ensure := &cobra.Command{
		Use:   "ensure",
		Short: "Create each missing Secret (keys, NATS and Postgres passwords) in --namespace; never change one that exists",
		Long: `Creates <prefix>-keys (the gateway's signing key, the analysis and repair
services' own keys, their public halves, the encryption key, the bootstrap
admin token), <prefix>-nats (a password per NATS user) and <prefix>-postgres
(a password per service role) where they do not exist, with new random
values. A Secret that exists is never changed, so running it on every
upgrade rotates nothing; one that lacks a key is an error. Runs in a pod
with its service account, or with --kubeconfig (KUBECONFIG). See ADR 14.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if only != "" {
				o.Only = strings.Split(only, ",")
			}
			rules := clientcmd.NewDefaultClientConfigLoadingRules()
			rules.ExplicitPath = kubeconfig
			cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, &clientcmd.ConfigOverrides{}).ClientConfig()
			if err != nil {
				return fmt.Errorf("kubernetes client: %w", err)
			}
			cs, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return err
			}
			outcomes, err := kubesecrets.Ensure(cmd.Context(), cs, o)
			for _, r := range outcomes {
				what := "exists, left as is"
				if r.Created {
					what = "created"
				}
				fmt.Fprintf(cmd.OutOrStdout(), "secret %s/%s: %s\n", o.Namespace, r.Name, what)
			}
			return err
		},
	}
	ensure.Flags().StringVar(&o.Namespace, "namespace", "", "the namespace of the Secrets (required)")
	ensure.Flags().StringVar(&o.Prefix, "prefix", "", "their names' start: <prefix>-keys, -nats, -postgres (the chart's full name; required)")
	ensure.Flags().StringVar(&only, "only", "", "comma-separated: which of keys, nats, postgres to make (default all; leave out those you bring)")
	ensure.Flags().BoolVar(&o.PostgresAdmin, "postgres-admin", false, "also a password for the Postgres superuser (key admin), for a Postgres the chart runs")
	ensure.Flags().StringVar(&kubeconfig, "kubeconfig", "", "a kubeconfig file (default: KUBECONFIG, ~/.kube/config, or the pod's service account)")
	_ = ensure.MarkFlagRequired("namespace")
	_ = ensure.MarkFlagRequired("prefix")
	cmd.AddCommand(ensure)
	return cmd
}
