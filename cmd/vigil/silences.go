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
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

func silencesCommand() *cobra.Command {
	var c clientFlags
	cmd := &cobra.Command{Use: "silences", Aliases: []string{"silence"}, Short: "Mute alerts: create, list, show and expire silences"}
	c.register(cmd)
	cmd.AddCommand(silencesCreate(&c), silencesList(&c), silencesGet(&c), silencesExpire(&c))
	return cmd
}

// silenceFlags are the flags of `silences create`.
type silenceFlags struct {
	matchers, windows       []string
	duration                time.Duration
	start, end, comment, tz string
}

func silencesCreate(c *clientFlags) *cobra.Command {
	var f silenceFlags
	cmd := &cobra.Command{
		Use:   "create --matcher MATCHER... (--duration D | --end TIME)",
		Short: "Mute the alerts that match every matcher, for a while or inside weekly windows",
		Example: `  vigil silences create --matcher 'alertname="HighLatency"' --matcher 'namespace="shop"' --duration 2h --comment 'deploying'
  vigil silences create --matcher 'job="backup"' --end 2026-12-31T00:00:00Z \
      --schedule-tz Europe/Berlin --window 'sat,sun 22:00-02:00' --window 'mon-fri 12:00-12:30'`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := f.request()
			if err != nil {
				return err
			}
			return call(cmd.Context(), c, monitorv1.NewSilenceServiceClient, func(ctx context.Context, cl monitorv1.SilenceServiceClient) (proto.Message, error) {
				return cl.CreateSilence(ctx, req)
			}, func(w io.Writer, m proto.Message) { printSilence(w, m.(*monitorv1.CreateSilenceResponse).GetSilence()) })
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVar(&f.matchers, "matcher", nil, `Alertmanager matcher, e.g. alertname="X", severity!="info", pod=~"web-.*" (repeatable; an alert must match all)`)
	fl.DurationVar(&f.duration, "duration", 0, "how long it lasts from its start, e.g. 2h")
	fl.StringVar(&f.end, "end", "", "when it ends, RFC 3339 (instead of --duration)")
	fl.StringVar(&f.start, "start", "", "when it starts, RFC 3339 (default: now)")
	fl.StringVar(&f.comment, "comment", "", "why")
	fl.StringVar(&f.tz, "schedule-tz", "", "IANA time zone of the windows, e.g. Europe/Berlin (default UTC)")
	fl.StringArrayVar(&f.windows, "window", nil, "mute only inside this weekly window: '[DAYS ]HH:MM-HH:MM', DAYS like mon,tue or mon-fri, every day when left out; an end not after the start is on the next day (repeatable)")
	_ = cmd.MarkFlagRequired("matcher")
	cmd.MarkFlagsOneRequired("duration", "end")
	cmd.MarkFlagsMutuallyExclusive("duration", "end")
	return cmd
}

// request is the CreateSilenceRequest the flags describe. Matchers and
// windows are checked by the server, which names the bad one.
func (f *silenceFlags) request() (*monitorv1.CreateSilenceRequest, error) {
	req := &monitorv1.CreateSilenceRequest{Matchers: f.matchers, Comment: f.comment}
	if f.start != "" {
		t, err := time.Parse(time.RFC3339, f.start)
		if err != nil {
			return nil, fmt.Errorf("--start %q: want RFC 3339, like 2026-01-02T15:04:05Z", f.start)
		}
		req.StartsAt = timestamppb.New(t)
	}
	switch {
	case f.end != "":
		t, err := time.Parse(time.RFC3339, f.end)
		if err != nil {
			return nil, fmt.Errorf("--end %q: want RFC 3339, like 2026-01-02T15:04:05Z", f.end)
		}
		req.EndsAt = timestamppb.New(t)
	case f.duration > 0:
		req.Duration = durationpb.New(f.duration)
	default:
		return nil, errors.New("--duration: must be positive (or give --end)")
	}
	if f.tz != "" && len(f.windows) == 0 {
		return nil, errors.New("--schedule-tz: give the windows it applies to with --window")
	}
	if len(f.windows) > 0 {
		req.Schedule = &monitorv1.Schedule{TimeZone: f.tz}
		for _, s := range f.windows {
			w, err := parseWindow(s)
			if err != nil {
				return nil, fmt.Errorf("--window %q: %w", s, err)
			}
			req.Schedule.Windows = append(req.Schedule.Windows, w)
		}
	}
	return req, nil
}

var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// parseWindow reads "[DAYS ]HH:MM-HH:MM": DAYS is a comma-separated list
// of days (mon..sun) or ranges of them (mon-fri, fri-mon); every day when
// left out. The times are passed on as written: the server checks them.
func parseWindow(s string) (*monitorv1.Window, error) {
	fields := strings.Fields(s)
	var days, span string
	switch len(fields) {
	case 1:
		span = fields[0]
	case 2:
		days, span = fields[0], fields[1]
	default:
		return nil, errors.New("want '[DAYS ]HH:MM-HH:MM', e.g. 'mon,tue 22:00-02:00'")
	}
	start, end, ok := strings.Cut(span, "-")
	if !ok || start == "" || end == "" || strings.Contains(end, "-") {
		return nil, fmt.Errorf("%q: want HH:MM-HH:MM", span)
	}
	w := &monitorv1.Window{Start: start, End: end}
	if days == "" {
		return w, nil
	}
	for _, d := range strings.Split(days, ",") {
		from, to, isRange := strings.Cut(strings.ToLower(d), "-")
		i, j := dayIndex(from), dayIndex(to)
		switch {
		case !isRange && i >= 0:
			w.Days = append(w.Days, weekdays[i])
		case isRange && i >= 0 && j >= 0:
			for k := i; ; k = (k + 1) % 7 {
				w.Days = append(w.Days, weekdays[k])
				if k == j {
					break
				}
			}
		default:
			return nil, fmt.Errorf("%q: want days mon, tue, wed, thu, fri, sat, sun or a range such as mon-fri", d)
		}
	}
	return w, nil
}

func dayIndex(d string) int {
	for i, n := range weekdays {
		if n == d {
			return i
		}
	}
	return -1
}

// formatWindow is the inverse of parseWindow, for display.
func formatWindow(w *monitorv1.Window) string {
	span := w.GetStart() + "-" + w.GetEnd()
	if len(w.GetDays()) == 0 {
		return span
	}
	return strings.Join(w.GetDays(), ",") + " " + span
}

func silencesList(c *clientFlags) *cobra.Command {
	var (
		states    []string
		limit     int32
		pageToken string
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List silences, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req := &monitorv1.ListSilencesRequest{PageSize: limit, PageToken: pageToken}
			for _, s := range states {
				v, ok := monitorv1.SilenceState_value["SILENCE_STATE_"+strings.ToUpper(s)]
				if !ok || v == 0 {
					return fmt.Errorf("--state %q: want active, pending or expired", s)
				}
				req.States = append(req.States, monitorv1.SilenceState(v))
			}
			return call(cmd.Context(), c, monitorv1.NewSilenceServiceClient, func(ctx context.Context, cl monitorv1.SilenceServiceClient) (proto.Message, error) {
				return cl.ListSilences(ctx, req)
			}, func(w io.Writer, m proto.Message) {
				resp := m.(*monitorv1.ListSilencesResponse)
				printSilences(w, resp.GetSilences())
				printNextPage(w, resp.GetNextPageToken())
			})
		},
	}
	cmd.Flags().StringSliceVar(&states, "state", nil, "only these states: active, pending, expired")
	cmd.Flags().Int32Var(&limit, "limit", 50, "how many (at most 500)")
	cmd.Flags().StringVar(&pageToken, "page-token", "", "the next page, from a previous list")
	return cmd
}

