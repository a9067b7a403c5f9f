package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/fieldmaskpb"

	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
)

func channelsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "channels", Aliases: []string{"channel"}, Short: "Where notifications go: Telegram chats, Slack channels, LINE, email, webhooks"}
	c.register(cmd)
	cmd.AddCommand(channelsList(&c), channelsGet(&c), channelsCreate(&c), channelsUpdate(&c), channelsDelete(&c), channelsTest(&c))
	return cmd
}

// channelFlags are a channel's fields settable from the command line;
// its credential is read from a file, stdin or the environment, never
// taken from the command line.
type channelFlags struct {
	ch                notifyv1.Channel
	email             notifyv1.EmailSettings
	credentialFile    string
	credentialFromEnv string
	noTest            bool
}

func (f *channelFlags) register(cmd *cobra.Command, create bool) {
	fl := cmd.Flags()
	if create {
		fl.StringVar(&f.ch.Kind, "kind", "", "telegram, slack, line, email or webhook")
	}
	fl.StringVar(&f.ch.Target, "target", "", "Telegram chat id, Slack channel id (C0123ABCD), LINE user/group/room id, email addresses (comma-separated) or webhook URL")
	fl.StringVar(&f.ch.Language, "language", "", "language of its messages: en (default) or zh-TW")
	fl.StringVar(&f.ch.TimeZone, "time-zone", "", "IANA time zone its messages show times in, e.g. Asia/Taipei (default UTC)")
	fl.StringVar(&f.ch.Templates, "templates", "", "the template set its messages are drawn with: a subdirectory of notify's VIGIL_NOTIFY_TEMPLATES_DIR (default: the default set)")
	fl.StringVar(&f.ch.Team, "team", "", "the team whose channel it is (an operator's own team; none: Vigil-wide, admins only)")
	fl.StringVar(&f.ch.User, "user", "", "the user it reaches: a personal channel, used to reach that person (yours, unless you are an admin)")
	fl.StringVar(&f.ch.ApiUrl, "api-url", "", "Telegram, Slack, LINE: the API's base URL (default the provider's)")
	fl.StringVar(&f.email.SmtpHost, "smtp-host", "", "email: the SMTP server")
	fl.Int32Var(&f.email.SmtpPort, "smtp-port", 0, "email: its port (default 587 for starttls, 465 for tls, 25 for none)")
	fl.StringVar(&f.email.Tls, "smtp-tls", "", "email: starttls (default), tls or none (only to a relay on this host)")
	fl.StringVar(&f.email.Username, "smtp-username", "", "email: the user to authenticate as; the credential is the password")
	fl.StringVar(&f.email.From, "from", "", `email: the sender, e.g. "Vigil <vigil@example.com>"`)
	fl.StringVar(&f.email.CaFile, "smtp-ca-file", "", "email: a PEM file on notify's host of CAs to trust instead of the system's")
	fl.StringVar(&f.credentialFile, "credential-file", "", "file holding the credential (bot token, LINE channel access token, SMTP password, webhook secret), or - for stdin (prompted without echo on a terminal)")
	fl.StringVar(&f.credentialFromEnv, "credential-from-env", "", "environment variable holding the credential")
	fl.BoolVar(&f.noTest, "no-test", false, "store it without sending a test message first")
}

// credential is the credential the flags point at ("" for none).
func (f *channelFlags) credential(cmd *cobra.Command) (string, error) {
	in := osInput()
	if r := cmd.InOrStdin(); r != os.Stdin {
		in.stdin, in.terminal = r, func() bool { return false }
	}
	switch {
	case f.credentialFile != "" && f.credentialFromEnv != "":
		return "", errors.New("--credential-file and --credential-from-env: give one")
	case f.credentialFile == "-":
		return in.fromStdin("credential")
	case f.credentialFile != "":
		v, err := in.fromFile(f.credentialFile)
		if err != nil {
			return "", fmt.Errorf("--credential-file: %w", err)
		}
		return v, nil
	case f.credentialFromEnv != "":
		v, ok := in.lookupEnv(f.credentialFromEnv)
		if !ok || v == "" {
			return "", fmt.Errorf("--credential-from-env: environment variable %s is not set or empty", f.credentialFromEnv)
		}
		return v, nil
	}
	return "", nil
}

// channel is the channel named name as the flags describe it.
func (f *channelFlags) channel(name string) *notifyv1.Channel {
	ch := proto.Clone(&f.ch).(*notifyv1.Channel)
	ch.Name = name
	if proto.Size(&f.email) > 0 {
		ch.Email = proto.Clone(&f.email).(*notifyv1.EmailSettings)
	}
	return ch
}

func channelsList(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "list", Short: "List the channels you manage (an admin: all, the environment's too)", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.ListChannels(ctx, &notifyv1.ListChannelsRequest{})
			}, func(w io.Writer, m proto.Message) { printChannels(w, m.(*notifyv1.ListChannelsResponse).GetChannels()) })
		},
	}
}

func channelsGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get NAME", Short: "Show a channel (its credential is never shown)", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.GetChannel(ctx, &notifyv1.GetChannelRequest{Name: args[0]})
			}, func(w io.Writer, m proto.Message) { printChannel(w, m.(*notifyv1.GetChannelResponse).GetChannel()) })
		},
	}
}

func channelsCreate(c *clientFlags) *cobra.Command {
	var f channelFlags
	cmd := &cobra.Command{
		Use:   "create NAME --kind KIND --target TARGET [--credential-file FILE|- | --credential-from-env VAR]",
		Short: "Add a channel; it is sent a test message first, and refused if that fails (unless --no-test)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cred, err := f.credential(cmd)
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.CreateChannel(ctx, &notifyv1.CreateChannelRequest{Channel: f.channel(args[0]), Credential: cred, NoTest: f.noTest})
			}, func(w io.Writer, m proto.Message) { printChannel(w, m.(*notifyv1.CreateChannelResponse).GetChannel()) })
		},
	}
	f.register(cmd, true)
	return cmd
}

