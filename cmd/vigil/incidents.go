package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	notifyv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/notify/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/pkg/subject"
)

// clientFlags reach the gateway's gRPC API.
type clientFlags struct {
	addr, token, output string
	tokenFile           string
	// in reads the token; the process's environment and files when nil.
	in *input
}

func (c *clientFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&c.addr, "addr", env("VIGIL_ADDR", "127.0.0.1:9090"), "gateway gRPC address (VIGIL_ADDR)")
	cmd.PersistentFlags().StringVarP(&c.output, "output", "o", "table", "table or json")
	cmd.PersistentFlags().StringVar(&c.tokenFile, "token-file", env("VIGIL_TOKEN_FILE", ""), "file holding the API token, instead of VIGIL_TOKEN (VIGIL_TOKEN_FILE)")
}

func (c *clientFlags) dial() (*grpc.ClientConn, error) {
	in := c.in
	if in == nil {
		in = osInput()
	}
	token, err := in.token(c.tokenFile)
	if err != nil {
		return nil, err
	}
	// No token given: the session `vigil login` stored for --addr.
	c.token = token
	auth, err := c.credentials(c.token)
	if err != nil {
		return nil, err
	}
	if c.output != "table" && c.output != "json" {
		return nil, fmt.Errorf("--output %q: want table or json", c.output)
	}
	return grpc.NewClient(c.addr,
		append(auth, grpc.WithTransportCredentials(insecure.NewCredentials()))...,
	)
}

// bearer sends the token on every call. Plaintext is accepted because the
// gateway listens on loopback by default; put TLS in front of it elsewhere.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearer) RequireTransportSecurity() bool { return false }

func incidentsCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "incidents", Aliases: []string{"incident"}, Short: "List, show, acknowledge and resolve incidents"}
	c.register(cmd)

	var statuses, priorities []string
	var app, team, text string
	var limit int32
	list := &cobra.Command{
		Use:   "list",
		Short: "List incidents, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &monitorv1.ListIncidentsRequest{PageSize: limit, App: app, Team: team, Text: text}
			for _, s := range statuses {
				v, ok := typesv1.IncidentStatus_value["INCIDENT_STATUS_"+strings.ToUpper(s)]
				if !ok {
					return fmt.Errorf("--status %q: want open, acknowledged or resolved", s)
				}
				req.Statuses = append(req.Statuses, typesv1.IncidentStatus(v))
			}
			for _, s := range priorities {
				p, err := parsePriority(s)
				if err != nil {
					return fmt.Errorf("--priority: %w", err)
				}
				req.Priorities = append(req.Priorities, p)
			}
			return call(cmd.Context(), &c, monitorv1.NewIncidentServiceClient, func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.ListIncidents(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				printIncidents(w, m.(*monitorv1.ListIncidentsResponse).GetIncidents())
			})
		},
	}
	list.Flags().StringSliceVar(&statuses, "status", nil, "only these states: open, acknowledged, resolved")
	list.Flags().Int32Var(&limit, "limit", 50, "how many")
	list.Flags().StringSliceVar(&priorities, "priority", nil, "only these priorities: P0, P1, P2, P3")
	list.Flags().StringVar(&app, "app", "", "only this app's incidents")
	list.Flags().StringVar(&team, "team", "", "only this team's incidents (the owner Vigil knows)")
	list.Flags().StringVar(&text, "text", "", "only incidents whose title, app, team, namespace or a group label (name=value) holds this text, case aside")

	var alertsLimit int32
	get := &cobra.Command{
		Use: "get ID", Short: "Show an incident with its most recently seen alerts", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, monitorv1.NewIncidentServiceClient, func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.GetIncident(ctx, &monitorv1.GetIncidentRequest{Id: args[0], AlertsPageSize: alertsLimit})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*monitorv1.GetIncidentResponse)
				printIncident(w, resp.GetIncident())
				printEscalation(w, resp.GetEscalation())
				if tok := resp.GetAlertsNextPageToken(); tok != "" {
					fmt.Fprintf(w, "\nMore: vigil alerts list --incident %s --page-token %s\n", args[0], tok)
				}
			})
		},
	}
	get.Flags().Int32Var(&alertsLimit, "alerts", 50, "how many of its alerts to show (at most 500)")
	ack := &cobra.Command{
		Use: "ack ID", Aliases: []string{"acknowledge"}, Short: "Acknowledge an incident", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, monitorv1.NewIncidentServiceClient, func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.AcknowledgeIncident(ctx, &monitorv1.AcknowledgeIncidentRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) {
				printIncident(w, m.(*monitorv1.AcknowledgeIncidentResponse).GetIncident())
			})
		},
	}
	resolve := &cobra.Command{
		Use: "resolve ID", Short: "Resolve an incident by hand", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), &c, monitorv1.NewIncidentServiceClient, func(ctx context.Context, cl monitorv1.IncidentServiceClient) (proto.Message, error) {
				return cl.ResolveIncident(ctx, &monitorv1.ResolveIncidentRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) {
				printIncident(w, m.(*monitorv1.ResolveIncidentResponse).GetIncident())
			})
		},
	}
	cmd.AddCommand(list, get, ack, resolve, analyzeCommand(&c), messagesCommand(&c))
	cmd.AddCommand(incidentEscalationCommands(&c)...)
	return cmd
}

