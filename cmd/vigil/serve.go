package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/pkg/auth"
	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/telemetry"
)

func serveCommand() *cobra.Command {
	var f serviceFlags
	cmd := &cobra.Command{
		Use:       "serve SERVICE",
		Short:     "Run one service against external NATS (VIGIL_NATS_URL, VIGIL_NATS_USER, VIGIL_NATS_PASSWORD[_FILE]) and Postgres (VIGIL_DATABASE_URL)",
		Args:      cobra.ExactArgs(1),
		ValidArgs: app.Services,
		RunE: func(cmd *cobra.Command, args []string) error {
			return serve(cmd.Context(), &f, args[0])
		},
	}
	f.register(cmd)
	return cmd
}

func serve(ctx context.Context, f *serviceFlags, service string) error {
	log, err := f.logger()
	if err != nil {
		return err
	}
	var missing []error
	natsURL, dsn := os.Getenv("VIGIL_NATS_URL"), os.Getenv("VIGIL_DATABASE_URL")
	if natsURL == "" {
		missing = append(missing, errors.New("VIGIL_NATS_URL: missing (e.g. nats://nats:4222)"))
	}
	if dsn == "" {
		missing = append(missing, errors.New("VIGIL_DATABASE_URL: missing (e.g. postgres://vigil:secret@postgres:5432/vigil)"))
	}
	// Each service logs in to NATS as its own user, allowed only its own
	// subjects (bus.Roles).
	creds, err := natsCredentials(service)
	if err != nil {
		missing = append(missing, err)
	}
	if err := errors.Join(missing...); err != nil {
		return err
	}
	shutdownTracing, err := telemetry.SetupTracing(ctx, "vigil-"+service, os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	nc, js, err := bus.Connect(ctx, natsURL, "vigil-"+service, creds, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	opts, err := appOptions(f, []string{service}, os.Getenv("VIGIL_ADMIN_TOKEN"))
	if err != nil {
		return err
	}
	keyFile := os.Getenv("VIGIL_SIGNING_KEY_FILE")
	if keyFile == "" {
		return errors.New("VIGIL_SIGNING_KEY_FILE: missing (the gateway's private key, PEM: `vigil signing-key generate FILE --public FILE.pub`; the other services need only the public one)")
	}
	keys, err := signingKeys(keyFile, os.Getenv("VIGIL_VERIFY_KEY_FILES"))
	if err != nil {
		return err
	}
	a, err := app.New(ctx, opts, app.Deps{DatabaseURL: dsn, NATS: nc, JetStream: js, Logger: log, Registry: telemetry.NewRegistry(), Keys: keys})
	if err != nil {
		return fmt.Errorf("serve %s: %w", strings.ToLower(service), err)
	}
	return a.Run(ctx)
}

// signingKeys loads the key in file and the verify-only keys in the
// comma-separated list others.
func signingKeys(file, others string) (*auth.KeySet, error) {
	var verify []string
	for _, f := range strings.Split(others, ",") {
		if f = strings.TrimSpace(f); f != "" {
			verify = append(verify, f)
		}
	}
	keys, err := auth.LoadKeySet(file, verify...)
	if err != nil {
		return nil, fmt.Errorf("VIGIL_SIGNING_KEY_FILE, VIGIL_VERIFY_KEY_FILES: %w", err)
	}
	return keys, nil
}

func signingKeyCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "signing-key", Short: "Make the key the gateway signs session tokens and assertions with"}
	var public string
	gen := &cobra.Command{
		Use:   "generate FILE",
		Short: "Write a new Ed25519 private key (PEM, mode 0600) to FILE, and its public key to --public",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			if err := auth.GenerateKeyFile(args[0]); err != nil {
				return err
			}
			if public == "" {
				return nil
			}
			return auth.WritePublicKeyFile(args[0], public)
		},
	}
	gen.Flags().StringVar(&public, "public", "", "also write the public key here, for the services that only verify")
	cmd.AddCommand(gen)
	return cmd
}
