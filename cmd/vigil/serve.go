package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/vigil-ops/vigil/cmd/vigil/internal/app"
	"github.com/vigil-ops/vigil/cmd/vigil/internal/kubesecrets"
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
	if !slices.Contains(app.Services, service) {
		return fmt.Errorf("vigil serve %s: unknown service: want one of %v", service, app.Services)
	}
	if err := missingEnv(service); err != nil {
		return err
	}
	natsURL, dsn := os.Getenv("VIGIL_NATS_URL"), os.Getenv("VIGIL_DATABASE_URL")
	// Each service logs in to NATS as its own user, allowed only its own
	// subjects (bus.Roles).
	creds, err := natsCredentials(service)
	if err != nil {
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
	// Started before `vigil nats provision`, a service waits for the
	// streams, saying what to run, rather than exit and be restarted.
	if err := bus.WaitProvisioned(ctx, js, service, log); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	adminToken, err := secretEnv("VIGIL_ADMIN_TOKEN")
	if err != nil {
		return err
	}
	opts, err := appOptions(f, []string{service}, adminToken)
	if err != nil {
		return err
	}
	keys, err := serveSigningKeys()
	if err != nil {
		return err
	}
	serviceKey, peers, err := serviceIdentity(service)
	if err != nil {
		return err
	}
	a, err := app.New(ctx, opts, app.Deps{
		DatabaseURL: dsn, NATS: nc, JetStream: js, Logger: log, Registry: telemetry.NewRegistry(),
		Keys: keys, ServiceKey: serviceKey, Peers: peers, Reload: hangups(ctx), MonitorReload: hangups(ctx),
	})
	if err != nil {
		return fmt.Errorf("serve %s: %w", strings.ToLower(service), err)
	}
	return a.Run(ctx)
}

// requirement is what `vigil serve` cannot start a service without: one
// of vars set, for what.
type requirement struct {
	vars []string
	what string
}

// serveRequires is what `vigil serve service` needs, all of it; the rest
// has defaults or turns a feature off (docs/configuration.md, "What `vigil
// serve` needs", lists the same: TestServeRequirementsDocumented).
func serveRequires(service string) []requirement {
	r := []requirement{
		{[]string{"VIGIL_NATS_URL"}, "the NATS server, e.g. nats://nats:4222"},
		{[]string{"VIGIL_NATS_PASSWORD", "VIGIL_NATS_PASSWORD_FILE"}, "the password of the service's NATS user"},
		{[]string{"VIGIL_DATABASE_URL"}, "Postgres, as the service's own role, e.g. postgres://vigil_" + service + ":secret@postgres:5432/vigil"},
	}
	if service == "gateway" {
		r = append(r, requirement{[]string{"VIGIL_SIGNING_KEY", "VIGIL_SIGNING_KEY_FILE"}, "the key the gateway signs session tokens and assertions with (`vigil signing-key generate --env`)"})
	} else {
		r = append(r, requirement{[]string{"VIGIL_SIGNING_PUBLIC_KEY", "VIGIL_SIGNING_KEY", "VIGIL_SIGNING_KEY_FILE"}, "the gateway's public key, which verifies the calls it forwards (`vigil signing-key generate --env`)"})
	}
	if service == "deploy" {
		r = append(r, requirement{[]string{"VIGIL_ENCRYPTION_KEY", "VIGIL_ENCRYPTION_KEY_FILE"}, "the key app secrets and kubeconfigs are encrypted with (`openssl rand -base64 32`)"})
	}
	return r
}

