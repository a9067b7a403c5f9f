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
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	gatewayv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/gateway/v1"
)

func usersCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "users", Aliases: []string{"user"}, Short: "Manage the people who log in: create, list, show, update, set passwords, link chat accounts"}
	c.register(cmd)
	cmd.AddCommand(usersCreate(&c), usersList(&c), usersGet(&c), usersUpdate(&c), usersPasswd(&c),
		usersLink(&c), usersUnlink(&c), usersLinkCode(&c))
	return cmd
}

func parseRole(s string) (gatewayv1.Role, error) {
	v, ok := gatewayv1.Role_value["ROLE_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("--role %q: want admin, operator or viewer", s)
	}
	return gatewayv1.Role(v), nil
}

func usersCreate(c *clientFlags) *cobra.Command {
	var (
		role, email string
		teamNames   []string
		fromStdin   bool
	)
	cmd := &cobra.Command{
		Use:   "create NAME --role admin|operator|viewer",
		Short: "Create a user; the password is asked twice, or read from stdin",
		Example: `  vigil users create alice --role operator --team shop --team payments --email alice@example.com
  printf '%s\n' "$PASSWORD" | vigil users create ci-bot --role viewer --password-stdin`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := parseRole(role)
			if err != nil {
				return err
			}
			pw, err := newSecrets(cmd.InOrStdin(), cmd.ErrOrStderr(), fromStdin).readNew("Password for " + args[0] + ": ")
			if err != nil {
				return err
			}
			req := &gatewayv1.CreateUserRequest{
				User:     &gatewayv1.User{Name: args[0], Email: email, Role: r, Teams: teamNames},
				Password: pw,
			}
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.CreateUser(ctx, req)
			}, func(w io.Writer, m proto.Message) { printUser(w, m.(*gatewayv1.CreateUserResponse).GetUser()) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "admin, operator or viewer")
	fl.StringSliceVar(&teamNames, "team", nil, "a team whose apps the user reaches (repeatable or comma-separated)")
	fl.StringVar(&email, "email", "", "email address")
	fl.BoolVar(&fromStdin, "password-stdin", false, "read the password from stdin (for scripts)")
	_ = cmd.MarkFlagRequired("role")
	return cmd
}

func usersList(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List users", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.ListUsers(ctx, &gatewayv1.ListUsersRequest{})
			}, func(w io.Writer, m proto.Message) { printUsers(w, m.(*gatewayv1.ListUsersResponse).GetUsers()) })
		},
	}
}

func usersGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a user", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.GetUser(ctx, &gatewayv1.GetUserRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) { printUser(w, m.(*gatewayv1.GetUserResponse).GetUser()) })
		},
	}
}

func usersUpdate(c *clientFlags) *cobra.Command {
	var (
		role, email                 string
		teamNames                   []string
		clearTeams, disable, enable bool
	)
	cmd := &cobra.Command{
		Use:   "update NAME [--role R] [--team T... | --clear-teams] [--email E] [--disable | --enable]",
		Short: "Change a user's role, teams, email or whether they may log in; only the flags given change",
		Example: `  vigil users update alice --role admin
  vigil users update bob --team shop --team search
  vigil users update carol --disable`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			u := &gatewayv1.User{Name: args[0]}
			var paths []string
			fl := cmd.Flags()
			if fl.Changed("role") {
				r, err := parseRole(role)
				if err != nil {
					return err
				}
				u.Role, paths = r, append(paths, "role")
			}
			if fl.Changed("team") || clearTeams {
				u.Teams, paths = teamNames, append(paths, "teams")
			}
			if fl.Changed("email") {
				u.Email, paths = email, append(paths, "email")
			}
			if disable || enable {
				u.Disabled, paths = disable, append(paths, "disabled")
			}
			if len(paths) == 0 {
				return errors.New("nothing to change: give --role, --team, --clear-teams, --email, --disable or --enable")
			}
			req := &gatewayv1.UpdateUserRequest{User: u, UpdateMask: &fieldmaskpb.FieldMask{Paths: paths}}
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.UpdateUser(ctx, req)
			}, func(w io.Writer, m proto.Message) { printUser(w, m.(*gatewayv1.UpdateUserResponse).GetUser()) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&role, "role", "", "admin, operator or viewer")
	fl.StringSliceVar(&teamNames, "team", nil, "the user's teams, replacing the ones they have (repeatable or comma-separated)")
	fl.BoolVar(&clearTeams, "clear-teams", false, "remove the user from every team")
	fl.StringVar(&email, "email", "", "email address (\"\" to remove it)")
	fl.BoolVar(&disable, "disable", false, "stop the user logging in, end their sessions, and stop the API keys they made")
	fl.BoolVar(&enable, "enable", false, "let a disabled user log in again (their API keys work again)")
	cmd.MarkFlagsMutuallyExclusive("team", "clear-teams")
	cmd.MarkFlagsMutuallyExclusive("disable", "enable")
	return cmd
}