// messagesCommand is `vigil incidents messages ID`: what notify told
// the channels of the incident.
func messagesCommand(c *clientFlags) *cobra.Command {
	var limit int32
	var pageToken string
	cmd := &cobra.Command{
		Use: "messages ID", Short: "List the messages Vigil sent about an incident, per channel, with links to them in the chat", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, notifyv1.NewChannelServiceClient, func(ctx context.Context, cl notifyv1.ChannelServiceClient) (proto.Message, error) {
				return cl.ListIncidentMessages(ctx, &notifyv1.ListIncidentMessagesRequest{IncidentId: args[0], PageSize: limit, PageToken: pageToken})
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*notifyv1.ListIncidentMessagesResponse)
				printMessages(w, resp.GetMessages())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	cmd.Flags().Int32Var(&limit, "limit", 50, "how many (at most 500)")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the next page, from a previous list")
	return cmd
}

func printMessages(w io.Writer, ms []*notifyv1.IncidentMessage) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHANNEL\tKIND\tSUBJECT\tSTATUS\tWHEN\tLINK")
	for _, m := range ms {
		st := m.GetStatus()
		if m.GetError() != "" {
			st += ": " + m.GetError()
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", m.GetChannel(), orDash(m.GetKind()), m.GetSubject(), st, when(m.GetCreateTime()), orDash(m.GetLink()))
	}
	_ = tw.Flush()
}

// call makes one RPC with a client newClient builds and prints the
// response as a table or, with -o json, as JSON.
func call[C any](ctx context.Context, c *clientFlags, newClient func(grpc.ClientConnInterface) C,
	do func(context.Context, C) (proto.Message, error),
	table func(io.Writer, proto.Message),
) error {
	conn, err := c.dial()
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	resp, err := do(ctx, newClient(conn))
	if err != nil {
		return rpcError(err)
	}
	return c.print(resp, table)
}

func (c *clientFlags) print(resp proto.Message, table func(io.Writer, proto.Message)) error {
	if c.output == "json" {
		b, err := protojson.MarshalOptions{Multiline: true, UseProtoNames: true}.Marshal(resp)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(os.Stdout, string(b))
		return err
	}
	table(os.Stdout, resp)
	return nil
}

// rpcError turns a gRPC status into what a person reads: the code, the
// message and each bad field.
func rpcError(err error) error {
	st := status.Convert(err)
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %s", st.Code(), st.Message())
	for _, v := range server.Violations(st) {
		fmt.Fprintf(&b, "\n  %s: %s", v.Field, v.Description)
	}
	return errors.New(b.String())
}

func printIncidents(w io.Writer, incs []*typesv1.Incident) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tPRIORITY\tSEVERITY\tFIRING\tTEAM\tOPENED\tTITLE")
	for _, i := range incs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\t%s\n", i.GetId(), statusOf(i),
			orDash(priorityName(i.GetPriority())), short(i.GetSeverity().String(), "SEVERITY_"), i.GetFiringCount(), i.GetAlertCount(),
			orDash(i.GetTeam()), when(i.GetOpenedAt()), i.GetTitle())
	}
	_ = tw.Flush()
}