// missingEnv names, in one error, every requirement of service not set.
func missingEnv(service string) error {
	var missing []string
	for _, r := range serveRequires(service) {
		if !slices.ContainsFunc(r.vars, func(v string) bool { return os.Getenv(v) != "" }) {
			missing = append(missing, fmt.Sprintf("  %s: %s", strings.Join(r.vars, " or "), r.what))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("vigil serve %s: missing %d of what it needs (docs/configuration.md, \"What vigil serve needs\"):\n%s",
		service, len(missing), strings.Join(missing, "\n"))
}

// serveSigningKeys are the gateway's signing key (VIGIL_SIGNING_KEY, the
// base64 Ed25519 seed, or VIGIL_SIGNING_KEY_FILE, PEM) or, for a service
// that only verifies the gateway's assertions, its public key
// (VIGIL_SIGNING_PUBLIC_KEY, base64); with the older keys still accepted
// (VIGIL_VERIFY_KEY_FILES). nil when none is set.
func serveSigningKeys() (*auth.KeySet, error) {
	others := os.Getenv("VIGIL_VERIFY_KEY_FILES")
	switch {
	case os.Getenv("VIGIL_SIGNING_KEY") != "":
		seed, ok := base64Key(os.Getenv("VIGIL_SIGNING_KEY"), ed25519.SeedSize)
		if !ok {
			return nil, errors.New("VIGIL_SIGNING_KEY: want 32 bytes in base64 (`vigil signing-key generate --env`, or `openssl rand -base64 32`)")
		}
		verify, err := verifyKeys(others)
		if err != nil {
			return nil, err
		}
		return auth.NewKeySet(ed25519.NewKeyFromSeed(seed), verify...), nil
	case os.Getenv("VIGIL_SIGNING_PUBLIC_KEY") != "":
		pub, ok := base64Key(os.Getenv("VIGIL_SIGNING_PUBLIC_KEY"), ed25519.PublicKeySize)
		if !ok {
			return nil, errors.New("VIGIL_SIGNING_PUBLIC_KEY: want the gateway's 32-byte Ed25519 public key in base64 (`vigil signing-key generate --env` prints it)")
		}
		verify, err := verifyKeys(others)
		if err != nil {
			return nil, err
		}
		return auth.NewVerifier(append(verify, pub)...), nil
	case os.Getenv("VIGIL_SIGNING_KEY_FILE") != "":
		return signingKeys(os.Getenv("VIGIL_SIGNING_KEY_FILE"), others)
	}
	return nil, nil
}

// peerServices are the services that call another on their own behalf,
// by the service they call: what `serve <called>` needs their public key
// for (VIGIL_<PEER>_PUBLIC_KEY).
var peerServices = map[string][]string{"deploy": {"analysis", "repair"}}

// publicKeyVar is the variable holding peer's public key.
func publicKeyVar(peer string) string { return "VIGIL_" + strings.ToUpper(peer) + "_PUBLIC_KEY" }

// serviceIdentity is service's own key (VIGIL_SERVICE_KEY, the base64
// Ed25519 seed, or VIGIL_SERVICE_KEY_FILE, PEM), for the calls it makes
// on its own behalf, and the public keys of the peers that may call it so
// (VIGIL_ANALYSIS_PUBLIC_KEY, VIGIL_REPAIR_PUBLIC_KEY for deploy).
func serviceIdentity(service string) (ed25519.PrivateKey, map[string]ed25519.PublicKey, error) {
	var key ed25519.PrivateKey
	switch {
	case os.Getenv("VIGIL_SERVICE_KEY") != "":
		seed, ok := base64Key(os.Getenv("VIGIL_SERVICE_KEY"), ed25519.SeedSize)
		if !ok {
			return nil, nil, errors.New("VIGIL_SERVICE_KEY: want 32 bytes in base64 (`vigil signing-key generate --env --service " + service + "`)")
		}
		key = ed25519.NewKeyFromSeed(seed)
	case os.Getenv("VIGIL_SERVICE_KEY_FILE") != "":
		_, priv, err := auth.ReadKeyFile(os.Getenv("VIGIL_SERVICE_KEY_FILE"))
		if err != nil {
			return nil, nil, fmt.Errorf("VIGIL_SERVICE_KEY_FILE: %w", err)
		}
		if priv == nil {
			return nil, nil, errors.New("VIGIL_SERVICE_KEY_FILE: want a private key (the service's own), not a public one")
		}
		key = priv
	}
	peers := map[string]ed25519.PublicKey{}
	for _, peer := range peerServices[service] {
		name := publicKeyVar(peer)
		v := strings.TrimSpace(os.Getenv(name))
		if v == "" {
			continue
		}
		pub, ok := base64Key(v, ed25519.PublicKeySize)
		if !ok {
			return nil, nil, fmt.Errorf("%s: want the %s service's 32-byte Ed25519 public key in base64 (`vigil signing-key generate --env --service %s` prints it)", name, peer, peer)
		}
		peers[peer] = pub
	}
	return key, peers, nil
}

// base64Key decodes an Ed25519 seed or public key given in base64; ok
// false unless it is size bytes.
func base64Key(v string, size int) ([]byte, bool) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
	return b, err == nil && len(b) == size
}

func verifyKeys(files string) ([]ed25519.PublicKey, error) {
	var out []ed25519.PublicKey
	for _, f := range strings.Split(files, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		pub, _, err := auth.ReadKeyFile(f)
		if err != nil {
			return nil, fmt.Errorf("VIGIL_VERIFY_KEY_FILES: %w", err)
		}
		p, _ := pub.(ed25519.PublicKey)
		out = append(out, p)
	}
	return out, nil
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
	var (
		public  string
		envOut  bool
		service string
	)
	gen := &cobra.Command{
		Use:   "generate [FILE]",
		Short: "Write a new Ed25519 private key (PEM, mode 0600) to FILE and its public key to --public, or print both for an env file (--env)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if service != "" && (!envOut || !slices.ContainsFunc(slices.Collect(maps.Values(peerServices)), func(p []string) bool { return slices.Contains(p, service) })) {
				return fmt.Errorf("--service %q: want --env and a service that calls another on its own behalf (analysis, repair)", service)
			}
			if envOut {
				seed, public, err := kubesecrets.NewKeyPair()
				if err != nil {
					return err
				}
				if service != "" {
					// A service's own identity: its key for its env,
					// the public key for the service it calls.
					u := strings.ToUpper(service)
					_, err = fmt.Fprintf(cmd.OutOrStdout(), "VIGIL_%s_SERVICE_KEY=%s\nVIGIL_%s_PUBLIC_KEY=%s\n", u, seed, u, public)
					return err
				}
				_, err = fmt.Fprintf(cmd.OutOrStdout(), "VIGIL_SIGNING_KEY=%s\nVIGIL_SIGNING_PUBLIC_KEY=%s\n", seed, public)
				return err
			}
			if len(args) != 1 {
				return errors.New("name the FILE to write, or print the keys with --env")
			}
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
	gen.Flags().BoolVar(&envOut, "env", false, "print VIGIL_SIGNING_KEY (the gateway's) and VIGIL_SIGNING_PUBLIC_KEY (monitor's and deploy's) for an env file")
	gen.Flags().StringVar(&service, "service", "", "with --env: a service's own identity instead (analysis): VIGIL_<SERVICE>_SERVICE_KEY for its VIGIL_SERVICE_KEY, VIGIL_<SERVICE>_PUBLIC_KEY for the service it calls (deploy)")
	cmd.AddCommand(gen)
	return cmd
}

// hangups delivers each SIGHUP until ctx ends: notify reads its routes
// file again (VIGIL_ROUTES_FILE), monitor its inhibition file
// (VIGIL_INHIBIT_FILE); each takes a channel of its own. One that comes while the last is being
// handled is merged with it.
func hangups(ctx context.Context) <-chan struct{} {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGHUP)
	out := make(chan struct{}, 1)
	go func() {
		defer signal.Stop(sig)
		for {
			select {
			case <-ctx.Done():
				return
			case <-sig:
				select {
				case out <- struct{}{}:
				default:
				}
			}
		}
	}()
	return out
}
