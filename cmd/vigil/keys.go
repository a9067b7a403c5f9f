package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func keysCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "keys", Aliases: []string{"key"}, Short: "Manage API keys for machines: create, list, revoke"}
	c.register(cmd)
	cmd.AddCommand(keysCreate(&c), keysList(&c), keysRevoke(&c))
	return cmd
}

func keysCreate(c *clientFlags) *cobra.Command {
	var (
		scopeNames      []string
		team, expiresAt string
	)
	cmd := &cobra.Command{
		Use:   "create NAME --scope ingest|read|operate|admin",
		Short: "Create an API key and print its secret, once",
		Example: `  vigil keys create alertmanager --scope ingest --team shop
  vigil keys create ci --scope read,operate --team shop --expires 90d
  VIGIL_TOKEN=$(vigil keys create ci --scope operate --team shop -o json | jq -r .secret)`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := &gatewayv1.Key{Name: args[0], Team: team}
			for _, s := range scopeNames {
				v, ok := gatewayv1.Scope_value["SCOPE_"+strings.ToUpper(strings.TrimSpace(s))]
				if !ok || v == 0 {
					return fmt.Errorf("--scope %q: want ingest, read, operate or admin", s)
				}
				key.Scopes = append(key.Scopes, gatewayv1.Scope(v))
			}
			if expiresAt != "" {
				at, err := parseExpiry(expiresAt, time.Now())
				if err != nil {
					return fmt.Errorf("--expires %q: %w", expiresAt, err)
				}
				key.ExpireTime = timestamppb.New(at)
			}
			return call(cmd.Context(), c, gatewayv1.NewKeyServiceClient, func(ctx context.Context, cl gatewayv1.KeyServiceClient) (proto.Message, error) {
				return cl.CreateKey(ctx, &gatewayv1.CreateKeyRequest{Key: key})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*gatewayv1.CreateKeyResponse)
				printKey(w, resp.GetKey())
				fmt.Fprintf(w, "\nSecret: %s\n\nKeep the secret now: it will not be shown again.\n", resp.GetSecret())
			})
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&scopeNames, "scope", nil, "what the key may do: ingest, read, operate, admin (repeatable or comma-separated)")
	fl.StringVar(&team, "team", "", "the team whose apps the key reaches (default: every team; admins only)")
	fl.StringVar(&expiresAt, "expires", "", "when the key stops working: RFC 3339, or a duration from now such as 720h or 90d (default: never for an admin's key, VIGIL_KEY_DEFAULT_TTL for others, at most VIGIL_KEY_MAX_TTL)")
	_ = cmd.MarkFlagRequired("scope")
	return cmd
}

// parseExpiry reads an RFC 3339 time, or a positive duration after now:
// Go's (720h) or whole days (90d).
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		if !t.After(now) {
			return time.Time{}, errors.New("in the past")
		}
		return t, nil
	}
	// parseInstant counts a duration back from now; expiries count it
	// forward.
	ago, err := parseInstant(s, now)
	if err != nil {
		return time.Time{}, errors.New("want RFC 3339 (2026-01-02T15:04:05Z) or a positive duration from now (720h, 90d)")
	}
	return now.Add(now.Sub(ago)), nil
}

func keysList(c *clientFlags) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use: "list", Short: "List the API keys you manage", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, gatewayv1.NewKeyServiceClient, func(ctx context.Context, cl gatewayv1.KeyServiceClient) (proto.Message, error) {
				return cl.ListKeys(ctx, &gatewayv1.ListKeysRequest{IncludeInactive: all})
			}, func(w io.Writer, m proto.Message) { printKeys(w, m.(*gatewayv1.ListKeysResponse).GetKeys()) })
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "revoked and expired keys too")
	return cmd
}

func keysRevoke(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "revoke ID", Short: "Revoke an API key: the next call made with it fails", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, gatewayv1.NewKeyServiceClient, func(ctx context.Context, cl gatewayv1.KeyServiceClient) (proto.Message, error) {
				return cl.RevokeKey(ctx, &gatewayv1.RevokeKeyRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) { printKey(w, m.(*gatewayv1.RevokeKeyResponse).GetKey()) })
		},
	}
}

func scopes(ss []gatewayv1.Scope) string {
	names := make([]string, len(ss))
	for i, s := range ss {
		names[i] = short(s.String(), "SCOPE_")
	}
	return strings.Join(names, ",")
}

func printKeys(w io.Writer, ks []*gatewayv1.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tNAME\tSCOPES\tTEAM\tPREFIX\tCREATED\tEXPIRES\tLAST USED\tREVOKED")
	for _, k := range ks {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.GetId(), k.GetName(), scopes(k.GetScopes()),
			keyTeam(k), k.GetPrefix(), when(k.GetCreateTime()), never(k.GetExpireTime()), when(k.GetLastUsedTime()), when(k.GetRevokeTime()))
	}
	_ = tw.Flush()
}

func printKey(w io.Writer, k *gatewayv1.Key) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", k.GetId())
	fmt.Fprintf(tw, "Name:\t%s\n", k.GetName())
	fmt.Fprintf(tw, "Scopes:\t%s\n", scopes(k.GetScopes()))
	fmt.Fprintf(tw, "Team:\t%s\n", keyTeam(k))
	fmt.Fprintf(tw, "Prefix:\t%s\n", orDash(k.GetPrefix()))
	fmt.Fprintf(tw, "Created:\t%s by %s\n", when(k.GetCreateTime()), orDash(k.GetCreatedBy()))
	fmt.Fprintf(tw, "Expires:\t%s\n", never(k.GetExpireTime()))
	fmt.Fprintf(tw, "Last used:\t%s\n", when(k.GetLastUsedTime()))
	if k.GetRevokeTime() != nil {
		fmt.Fprintf(tw, "Revoked:\t%s\n", when(k.GetRevokeTime()))
	}
	_ = tw.Flush()
}

// keyTeam is the team a key reaches, "all" for a key of every team.
func keyTeam(k *gatewayv1.Key) string {
	if k.GetTeam() == "" {
		return "all"
	}
	return k.GetTeam()
}

func never(t *timestamppb.Timestamp) string {
	if t == nil {
		return "never"
	}
	return when(t)
}