func silencesGet(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "get ID", Short: "Show a silence", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, monitorv1.NewSilenceServiceClient, func(ctx context.Context, cl monitorv1.SilenceServiceClient) (proto.Message, error) {
				return cl.GetSilence(ctx, &monitorv1.GetSilenceRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) { printSilence(w, m.(*monitorv1.GetSilenceResponse).GetSilence()) })
		},
	}
}

func silencesExpire(c *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use: "expire ID", Short: "End a silence now: the next firing of its alerts goes through", Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return call(cmd.Context(), c, monitorv1.NewSilenceServiceClient, func(ctx context.Context, cl monitorv1.SilenceServiceClient) (proto.Message, error) {
				return cl.ExpireSilence(ctx, &monitorv1.ExpireSilenceRequest{Id: args[0]})
			}, func(w io.Writer, m proto.Message) { printSilence(w, m.(*monitorv1.ExpireSilenceResponse).GetSilence()) })
		},
	}
}

func printSilences(w io.Writer, ss []*monitorv1.Silence) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tSTARTS\tENDS\tCREATED BY\tMATCHERS\tSCHEDULE\tCOMMENT")
	for _, s := range ss {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.GetId(), short(s.GetState().String(), "SILENCE_STATE_"),
			when(s.GetStartsAt()), when(s.GetEndsAt()), s.GetCreatedBy(), strings.Join(s.GetMatchers(), ","),
			schedule(s.GetSchedule()), s.GetComment())
	}
	_ = tw.Flush()
}

func printSilence(w io.Writer, s *monitorv1.Silence) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", s.GetId())
	fmt.Fprintf(tw, "State:\t%s\n", short(s.GetState().String(), "SILENCE_STATE_"))
	fmt.Fprintf(tw, "Matchers:\t%s\n", strings.Join(s.GetMatchers(), ", "))
	fmt.Fprintf(tw, "Starts:\t%s\n", when(s.GetStartsAt()))
	fmt.Fprintf(tw, "Ends:\t%s\n", when(s.GetEndsAt()))
	if s.GetSchedule() != nil {
		fmt.Fprintf(tw, "Schedule:\t%s\n", schedule(s.GetSchedule()))
	}
	fmt.Fprintf(tw, "Created:\t%s by %s\n", when(s.GetCreatedAt()), s.GetCreatedBy())
	if s.GetExpiredAt() != nil {
		fmt.Fprintf(tw, "Expired:\t%s by %s\n", when(s.GetExpiredAt()), s.GetExpiredBy())
	}
	if s.GetComment() != "" {
		fmt.Fprintf(tw, "Comment:\t%s\n", s.GetComment())
	}
	_ = tw.Flush()
}

// schedule is a schedule in the --window syntax: "Europe/Berlin: sat,sun
// 22:00-02:00; 12:00-12:30"; "-" for none.
func schedule(s *monitorv1.Schedule) string {
	if s == nil {
		return "-"
	}
	tz := s.GetTimeZone()
	if tz == "" {
		tz = "UTC"
	}
	ws := make([]string, len(s.GetWindows()))
	for i, w := range s.GetWindows() {
		ws[i] = formatWindow(w)
	}
	return tz + ": " + strings.Join(ws, "; ")
}

// printNextPage tells how to get the next page, if there is one.
func printNextPage(w io.Writer, token string) {
	if token != "" {
		fmt.Fprintf(w, "\nMore: --page-token %s\n", token)
	}
}