// channelPaths are the update paths of the flags set on the command
// line, in the API's names.
var channelPaths = map[string]string{
	"target": "target", "language": "language", "time-zone": "time_zone", "team": "team", "user": "user", "api-url": "api_url",
	"templates": "templates",
	"smtp-host": "email", "smtp-port": "email", "smtp-tls": "email", "smtp-username": "email", "from": "email", "smtp-ca-file": "email",
}

func channelsUpdate(c *clientFlags) *cobra.Command {
	var f channelFlags
	cmd := &cobra.Command{
		Use:   "update NAME [--target T] [--language L] [--time-zone Z] [--templates SET] [--team T] [--user U] [--credential-file FILE|- | --credential-from-env VAR]",
		Short: "Change a channel or rotate its credential; the changed channel is sent a test message first (unless --no-test)",
		Long: "Changes the fields whose flags are given. Email settings change together: give all of them " +
			"(--smtp-host, --smtp-port, --smtp-tls, --smtp-username, --from, --smtp-ca-file) when changing any.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cred, err := f.credential(cmd)
			if err != nil {
				return err
			}
			mask := &fieldmaskpb.FieldMask{}
			for flag, path := range channelPaths {
				if cmd.Flags().Changed(flag) && !slices.Contains(mask.GetPaths(), path) {
					mask.Paths = append(mask.Paths, path)
				}
			}
			if len(mask.GetPaths()) == 0 && cred == "" {
				return errors.New("nothing to change: give the flags of the fields to change, or a credential")
			}
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.UpdateChannel(ctx, &notifyv1.UpdateChannelRequest{Channel: f.channel(args[0]), UpdateMask: mask, Credential: cred, NoTest: f.noTest})
			}, func(w io.Writer, m proto.Message) { printChannel(w, m.(*notifyv1.UpdateChannelResponse).GetChannel()) })
		},
	}
	f.register(cmd, false)
	return cmd
}

func channelsDelete(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "delete NAME", Short: "Delete a channel: nothing more is sent to it", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.DeleteChannel(ctx, &notifyv1.DeleteChannelRequest{Name: args[0]})
			}, func(w io.Writer, _ proto.Message) { fmt.Fprintf(w, "Channel %s deleted.\n", args[0]) })
		},
	}
}

func channelsTest(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "test NAME", Short: "Send a test message through a channel and show the provider's answer", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var res *notifyv1.TestChannelResponse
			err := call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				r, err := cl.TestChannel(ctx, &notifyv1.TestChannelRequest{Name: args[0]})
				res = r
				return r, err
			}, func(w io.Writer, m proto.Message) {
				if r := m.(*notifyv1.TestChannelResponse); r.GetDelivered() {
					fmt.Fprintf(w, "Test message delivered to %s (message %s).\n", args[0], orDash(r.GetMessageId()))
				}
			})
			if err != nil || res.GetDelivered() {
				return err
			}
			// The exit status says it failed, for scripts.
			return fmt.Errorf("test message not delivered to %s: %s", args[0], res.GetError())
		},
	}
}

func printChannels(w io.Writer, cs []*notifyv1.Channel) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tKIND\tTARGET\tTEAM\tUSER\tLANGUAGE\tTIME ZONE\tSOURCE")
	for _, c := range cs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.GetName(), c.GetKind(), c.GetTarget(), orDash(c.GetTeam()), orDash(c.GetUser()),
			orDash(c.GetLanguage()), orDash(c.GetTimeZone()), c.GetSource())
	}
	_ = tw.Flush()
}

func printChannel(w io.Writer, c *notifyv1.Channel) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", c.GetName())
	fmt.Fprintf(tw, "Kind:\t%s\n", c.GetKind())
	fmt.Fprintf(tw, "Target:\t%s\n", c.GetTarget())
	fmt.Fprintf(tw, "Team:\t%s\n", orDash(c.GetTeam()))
	fmt.Fprintf(tw, "User:\t%s\n", orDash(c.GetUser()))
	fmt.Fprintf(tw, "Language:\t%s\n", orDash(c.GetLanguage()))
	fmt.Fprintf(tw, "Time zone:\t%s\n", orDash(c.GetTimeZone()))
	if c.GetTemplates() != "" {
		fmt.Fprintf(tw, "Templates:\t%s\n", c.GetTemplates())
	}
	if e := c.GetEmail(); e != nil {
		fmt.Fprintf(tw, "SMTP:\t%s:%d (%s), user %s, from %s\n", e.GetSmtpHost(), e.GetSmtpPort(), orDash(e.GetTls()), orDash(e.GetUsername()), e.GetFrom())
	}
	if c.GetApiUrl() != "" {
		fmt.Fprintf(tw, "API URL:\t%s\n", c.GetApiUrl())
	}
	cred := "none"
	if c.GetHasCredential() {
		cred = "set (never shown)"
	}
	fmt.Fprintf(tw, "Credential:\t%s\n", cred)
	fmt.Fprintf(tw, "Source:\t%s\n", c.GetSource())
	if c.GetSource() == "api" {
		fmt.Fprintf(tw, "Created:\t%s by %s\n", when(c.GetCreateTime()), c.GetCreatedBy())
		fmt.Fprintf(tw, "Updated:\t%s by %s\n", when(c.GetUpdateTime()), c.GetUpdatedBy())
	}
	_ = tw.Flush()
}