func usersPasswd(c *clientFlags) *cobra.Command {
	var fromStdin bool
	cmd := &cobra.Command{
		Use:   "passwd [NAME]",
		Short: "Change your password (current and new asked), or as an admin another user's (new asked)",
		Long: `Change your own password: the current one and the new one are asked. An admin
giving another user's NAME is asked the new password only. With
--password-stdin, stdin has one password a line: the current one first when
it is your own.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conn, err := c.dial()
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			who, err := gatewayv1.NewAuthServiceClient(conn).WhoAmI(ctx, &gatewayv1.WhoAmIRequest{})
			if err != nil {
				return rpcError(err)
			}
			me := who.GetPrincipal()
			req := &gatewayv1.SetPasswordRequest{}
			if len(args) > 0 {
				req.Name = args[0]
			}
			own := me.GetKind() == "user" && (req.Name == "" || req.Name == me.GetName())
			if req.Name == "" && !own {
				return fmt.Errorf("give the user's NAME: you are calling as %s:%s, not as a user", me.GetKind(), me.GetName())
			}
			if own {
				req.Name = me.GetName()
			}
			in := newSecrets(cmd.InOrStdin(), cmd.ErrOrStderr(), fromStdin)
			if own {
				if req.CurrentPassword, err = in.read("Current password: "); err != nil {
					return err
				}
			}
			if req.Password, err = in.readNew("New password for " + req.Name + ": "); err != nil {
				return err
			}
			// Typing the passwords may outlast the first call's timeout.
			ctx, cancel = context.WithTimeout(cmd.Context(), 30*time.Second)
			defer cancel()
			if _, err := gatewayv1.NewUserServiceClient(conn).SetPassword(ctx, req); err != nil {
				return rpcError(err)
			}
			if own {
				fmt.Fprintln(cmd.ErrOrStderr(), "Password changed; your other sessions have ended.")
			} else {
				fmt.Fprintf(cmd.ErrOrStderr(), "Password of %s changed; their sessions have ended.\n", req.Name)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&fromStdin, "password-stdin", false, "read the passwords from stdin, one a line (for scripts)")
	return cmd
}

func parseChatProvider(s string) (gatewayv1.ChatProvider, error) {
	v, ok := gatewayv1.ChatProvider_value["CHAT_PROVIDER_"+strings.ToUpper(s)]
	if !ok || v == 0 {
		return 0, fmt.Errorf("--provider %q: want telegram, slack or line", s)
	}
	return gatewayv1.ChatProvider(v), nil
}

func usersLink(c *clientFlags) *cobra.Command {
	var telegram, slack, line string
	cmd := &cobra.Command{
		Use:   "link NAME --telegram ID | --slack TEAM_ID:USER_ID | --line USER_ID",
		Short: "Link a chat account to a user (admins); it replaces the user's previous one, and the account's previous user",
		Long: `Link a chat account to a user, so that what the account does in a chat
(pressing an approval button) is done as the user, with their role and teams.
Admins only; a user links their own with ` + "`vigil users link-code`" + `.

A Telegram account is the user's numeric id (ask @userinfobot). A Slack
account is the workspace's id and the member's id (in Slack: the member's
profile, "Copy member ID"; the workspace's in the browser's address bar). A
LINE account is the user's id, U and 32 hex digits (a webhook event's
source.userId; LINE shows it nowhere in the app).`,
		Example: `  vigil users link alice --telegram 123456789
  vigil users link alice --slack T0123ABCD:U0456EFGH
  vigil users link alice --line U4af4980629d0b6b1a5f2e2c8e1f6a3b2`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := &gatewayv1.LinkChatIdentityRequest{Name: args[0], Provider: gatewayv1.ChatProvider_CHAT_PROVIDER_TELEGRAM, ExternalId: telegram}
			if slack != "" {
				req.Provider, req.ExternalId = gatewayv1.ChatProvider_CHAT_PROVIDER_SLACK, slack
			}
			if line != "" {
				req.Provider, req.ExternalId = gatewayv1.ChatProvider_CHAT_PROVIDER_LINE, line
			}
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.LinkChatIdentity(ctx, req)
			}, func(w io.Writer, m proto.Message) { printUser(w, m.(*gatewayv1.LinkChatIdentityResponse).GetUser()) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&telegram, "telegram", "", "the Telegram user id (numeric)")
	fl.StringVar(&slack, "slack", "", "the Slack account, TEAM_ID:USER_ID")
	fl.StringVar(&line, "line", "", "the LINE user id (U and 32 hex digits)")
	cmd.MarkFlagsMutuallyExclusive("telegram", "slack", "line")
	cmd.MarkFlagsOneRequired("telegram", "slack", "line")
	return cmd
}

func usersUnlink(c *clientFlags) *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:     "unlink NAME --provider telegram|slack|line",
		Short:   "Unlink a user's chat account (admins: anyone's; a user: their own)",
		Example: `  vigil users unlink alice --provider telegram`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			p, err := parseChatProvider(provider)
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.UnlinkChatIdentity(ctx, &gatewayv1.UnlinkChatIdentityRequest{Name: args[0], Provider: p})
			}, func(w io.Writer, m proto.Message) { printUser(w, m.(*gatewayv1.UnlinkChatIdentityResponse).GetUser()) })
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "telegram, slack or line")
	_ = cmd.MarkFlagRequired("provider")
	return cmd
}

func usersLinkCode(c *clientFlags) *cobra.Command {
	var provider string
	cmd := &cobra.Command{
		Use:   "link-code --provider telegram|slack|line",
		Short: "Get a one-time code that links your chat account when you send it to Vigil's bot",
		Long: `Get a one-time code for yourself (signed in with ` + "`vigil login`" + `): send it to
Vigil's bot from your chat account, as the instruction says, and that account
is linked to you. It works once, for 10 minutes, and is shown only now.`,
		Example: `  vigil users link-code --provider telegram
  vigil users link-code --provider slack
  vigil users link-code --provider line`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := parseChatProvider(provider)
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, gatewayv1.NewUserServiceClient, func(ctx context.Context, cl gatewayv1.UserServiceClient) (proto.Message, error) {
				return cl.CreateChatLinkCode(ctx, &gatewayv1.CreateChatLinkCodeRequest{Provider: p})
			}, func(w io.Writer, m proto.Message) {
				r := m.(*gatewayv1.CreateChatLinkCodeResponse)
				fmt.Fprintf(w, "Code:     %s\nExpires:  %s\n\n%s\n", r.GetCode(), when(r.GetExpireTime()), r.GetInstruction())
			})
		},
	}
	cmd.Flags().StringVar(&provider, "provider", "", "telegram, slack or line")
	_ = cmd.MarkFlagRequired("provider")
	return cmd
}

func printUsers(w io.Writer, us []*gatewayv1.User) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tROLE\tTEAMS\tEMAIL\tDISABLED\tLAST LOGIN")
	for _, u := range us {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%t\t%s\n", u.GetName(), short(u.GetRole().String(), "ROLE_"),
			teams(u.GetTeams(), false), orDash(u.GetEmail()), u.GetDisabled(), when(u.GetLastLoginTime()))
	}
	_ = tw.Flush()
}

func printUser(w io.Writer, u *gatewayv1.User) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", u.GetName())
	fmt.Fprintf(tw, "Role:\t%s\n", short(u.GetRole().String(), "ROLE_"))
	fmt.Fprintf(tw, "Teams:\t%s\n", teams(u.GetTeams(), false))
	fmt.Fprintf(tw, "Email:\t%s\n", orDash(u.GetEmail()))
	fmt.Fprintf(tw, "Disabled:\t%t\n", u.GetDisabled())
	fmt.Fprintf(tw, "Created:\t%s\n", when(u.GetCreateTime()))
	fmt.Fprintf(tw, "Updated:\t%s\n", when(u.GetUpdateTime()))
	fmt.Fprintf(tw, "Last login:\t%s\n", when(u.GetLastLoginTime()))
	_ = tw.Flush()
	printChatAccounts(w, u)
}

// printChatAccounts lists the Telegram and Slack accounts linked to u.
func printChatAccounts(w io.Writer, u *gatewayv1.User) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if len(u.GetChatIdentities()) == 0 {
		fmt.Fprintf(tw, "Chat accounts:\t-\n")
	}
	for i, id := range u.GetChatIdentities() {
		label := ""
		if i == 0 {
			label = "Chat accounts:"
		}
		fmt.Fprintf(tw, "%s\t%s %s (linked %s)\n", label, short(id.GetProvider().String(), "CHAT_PROVIDER_"), id.GetExternalId(), when(id.GetLinkTime()))
	}
	_ = tw.Flush()
}
