package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"
	"sigs.k8s.io/yaml"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

func sourcesCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use: "sources", Aliases: []string{"source"},
		Short: "Webhook sources admins declare: any JSON turned into alerts by a mapping, each at its own URL",
	}
	c.register(cmd)
	cmd.AddCommand(sourcesList(&c), sourcesGet(&c), sourcesCreate(&c), sourcesUpdate(&c), sourcesDelete(&c), sourcesTest(&c))
	return cmd
}

// sourceFlags are a source's fields settable from the command line; its
// HMAC secret is read from stdin or the environment, never taken from
// the command line.
type sourceFlags struct {
	typ, team, auth, mapping string
	secretFromStdin          bool
	secretFromEnv            string
}

func (f *sourceFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	if create {
		fl.StringVar(&f.typ, "type", "generic", "how its bodies are read: generic (a mapping)")
	}
	fl.StringVar(&f.team, "team", "", "the team whose alerts it may send (none: every team's)")
	fl.StringVar(&f.auth, "auth", "", "how its sender proves who it is: hmac (X-Vigil-Signature with its secret; the default with a secret) or key (a Vigil API key of its team)")
	fl.StringVar(&f.mapping, "mapping", "", "YAML or JSON file of the mapping (docs/sources/generic.md)")
	fl.BoolVar(&f.secretFromStdin, "hmac-secret-from-stdin", false, "read the HMAC secret from stdin (prompted without echo on a terminal)")
	fl.StringVar(&f.secretFromEnv, "hmac-secret-from-env", "", "environment variable holding the HMAC secret")
}

func (f *sourceFlags) secret(cmd *cobra.Command) (string, error) {
	in := osInput()
	if r := cmd.InOrStdin(); r != os.Stdin {
		in.stdin, in.terminal = r, func() bool { return false }
	}
	switch {
	case f.secretFromStdin && f.secretFromEnv != "":
		return "", errors.New("--hmac-secret-from-stdin and --hmac-secret-from-env: give one")
	case f.secretFromStdin:
		return in.fromStdin("hmac secret")
	case f.secretFromEnv != "":
		v, ok := in.lookupEnv(f.secretFromEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("--hmac-secret-from-env: environment variable %s is not set or empty", f.secretFromEnv)
		}
		return v, nil
	}
	return "", nil
}

// readMapping reads a mapping file, YAML or JSON.
func readMapping(path string) (*gatewayv1.Mapping, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--mapping: %w", err)
	}
	js, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("--mapping %s: %w", path, err)
	}
	m := &gatewayv1.Mapping{}
	if err := protojson.Unmarshal(js, m); err != nil {
		return nil, fmt.Errorf("--mapping %s: %w (want alerts, labels, annotations, status, starts_at, ends_at, generator_url)", path, err)
	}
	return m, nil
}

// source is the source named name as the flags describe it.
func (f *sourceFlags) source(name, secret string) (*gatewayv1.Source, error) {
	s := &gatewayv1.Source{Name: name, Type: f.typ, Team: f.team, Auth: f.auth}
	if s.Auth == "" {
		s.Auth = "key"
		if secret != "" {
			s.Auth = "hmac"
		}
	}
	if f.mapping != "" {
		m, err := readMapping(f.mapping)
		if err != nil {
			return nil, err
		}
		s.Config = &gatewayv1.Source_Generic{Generic: &gatewayv1.GenericSource{Mapping: m}}
	}
	return s, nil
}

func sourcesList(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the declared sources", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.ListSources(ctx, &gatewayv1.ListSourcesRequest{})
			}, func(w io.Writer, m proto.Message) { printSources(w, m.(*gatewayv1.ListSourcesResponse).GetSources()) })
		},
	}
}

func sourcesGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a source and its mapping (its secret is never shown)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.GetSource(ctx, &gatewayv1.GetSourceRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) { printSource(w, m.(*gatewayv1.GetSourceResponse).GetSource()) })
		},
	}
}

func sourcesCreate(c *clientFlags) *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{
		Use:   "create NAME --mapping FILE [--team T] (--hmac-secret-from-stdin | --hmac-secret-from-env VAR | --auth key)",
		Short: "Declare a source; its mapping is compiled first, and refused with CEL's message if it does not compile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := f.secret(cmd)
			if err != nil {
				return err
			}
			if f.mapping == "" {
				return errors.New("--mapping: a generic source needs one (docs/sources/generic.md)")
			}
			src, err := f.source(args[0], secret)
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.CreateSource(ctx, &gatewayv1.CreateSourceRequest{Source: src, Secret: secret})
			}, func(w io.Writer, m proto.Message) { printSource(w, m.(*gatewayv1.CreateSourceResponse).GetSource()) })
		},
	}
	f.register(cmd, true)
	return cmd
}

// sourcePaths are the update paths of the flags set on the command line.
var sourcePaths = map[string]string{"team": "team", "auth": "auth", "mapping": "generic"}

func sourcesUpdate(c *clientFlags) *cobra.Command {
	var f sourceFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--mapping FILE] [--team T] [--auth key|hmac] [--hmac-secret-from-stdin | --hmac-secret-from-env VAR]",
		Short: "Change a source, or rotate its secret (the old one is refused from then on)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			secret, err := f.secret(cmd)
			if err != nil {
				return err
			}
			mask := &fieldmaskpb.FieldMask{}
			for _, flag := range slices.Sorted(maps.Keys(sourcePaths)) {
				if cmd.Flags().Changed(flag) {
					mask.Paths = append(mask.Paths, sourcePaths[flag])
				}
			}
			if len(mask.GetPaths()) == 0 && secret == "" {
				return errors.New("nothing to change: give the flags of the fields to change, or a secret")
			}
			src, err := f.source(args[0], "")
			if err != nil {
				return err
			}
			src.Auth = f.auth
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.UpdateSource(ctx, &gatewayv1.UpdateSourceRequest{Source: src, UpdateMask: mask, Secret: secret})
			}, func(w io.Writer, m proto.Message) { printSource(w, m.(*gatewayv1.UpdateSourceResponse).GetSource()) })
		},
	}
	f.register(cmd, false)
	return cmd
}

