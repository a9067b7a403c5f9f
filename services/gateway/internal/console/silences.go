package console

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	"github.com/vigil-ops/vigil/pkg/human"
	"github.com/vigil-ops/vigil/pkg/server"
)

// The silence API's methods whose buttons the pages show by the policy.
const (
	createSilenceMethod = "/vigil.monitor.v1.SilenceService/CreateSilence"
	expireSilenceMethod = "/vigil.monitor.v1.SilenceService/ExpireSilence"
)

// silenceStates are the list's tabs: a state of the API, or "all".
var silenceStates = map[string]monitorv1.SilenceState{
	"active": monitorv1.SilenceState_SILENCE_STATE_ACTIVE, "pending": monitorv1.SilenceState_SILENCE_STATE_PENDING,
	"expired": monitorv1.SilenceState_SILENCE_STATE_EXPIRED, "all": monitorv1.SilenceState_SILENCE_STATE_UNSPECIFIED,
}

// weekdays are the days a maintenance window starts on, as the API
// names them.
var weekdays = []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}

// silenceRow is a silence as the pages show it.
type silenceRow struct {
	*monitorv1.Silence
	State   string
	Windows []string
	// CanExpire: the policy lets the user expire silences and the
	// silence is of one of their teams (what ExpireSilence checks).
	CanExpire bool
}

func newSilenceRow(s *session, sil *monitorv1.Silence) silenceRow {
	row := silenceRow{Silence: sil, State: "unknown"}
	for name, st := range silenceStates {
		if st == sil.GetState() && st != monitorv1.SilenceState_SILENCE_STATE_UNSPECIFIED {
			row.State = name
		}
	}
	for _, w := range sil.GetSchedule().GetWindows() {
		span := w.GetStart() + "–" + w.GetEnd()
		if len(w.GetDays()) > 0 {
			span = strings.Join(w.GetDays(), ",") + " " + span
		}
		row.Windows = append(row.Windows, span)
	}
	row.CanExpire = row.State != "expired" && s.can(expireSilenceMethod, sil.GetTeam()) && s.p.Reaches(sil.GetTeam())
	return row
}

// silenceListData is the list's data.
type silenceListData struct {
	State       string
	Tabs        []string
	Rows        []silenceRow
	Next, First string
	Paged       bool
}

// silenceList is one page of the silences in one state (active unless
// asked), newest first, paged by the API.
func (c *Console) silenceList(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	if _, ok := silenceStates[state]; !ok {
		state = "active"
	}
	req := &monitorv1.ListSilencesRequest{PageSize: pageSize, PageToken: q.Get("page")}
	if st := silenceStates[state]; st != monitorv1.SilenceState_SILENCE_STATE_UNSPECIFIED {
		req.States = []monitorv1.SilenceState{st}
	}
	res, err := monitorv1.NewSilenceServiceClient(c.opts.Conn).ListSilences(withToken(r.Context(), s.access), req)
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := silenceListData{State: state, Tabs: []string{"active", "pending", "expired", "all"}, Paged: req.PageToken != ""}
	for _, sil := range res.GetSilences() {
		d.Rows = append(d.Rows, newSilenceRow(s, sil))
	}
	d.First = "/silences?state=" + state
	if t := res.GetNextPageToken(); t != "" {
		d.Next = d.First + "&page=" + url.QueryEscape(t)
	}
	c.render(w, r, s, "silences", http.StatusOK, d)
}

// silencePageData is one silence's page: the silence, and a search of
// the alerts it muted.
type silencePageData struct {
	silenceRow
	Muted string
}

// silencePage shows one silence: what it mutes, when, who created it and
// why, who expired it; the Expire button for those who may.
func (c *Console) silencePage(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	res, err := monitorv1.NewSilenceServiceClient(c.opts.Conn).GetSilence(withToken(r.Context(), s.access), &monitorv1.GetSilenceRequest{Id: r.PathValue("id")})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	sil := res.GetSilence()
	d := silencePageData{silenceRow: newSilenceRow(s, sil)}
	// Silenced alerts belong to no incident: only those who reach every
	// team may search them (ListAlerts).
	if s.p.AllTeams {
		muted := alertQuery{Filter: sil.GetMatchers(), States: []string{"silenced"}}
		d.Muted = "/alerts?" + muted.params().Encode()
	}
	c.render(w, r, s, "silence", http.StatusOK, d)
}

// expireSilence ends a silence now (the form asks first).
func (c *Console) expireSilence(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		id := r.PathValue("id")
		_, err := monitorv1.NewSilenceServiceClient(c.opts.Conn).ExpireSilence(ctx, &monitorv1.ExpireSilenceRequest{Id: id})
		return "/silences/" + url.PathEscape(id), "done.silence_expired", err
	})
}

// silenceFormData is the create form's data: prefilled, or as the user
// typed it when the API refused it, with what it said (Problem).
type silenceFormData struct {
	Matchers, StartsAt, Duration, EndsAt, Comment string
	Recurring                                     bool
	Days                                          []option
	WindowStart, WindowEnd, TimeZone              string
	// Incident is the title (or group) of the incident whose group the
	// matchers were taken from, and its id.
	Incident, IncidentID string
	Problem              *problem
}

// days are the weekdays as the form's checkboxes, those in on checked.
func days(on []string) []option {
	d := make([]option, 0, len(weekdays))
	for _, day := range weekdays {
		d = append(d, option{Name: day, Checked: slices.Contains(on, day)})
	}
	return d
}

