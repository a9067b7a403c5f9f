package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	deployv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/deploy/v1"
)

// namespacesCommand maps namespaces to teams: whose the incidents about
// workloads Vigil did not deploy are (an app's namespace is always its
// team's).
func namespacesCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use: "namespaces", Aliases: []string{"namespace", "ns"},
		Short: "Map namespaces Vigil did not create to the teams that own them (admin)",
		Long: `Incidents belong to the team that owns their subject. A namespace Vigil
made for an app belongs to the app's team; any other namespace belongs to
the team an admin maps it to here, or to no team (admins and the default
team reach those).`,
	}
	c.register(cmd)
	var (
		cluster, team string
		allowRepairs  bool
	)
	mapCmd := &cobra.Command{
		Use: "map NAMESPACE --team TEAM [--cluster CLUSTER]", Short: "Say which team owns a namespace", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if team == "" {
				return errors.New("--team: required")
			}
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.MapNamespace(ctx, &deployv1.MapNamespaceRequest{Mapping: &deployv1.NamespaceMapping{
					Cluster: cluster, Namespace: args[0], Team: team, AllowRepairs: allowRepairs,
				}})
			}, func(w io.Writer, m proto.Message) {
				mp := m.(*deployv1.MapNamespaceResponse).GetMapping()
				fmt.Fprintf(w, "namespace %s (%s) belongs to team %s\n", mp.GetNamespace(), clusterOrAny(mp.GetCluster()), mp.GetTeam())
				if mp.GetAllowRepairs() {
					fmt.Fprintln(w, "Vigil's repair identity may act in it (within the admission policy's limits)")
				}
			})
		},
	}
	mapCmd.Flags().StringVar(&team, "team", "", "the team that owns the namespace")
	mapCmd.Flags().StringVar(&cluster, "cluster", "", "the cluster (default: any cluster without a mapping of its own)")
	mapCmd.Flags().BoolVar(&allowRepairs, "allow-repairs", false, "let Vigil's repair identity act in the namespace (needs --cluster; never in a reserved namespace)")
	unmap := &cobra.Command{
		Use: "unmap NAMESPACE [--cluster CLUSTER]", Short: "Forget a namespace's team", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.UnmapNamespace(ctx, &deployv1.UnmapNamespaceRequest{Cluster: cluster, Namespace: args[0]})
			}, func(w io.Writer, _ proto.Message) {
				fmt.Fprintf(w, "namespace %s (%s) belongs to no team\n", args[0], clusterOrAny(cluster))
			})
		},
	}
	unmap.Flags().StringVar(&cluster, "cluster", "", "the cluster of the mapping (default: the mapping for any cluster)")
	list := &cobra.Command{
		Use: "list", Short: "List the namespaces mapped to teams", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), &c, deployv1.NewClusterServiceClient, func(ctx context.Context, cl deployv1.ClusterServiceClient) (proto.Message, error) {
				return cl.ListNamespaceMappings(ctx, &deployv1.ListNamespaceMappingsRequest{})
			}, func(w io.Writer, m proto.Message) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "NAMESPACE\tCLUSTER\tTEAM\tREPAIRS\tBY\tUPDATED")
				for _, mp := range m.(*deployv1.ListNamespaceMappingsResponse).GetMappings() {
					repairs := "-"
					if mp.GetAllowRepairs() {
						repairs = "allowed"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", mp.GetNamespace(), clusterOrAny(mp.GetCluster()), mp.GetTeam(), repairs, mp.GetUpdatedBy(), when(mp.GetUpdateTime()))
				}
				_ = tw.Flush()
			})
		},
	}
	cmd.AddCommand(mapCmd, unmap, list)
	return cmd
}

func clusterOrAny(c string) string {
	if c == "" {
		return "any cluster"
	}
	return "cluster " + c
}
