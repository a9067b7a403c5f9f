package console

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

func (c *Console) routeOnCall() {
	c.mux.HandleFunc("GET /settings/oncall", c.docPage(c.showSchedules))
	c.mux.HandleFunc("POST /settings/oncall", c.createSchedule)
	c.mux.HandleFunc("GET /settings/oncall/{name}", c.docPage(c.showSchedule))
	c.mux.HandleFunc("POST /settings/oncall/{name}", c.updateSchedule)
	c.mux.HandleFunc("POST /settings/oncall/{name}/override", c.addOverride)
	c.mux.HandleFunc("POST /settings/oncall/{name}/delete", c.deleteSchedule)
}

func (c *Console) oncallClient() monitorv1.OnCallServiceClient {
	return monitorv1.NewOnCallServiceClient(c.opts.Conn)
}

// scheduleSample is the new-schedule editor's first text: the shape of
// the CLI's schedule file (docs/escalation.md).
const scheduleSample = `name: payments
team: payments
zone: Asia/Taipei
layers:
  - participants: [olga, ben, mei]
    rotation_days: 7
    handoff: "09:00"
    start: "2026-01-05"
`

// scheduleOutput are a schedule's output-only fields, left out of its
// editor's text. Its overrides stay in: an update replaces the whole
// schedule, and an override left out would be dropped.
var scheduleOutput = []string{"from_file", "updated_at", "updated_by"}

// shiftDays is how far ahead a schedule's page lists its shifts.
const shiftDays = 7

// scheduleRow is a schedule with who is on call in it now.
type scheduleRow struct {
	*monitorv1.OnCallSchedule
	Now *monitorv1.WhoIsOnCallResponse
}

// schedulesData is the list page's data.
type schedulesData struct {
	Team      string
	Schedules []scheduleRow
	CanCreate bool
	Document  string
	Edit      *docEdit
}

func (c *Console) showSchedules(w http.ResponseWriter, r *http.Request, s *session, edit *docEdit, code int) {
	ctx := withToken(r.Context(), s.access)
	team := strings.TrimSpace(r.URL.Query().Get("team"))
	res, err := c.oncallClient().ListSchedules(ctx, &monitorv1.ListSchedulesRequest{Team: team})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	d := schedulesData{
		Team: team, CanCreate: s.canForSomeTeam("/vigil.monitor.v1.OnCallService/CreateSchedule"), Document: edit.or(scheduleSample), Edit: edit,
	}
	for _, sc := range res.GetSchedules() {
		d.Schedules = append(d.Schedules, scheduleRow{OnCallSchedule: sc, Now: c.onCallNow(ctx, r, sc.GetName())})
	}
	c.render(w, r, s, "schedules", code, d)
}

// onCallNow is who is on call in schedule now; nil (shown as nobody
// known) when the API cannot say, which the log keeps.
func (c *Console) onCallNow(ctx context.Context, r *http.Request, schedule string) *monitorv1.WhoIsOnCallResponse {
	who, err := c.oncallClient().WhoIsOnCall(ctx, &monitorv1.WhoIsOnCallRequest{Schedule: schedule})
	if err != nil {
		c.opts.Log.WarnContext(r.Context(), "console on-call not known", "schedule", schedule, "error", err)
		return nil
	}
	return who
}

// scheduleData is one schedule's page.
type scheduleData struct {
	*monitorv1.OnCallSchedule
	Now      *monitorv1.WhoIsOnCallResponse
	Shifts   []*monitorv1.Shift
	Document string
	Edit     *docEdit
	// The override form's default: from now for the next 12 hours, in
	// the user's zone, as datetime-local inputs want it.
	From, To string
}

func (c *Console) showSchedule(w http.ResponseWriter, r *http.Request, s *session, edit *docEdit, code int) {
	ctx := withToken(r.Context(), s.access)
	name := r.PathValue("name")
	res, err := c.oncallClient().GetSchedule(ctx, &monitorv1.GetScheduleRequest{Name: name})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	sc := res.GetSchedule()
	now := time.Now()
	shifts, err := c.oncallClient().ListShifts(ctx, &monitorv1.ListShiftsRequest{
		Schedule: name, From: timestamppb.New(now), To: timestamppb.New(now.AddDate(0, 0, shiftDays)),
	})
	if err != nil {
		c.failCall(w, r, s, err)
		return
	}
	local := now.In(zone(r)).Truncate(time.Minute)
	d := scheduleData{
		OnCallSchedule: sc, Now: c.onCallNow(ctx, r, name), Shifts: shifts.GetShifts(), Edit: edit,
		Document: edit.or(writeDoc(sc, true, scheduleOutput...)),
		From:     local.Format(localTime), To: local.Add(12 * time.Hour).Format(localTime),
	}
	c.render(w, r, s, "schedule", code, d)
}

func (c *Console) createSchedule(w http.ResponseWriter, r *http.Request) {
	sc := &monitorv1.OnCallSchedule{}
	c.applyDoc(w, r, sc, true, func(ctx context.Context) (string, string, error) {
		res, err := c.oncallClient().CreateSchedule(ctx, &monitorv1.CreateScheduleRequest{Schedule: sc})
		return "/settings/oncall/" + url.PathEscape(res.GetSchedule().GetName()), "done.schedule_created", err
	}, func(s *session, e *docEdit, code int) { c.showSchedules(w, r, s, e, code) })
}

// updateSchedule replaces the schedule of the page (the name is the
// page's, whatever the text says).
func (c *Console) updateSchedule(w http.ResponseWriter, r *http.Request) {
	sc := &monitorv1.OnCallSchedule{}
	c.applyDoc(w, r, sc, true, func(ctx context.Context) (string, string, error) {
		sc.Name = r.PathValue("name")
		_, err := c.oncallClient().UpdateSchedule(ctx, &monitorv1.UpdateScheduleRequest{Schedule: sc})
		return "/settings/oncall/" + url.PathEscape(sc.GetName()), "done.schedule_updated", err
	}, func(s *session, e *docEdit, code int) { c.showSchedule(w, r, s, e, code) })
}

// addOverride puts someone on call for a while ("I take tonight"): the
// times typed are wall-clock times in the user's zone.
func (c *Console) addOverride(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		name := r.PathValue("name")
		loc := zone(r)
		from, err1 := time.ParseInLocation(localTime, r.PostFormValue("from"), loc)
		to, err2 := time.ParseInLocation(localTime, r.PostFormValue("to"), loc)
		if err1 != nil || err2 != nil {
			return "", "", status.Errorf(codes.InvalidArgument, "override: from and to must be times as %s, in %s", localTime, loc)
		}
		_, err := c.oncallClient().AddOverride(ctx, &monitorv1.AddOverrideRequest{Schedule: name, Override: &monitorv1.ScheduleOverride{
			Who: strings.TrimSpace(r.PostFormValue("who")), Start: timestamppb.New(from), End: timestamppb.New(to),
		}})
		return "/settings/oncall/" + url.PathEscape(name), "done.override_added", err
	})
}

func (c *Console) deleteSchedule(w http.ResponseWriter, r *http.Request) {
	c.act(w, r, func(ctx context.Context, _ *session) (string, string, error) {
		_, err := c.oncallClient().DeleteSchedule(ctx, &monitorv1.DeleteScheduleRequest{Name: r.PathValue("name")})
		return "/settings/oncall", "done.schedule_deleted", err
	})
}