// silenceForm is the form of a new silence or maintenance window, with
// the matchers of ?matcher= (an alert's labels, from the search). With
// ?incident=ID its matchers are that incident's group labels, so that
// "silence this" mutes what grouped into it (the API checks the user
// may read the incident).
func (c *Console) silenceForm(w http.ResponseWriter, r *http.Request) {
	s, ok := c.signedIn(w, r)
	if !ok {
		return
	}
	if !s.can(createSilenceMethod, "") {
		c.fail(w, r, s, http.StatusForbidden, "error.forbidden")
		return
	}
	d := silenceFormData{Duration: "2h", TimeZone: zone(r).String(), Days: days(nil)}
	d.Matchers = strings.Join(r.URL.Query()["matcher"], "\n")
	if id := r.URL.Query().Get("incident"); id != "" {
		res, err := c.incidents.GetIncident(withToken(r.Context(), s.access), &monitorv1.GetIncidentRequest{Id: id})
		if err != nil {
			c.failCall(w, r, s, err)
			return
		}
		in := res.GetIncident()
		d.IncidentID, d.Incident = in.GetId(), in.GetTitle()
		if d.Incident == "" {
			d.Incident = in.GetGroupKey()
		}
		labels := map[string]string{}
		maps.Copy(labels, in.GetGroupLabels())
		if _, ok := labels["namespace"]; !ok && in.GetNamespace() != "" {
			// An operator's silence must name a namespace of their team:
			// the subject's, when the group does not.
			labels["namespace"] = in.GetNamespace()
		}
		d.Matchers = strings.Join(labelList(labels), "\n")
	}
	c.render(w, r, s, "silence_new", http.StatusOK, d)
}

// createSilence creates what the form describes: the matchers (one a
// line), from a start (now when empty) for a duration or to an end, and,
// for a maintenance window, the weekly window inside that time in a time
// zone. The API checks it all and names a bad field; the owner is the
// team of its namespace matcher, which an operator's must have. A
// refusal shows the form again as typed, with what the API said.
func (c *Console) createSilence(w http.ResponseWriter, r *http.Request) {
	s, ok := c.posted(w, r)
	if !ok {
		return
	}
	req, err := silenceRequest(r)
	if err == nil {
		var res *monitorv1.CreateSilenceResponse
		if res, err = monitorv1.NewSilenceServiceClient(c.opts.Conn).CreateSilence(withToken(r.Context(), s.access), req); err == nil {
			http.Redirect(w, r, withDone("/silences/"+url.PathEscape(res.GetSilence().GetId()), "done.silence_created"), http.StatusSeeOther)
			return
		}
	}
	code, p, ok := refusal(err)
	if !ok {
		c.failCall(w, r, s, err)
		return
	}
	f := r.PostForm
	c.render(w, r, s, "silence_new", code, silenceFormData{
		Matchers: f.Get("matchers"), StartsAt: f.Get("starts_at"), Duration: f.Get("duration"), EndsAt: f.Get("ends_at"),
		Comment: f.Get("comment"), Recurring: f.Get("recurring") != "", Days: days(f["day"]),
		WindowStart: f.Get("window_start"), WindowEnd: f.Get("window_end"), TimeZone: f.Get("time_zone"),
		Problem: p,
	})
}

// silenceRequest reads the create form; a time or duration the console
// cannot read is refused as the API refuses a field.
func silenceRequest(r *http.Request) (*monitorv1.CreateSilenceRequest, error) {
	f := r.PostForm
	req := &monitorv1.CreateSilenceRequest{Comment: strings.TrimSpace(f.Get("comment"))}
	for line := range strings.Lines(f.Get("matchers")) {
		if m := strings.TrimSpace(line); m != "" {
			req.Matchers = append(req.Matchers, m)
		}
	}
	var bad server.BadRequestError
	loc := zone(r)
	for _, t := range []struct {
		name string
		dst  **timestamppb.Timestamp
	}{{"starts_at", &req.StartsAt}, {"ends_at", &req.EndsAt}} {
		v := strings.TrimSpace(f.Get(t.name))
		if v == "" {
			continue
		}
		at, err := parseTime(v, loc)
		if err != nil {
			bad.Add(t.name, err.Error())
			continue
		}
		*t.dst = timestamppb.New(at)
	}
	if v := strings.TrimSpace(f.Get("duration")); v != "" && req.EndsAt == nil {
		d, err := human.ParseDuration(v)
		if err != nil {
			bad.Add("duration", err.Error())
		}
		req.Duration = durationpb.New(d)
	}
	if f.Get("recurring") != "" {
		win := &monitorv1.Window{Start: strings.TrimSpace(f.Get("window_start")), End: strings.TrimSpace(f.Get("window_end"))}
		for _, day := range days(f["day"]) {
			if day.Checked {
				win.Days = append(win.Days, day.Name)
			}
		}
		req.Schedule = &monitorv1.Schedule{TimeZone: strings.TrimSpace(f.Get("time_zone")), Windows: []*monitorv1.Window{win}}
	}
	return req, bad.Err("invalid silence")
}

// parseTime reads a point in time: RFC 3339, or a date and time (a
// datetime-local field's) in the user's zone.
func parseTime(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04", "2006-01-02 15:04", "2006-01-02T15:04:05"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, errors.New("want a time such as 2026-01-02 15:04 (in your time zone) or RFC 3339")
}
