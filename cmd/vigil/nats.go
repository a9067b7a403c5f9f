package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/pkg/bus"
)

func natsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "nats",
		Short: "Set up an external NATS for `vigil serve`",
		Args:  cobra.NoArgs,
	}
	// Logging as the services log (VIGIL_LOG_LEVEL, VIGIL_LOG_FORMAT).
	f := serviceFlags{logLevel: env("VIGIL_LOG_LEVEL", "info"), logFmt: env("VIGIL_LOG_FORMAT", "json")}
	provision := &cobra.Command{
		Use:   "provision",
		Short: "Create or update Vigil's streams, as NATS user admin (VIGIL_NATS_URL, VIGIL_NATS_USER, VIGIL_NATS_PASSWORD[_FILE], VIGIL_STREAM_MAX_AGE, VIGIL_STREAM_MAX_BYTES)",
		Long: `Create or update Vigil's streams. Services may not: only the admin user
creates, updates or deletes streams. Run it before the services start and
after an upgrade (docker-compose runs it as nats-provision).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return natsProvision(cmd.Context(), &f) },
	}
	config := &cobra.Command{
		Use:   "config",
		Short: "Print the nats-server configuration with Vigil's users and permissions (deploy/nats/nats.conf)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(bus.Config())
			return err
		},
	}
	var secret string
	chartValues := &cobra.Command{
		Use:   "chart-values",
		Short: "Print values for the official NATS Helm chart: three servers with JetStream and Vigil's users, passwords from a Secret",
		Long: `Print values for the official NATS Helm chart (nats-io/k8s): three
servers with JetStream that fsync every write, and Vigil's users with the
permissions of deploy/nats/nats.conf, each password read from a key of the
Secret --secret (the one Vigil's chart reads as nats.existingSecret).
Generate it again after upgrading Vigil.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := cmd.OutOrStdout().Write(bus.ChartValues(secret))
			return err
		},
	}
	chartValues.Flags().StringVar(&secret, "secret", "vigil-nats", "the Secret with one key per NATS user (admin, gateway, ...) holding its password")
	cmd.AddCommand(provision, config, chartValues)
	return cmd
}

func natsProvision(ctx context.Context, f *serviceFlags) error {
	log, err := f.logger()
	if err != nil {
		return err
	}
	var errs []error
	url := os.Getenv("VIGIL_NATS_URL")
	if url == "" {
		errs = append(errs, errors.New("VIGIL_NATS_URL: missing (e.g. nats://nats:4222)"))
	}
	creds, err := natsCredentials(bus.UserAdmin)
	if err != nil {
		errs = append(errs, err)
	}
	streams, err := streamOptions()
	if err != nil {
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	nc, js, err := bus.Connect(ctx, url, "vigil-provision", creds, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	if err := bus.Provision(ctx, js, streams); err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "Streams provisioned: %d\n", len(bus.Streams))
	return nil
}
