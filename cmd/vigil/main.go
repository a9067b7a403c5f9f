// Command vigil runs Vigil — every service in one process (`vigil up`) or
// one per process (`vigil serve <service>`) — and is its command-line client
// (`vigil incidents list`, ...).
package main

import (
	"context"
	"errors"
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
	root.AddCommand(upCommand(), serveCommand(), incidentsCommand(), healthcheckCommand())
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "vigil:", err)
		var code exitCode
		if errors.As(err, &code) {
			return int(code)
		}
		return 1
	}
	return 0
}

// exitCode lets a command fail with a specific exit status.
type exitCode int

func (c exitCode) Error() string { return fmt.Sprintf("exit status %d", int(c)) }
