package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func loginCommand() *cobra.Command {
	var (
		c         clientFlags
		user      string
		fromStdin bool
	)
	cmd := &cobra.Command{
		Use:   "login",
		Short: "Log in to the gateway and keep the session for the next commands",
		Long: `Log in to the gateway at --addr as a user, and store the session in the
user's config directory (vigil/sessions/ADDRESS.json, readable by its owner
only). The commands that follow use it, refreshing it as needed, unless
VIGIL_TOKEN is set.`,
		Example: `  vigil login --user alice
  printf '%s\n' "$PASSWORD" | vigil login --user ci --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := c.checkOutput(); err != nil {
				return err
			}
			in := newSecrets(cmd.InOrStdin(), cmd.ErrOrStderr(), fromStdin)
			if user == "" {
				if fromStdin {
					return errors.New("--user: required with --password-stdin")
				}
				var err error
				if user, err = in.line("User: "); err != nil {
					return fmt.Errorf("%w: give the user name with --user", err)
				}
				if user == "" {
					return errors.New("no user name given")
				}
			}
			password, err := in.read("Password: ")
			if err != nil {
				return err
			}
			path, err := sessionPath(c.addr)
			if err != nil {
				return err
			}
			conn, err := dialAnonymous(c.addr)
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			resp, err := gatewayv1.NewAuthServiceClient(conn).Login(ctx, &gatewayv1.LoginRequest{Username: user, Password: password})
			if err != nil {
				return rpcError(err)
			}
			if name := resp.GetUser().GetName(); name != "" {
				user = name
			}
			if err := newSession(c.addr, user, resp.GetTokens()).save(path); err != nil {
				return err
			}
			// The tokens stay in the file, out of the output.
			shown := &gatewayv1.LoginResponse{User: resp.GetUser(), Tokens: &gatewayv1.Tokens{
				AccessExpireTime:  resp.GetTokens().GetAccessExpireTime(),
				RefreshExpireTime: resp.GetTokens().GetRefreshExpireTime(),
			}}
			return c.print(shown, func(w io.Writer, _ proto.Message) {
				fmt.Fprintf(w, "Logged in to %s as %s (%s) until %s.\n", c.addr, user,
					short(resp.GetUser().GetRole().String(), "ROLE_"), when(resp.GetTokens().GetRefreshExpireTime()))
			})
		},
	}
	c.register(cmd)
	cmd.Flags().StringVarP(&user, "user", "u", "", "user name (asked when not given)")
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (for scripts)")
	return cmd
}

func logoutCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "logout",
		Short: "End the session stored for the gateway and forget it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a, err := storedSession(c.addr, time.Now)
			if err != nil {
				// Nothing to revoke: no session, or one that has ended.
				return forgetSession(cmd.ErrOrStderr(), c.addr)
			}
			err = revoke(cmd.Context(), c.addr, a)
			if ferr := forgetSession(cmd.ErrOrStderr(), c.addr); ferr != nil {
				return ferr
			}
			if err != nil && !gone(err) {
				return fmt.Errorf("session forgotten here, but the gateway did not end it (it works until %s): %w",
					a.current().RefreshExpireTime.Local().Format(time.DateTime), rpcError(err))
			}
			return nil
		},
	}
	c.register(cmd)
	return cmd
}

// revoke ends the session a on the gateway. Logout needs a valid access
// token as well as the refresh token, so a is refreshed first when needed.
func revoke(ctx context.Context, addr string, a *sessionAuth) error {
	conn, err := dialAnonymous(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	token, err := a.token(ctx, conn, "")
	if err != nil {
		return err
	}
	_, err = gatewayv1.NewAuthServiceClient(conn).Logout(withBearer(ctx, token),
		&gatewayv1.LogoutRequest{RefreshToken: a.current().RefreshToken})
	return err
}

// gone reports whether err says the session had already ended.
func gone(err error) bool {
	switch status.Code(err) {
	case codes.Unauthenticated, codes.NotFound:
		return true
	}
	return false
}

// forgetSession removes the session stored for addr.
func forgetSession(w io.Writer, addr string) error {
	path, err := sessionPath(addr)
	if err != nil {
		return err
	}
	err = os.Remove(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		fmt.Fprintf(w, "Not logged in to %s.\n", addr)
		return nil
	case err != nil:
		return fmt.Errorf("remove session: %w", err)
	}
	fmt.Fprintf(w, "Logged out of %s.\n", addr)
	return nil
}

func whoamiCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show who the gateway takes you for: user or key, role or scopes, teams",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), &c, gatewayv1.NewAuthServiceClient, func(ctx context.Context, cl gatewayv1.AuthServiceClient) (proto.Message, error) {
				return cl.WhoAmI(ctx, &gatewayv1.WhoAmIRequest{})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*gatewayv1.WhoAmIResponse)
				printPrincipal(w, resp.GetPrincipal())
				if u := resp.GetUser(); u != nil {
					printChatAccounts(w, u)
				}
			})
		},
	}
	c.register(cmd)
	return cmd
}

func printPrincipal(w io.Writer, p *gatewayv1.Principal) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Kind:\t%s\n", p.GetKind())
	fmt.Fprintf(tw, "Name:\t%s\n", p.GetName())
	if p.GetKeyId() != "" {
		fmt.Fprintf(tw, "Key ID:\t%s\n", p.GetKeyId())
	}
	if p.GetRole() != gatewayv1.Role_ROLE_UNSPECIFIED {
		fmt.Fprintf(tw, "Role:\t%s\n", short(p.GetRole().String(), "ROLE_"))
	}
	if len(p.GetScopes()) > 0 {
		fmt.Fprintf(tw, "Scopes:\t%s\n", scopes(p.GetScopes()))
	}
	fmt.Fprintf(tw, "Teams:\t%s\n", teams(p.GetTeams(), p.GetAllTeams()))
	_ = tw.Flush()
}

func teams(ts []string, all bool) string {
	switch {
	case all:
		return "all"
	case len(ts) == 0:
		return "-"
	}
	return strings.Join(ts, ",")
}
