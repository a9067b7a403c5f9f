// Command vigil runs Vigil — every service in one process (`vigil up`) or
// one per process (`vigil serve <service>`) — and is its command-line client
// (`vigil incidents list`, ...).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() { os.Exit(run()) }

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := &cobra.Command{
		Use:           "vigil",
		Short:         "Vigil: alerts in, incidents out, repairs with guardrails",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(upCommand(), serveCommand(), incidentsCommand(), appsCommand(), clustersCommand(), namespacesCommand(), healthcheckCommand(), benchCommand(),
		silencesCommand(), alertsCommand(), loginCommand(), logoutCommand(), whoamiCommand(), usersCommand(), keysCommand(), auditCommand(),
		signingKeyCommand(), secretsCommand(), natsCommand(), dbCommand(), analysesCommand(), playbooksCommand(), repairsCommand(), guardrailsCommand(),
		channelsCommand(), routesCommand(), oncallCommand(), escalationCommand(),
		inhibitionsCommand(),
		sourcesCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vigil:", err)
		return 1
	}
	return 0
}