func sourcesDelete(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a source: its URL answers 404 from then on", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.DeleteSource(ctx, &gatewayv1.DeleteSourceRequest{Name: args[0]})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "Source %s deleted.\n", args[0]) })
		},
	}
}

func sourcesTest(c *clientFlags) *cobra.Command {
	var (
		mapping, body string
		headers       []string
	)
	cmd := &cobra.Command{
		Use:   "test [NAME] --body FILE|- [--mapping FILE] [--header NAME=VALUE]...",
		Short: "Show the alerts a body would make, through a source's mapping or the one in --mapping (nothing is sent)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &gatewayv1.TestSourceRequest{Headers: map[string]string{}}
			if len(args) == 1 {
				req.Name = args[0]
			}
			if mapping != "" {
				m, err := readMapping(mapping)
				if err != nil {
					return err
				}
				req.Generic = &gatewayv1.GenericSource{Mapping: m}
			}
			if req.GetName() == "" && req.GetGeneric() == nil {
				return errors.New("name a source, or give --mapping")
			}
			var b []byte
			var err error
			if body == "-" {
				b, err = io.ReadAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(body)
			}
			if err != nil {
				return fmt.Errorf("--body: %w", err)
			}
			req.Body = string(b)
			for _, h := range headers {
				k, v, ok := strings.Cut(h, "=")
				if !ok {
					return fmt.Errorf("--header %q: want NAME=VALUE", h)
				}
				req.Headers[k] = v
			}
			return call(cmd.Context(), c, gatewayv1.NewSourceServiceClient, func(ctx context.Context, cl gatewayv1.SourceServiceClient) (proto.Message, error) {
				return cl.TestSource(ctx, req)
			}, func(w io.Writer, m proto.Message) { printTested(w, m.(*gatewayv1.TestSourceResponse)) })
		},
	}
	cmd.Flags().StringVar(&mapping, "mapping", "", "YAML or JSON file of a mapping to try instead of the source's")
	cmd.Flags().StringVar(&body, "body", "", "file of the body as the sender sends it, or - for stdin")
	cmd.Flags().StringArrayVar(&headers, "header", nil, "a request header the mapping reads, NAME=VALUE (repeatable)")
	_ = cmd.MarkFlagRequired("body")
	return cmd
}

func printSources(w io.Writer, ss []*gatewayv1.Source) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tTYPE\tTEAM\tAUTH\tPATH")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", s.GetName(), s.GetType(), orDash(s.GetTeam()), s.GetAuth(), s.GetPath())
	}
	_ = tw.Flush()
}

func printSource(w io.Writer, s *gatewayv1.Source) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", s.GetName())
	fmt.Fprintf(tw, "Type:\t%s\n", s.GetType())
	fmt.Fprintf(tw, "Team:\t%s\n", orDash(s.GetTeam()))
	fmt.Fprintf(tw, "Auth:\t%s\n", s.GetAuth())
	if s.GetAuth() == "hmac" {
		secret := "none"
		if s.GetHasSecret() {
			secret = "set (never shown)"
		}
		fmt.Fprintf(tw, "Secret:\t%s\n", secret)
	}
	fmt.Fprintf(tw, "Path:\tPOST %s\n", s.GetPath())
	fmt.Fprintf(tw, "Created:\t%s by %s\n", when(s.GetCreateTime()), s.GetCreatedBy())
	fmt.Fprintf(tw, "Updated:\t%s by %s\n", when(s.GetUpdateTime()), s.GetUpdatedBy())
	_ = tw.Flush()
	if m := s.GetGeneric().GetMapping(); m != nil {
		js, err := protojson.MarshalOptions{UseProtoNames: true}.Marshal(m)
		if err == nil {
			if y, err := yaml.JSONToYAML(js); err == nil {
				fmt.Fprintf(w, "Mapping:\n%s", indent(string(y)))
			}
		}
	}
}

func indent(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = "  " + l
		}
	}
	return strings.Join(lines, "")
}

func printTested(w io.Writer, r *gatewayv1.TestSourceResponse) {
	if len(r.GetAlerts()) == 0 {
		fmt.Fprintln(w, "No alerts: the body makes none (answered 202, nothing stored).")
	}
	for i, a := range r.GetAlerts() {
		status := "firing"
		if a.GetStatus() == typesv1.AlertStatus_ALERT_STATUS_RESOLVED {
			status = "resolved"
		}
		fmt.Fprintf(w, "Alert %d: %s, fingerprint %s, starts %s\n", i, status, a.GetFingerprint(), when(a.GetStartsAt()))
		for _, k := range slices.Sorted(maps.Keys(a.GetLabels())) {
			fmt.Fprintf(w, "  label %s=%q\n", k, a.GetLabels()[k])
		}
		for _, k := range slices.Sorted(maps.Keys(a.GetAnnotations())) {
			fmt.Fprintf(w, "  annotation %s=%q\n", k, a.GetAnnotations()[k])
		}
		if a.GetGeneratorUrl() != "" {
			fmt.Fprintf(w, "  link %s\n", a.GetGeneratorUrl())
		}
	}
	for _, p := range r.GetProblems() {
		fmt.Fprintf(w, "Refused by the gateway: %s\n", p)
	}
}