func printIncident(w io.Writer, i *typesv1.Incident) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", i.GetId())
	fmt.Fprintf(tw, "Title:\t%s\n", i.GetTitle())
	fmt.Fprintf(tw, "Status:\t%s\n", statusOf(i))
	if i.GetFlapping() {
		fmt.Fprintf(tw, "Flapping:\tsince %s: its alerts' changes are not announced until they settle (docs/noise.md)\n", when(i.GetFlappingSince()))
	}
	fmt.Fprintf(tw, "Severity:\t%s\n", short(i.GetSeverity().String(), "SEVERITY_"))
	if i.GetPriority() != typesv1.Priority_PRIORITY_UNSPECIFIED {
		fmt.Fprintf(tw, "Priority:\t%s\n", priorityName(i.GetPriority()))
	}
	fmt.Fprintf(tw, "Group:\t%s\n", i.GetGroupKey())
	printSubject(tw, i.GetSubject(), i.GetTeam())
	fmt.Fprintf(tw, "Opened:\t%s\n", when(i.GetOpenedAt()))
	if i.GetAcknowledgedAt() != nil {
		fmt.Fprintf(tw, "Acknowledged:\t%s by %s\n", when(i.GetAcknowledgedAt()), i.GetAcknowledgedBy())
	}
	if i.GetResolvedAt() != nil {
		fmt.Fprintf(tw, "Resolved:\t%s by %s\n", when(i.GetResolvedAt()), i.GetResolvedBy())
	}
	fmt.Fprintf(tw, "Alerts:\t%d firing of %d\n", i.GetFiringCount(), i.GetAlertCount())
	printHeldBy(tw, i.GetAlerts())
	_ = tw.Flush()
	if len(i.GetAlerts()) == 0 {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FINGERPRINT\tSTATUS\tCOUNT\tLAST SEEN\tLABELS")
	for _, a := range i.GetAlerts() {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", a.GetAlert().GetFingerprint(), short(a.GetAlert().GetStatus().String(), "ALERT_STATUS_"),
			a.GetCount(), when(a.GetLastSeenAt()), labels(a.GetAlert().GetLabels()))
	}
	_ = tw.Flush()
}

// printHeldBy names the rollouts that held alerts of the page before they
// opened or joined the incident (deploy quiet): evidence of its cause.
func printHeldBy(tw io.Writer, as []*typesv1.IncidentAlert) {
	seen := map[string]bool{}
	for _, a := range as {
		h := a.GetHeldBy()
		if h == nil || seen[h.GetDeploymentId()] {
			continue
		}
		seen[h.GetDeploymentId()] = true
		fmt.Fprintf(tw, "Deploy:\t%s of %s, revision %d (%s); its alerts were held until %s\n",
			h.GetDeploymentId(), h.GetApp(), h.GetRevision(), strings.ReplaceAll(h.GetOutcome(), "_", " "), when(h.GetUntil()))
	}
}

// statusOf is i's status as people read it: "open (flapping)" while its
// alerts flap.
func statusOf(i *typesv1.Incident) string {
	s := short(i.GetStatus().String(), "INCIDENT_STATUS_")
	if i.GetFlapping() {
		s += " (flapping)"
	}
	return s
}

// printSubject says what an incident is about and whose it is, and why
// (tw's rows "Subject:", "Owner:", "Labels disagree:").
func printSubject(tw io.Writer, s *typesv1.Subject, team string) {
	if s == nil {
		return
	}
	fmt.Fprintf(tw, "Subject:\t%s\n", subject.Describe(s))
	why := map[typesv1.Ownership]string{
		typesv1.Ownership_OWNERSHIP_APP_NAMESPACE:     "the namespace Vigil made for app " + s.GetApp(),
		typesv1.Ownership_OWNERSHIP_APP_LABEL:         "the alerts name no namespace; their app label names app " + s.GetApp(),
		typesv1.Ownership_OWNERSHIP_NAMESPACE_MAPPING: "an admin mapped the namespace (vigil namespaces list)",
		typesv1.Ownership_OWNERSHIP_NONE:              "nothing Vigil knows claims it: admins and the default team answer for it",
	}[s.GetOwnership()]
	fmt.Fprintf(tw, "Owner:\tteam %s (%s)\n", orDash(team), why)
	if s.GetMismatch() != "" {
		fmt.Fprintf(tw, "Labels disagree:\t%s (not believed)\n", s.GetMismatch())
	}
}

func short(s, prefix string) string { return strings.ToLower(strings.TrimPrefix(s, prefix)) }

func when(t *timestamppb.Timestamp) string {
	if t == nil {
		return "-"
	}
	return t.AsTime().Local().Format(time.DateTime)
}

func labels(m map[string]string) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + m[k]
	}
	return strings.Join(parts, ",")
}
