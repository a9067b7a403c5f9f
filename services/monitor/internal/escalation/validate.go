package escalation

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"time"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/oncall"
	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

var dnsLabel = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)

// maxSteps and maxRepeat bound a policy: beyond them it is a mistake, and
// a bound keeps an incident's events bounded.
const (
	maxSteps  = 20
	maxRepeat = 10
	maxDelay  = 24 * time.Hour
)

// ScheduleOf is the model of a stored schedule.
func ScheduleOf(s *monitorv1.OnCallSchedule) oncall.Schedule {
	out := oncall.Schedule{Zone: s.GetZone()}
	for _, l := range s.GetLayers() {
		ol := oncall.Layer{
			Participants: l.GetParticipants(), RotationDays: int(l.GetRotationDays()),
			Handoff: l.GetHandoff(), Start: l.GetStart(),
		}
		for _, w := range l.GetRestrictions() {
			ow := oncall.Window{From: w.GetFrom(), To: w.GetTo()}
			for _, d := range w.GetWeekdays() {
				ow.Weekdays = append(ow.Weekdays, time.Weekday(d))
			}
			ol.Restrictions = append(ol.Restrictions, ow)
		}
		out.Layers = append(out.Layers, ol)
	}
	for _, o := range s.GetOverrides() {
		var start, end time.Time
		if o.GetStart() != nil {
			start = o.GetStart().AsTime()
		}
		if o.GetEnd() != nil {
			end = o.GetEnd().AsTime()
		}
		out.Overrides = append(out.Overrides, oncall.Override{Who: o.GetWho(), Start: start, End: end})
	}
	return out
}

// ValidateSchedule returns every violation of s, with field paths under
// prefix ("schedule." in a request).
func ValidateSchedule(s *monitorv1.OnCallSchedule, prefix string) error {
	var bad server.BadRequestError
	name(&bad, prefix, s.GetName(), s.GetTeam())
	if len(s.GetLayers()) == 0 {
		bad.Add(prefix+"layers", "must have at least one layer")
	}
	var perr *server.BadRequestError
	if err := ScheduleOf(s).Validate(); errors.As(err, &perr) {
		for _, v := range perr.Violations {
			bad.Add(prefix+v.Field, v.Description)
		}
	}
	return bad.Err("invalid on-call schedule")
}

func name(bad *server.BadRequestError, prefix, n, team string) {
	if !dnsLabel.MatchString(n) {
		bad.Addf(prefix+"name", "must be a lowercase DNS label (a-z, 0-9, -), got %q", n)
	}
	if team != "" && !dnsLabel.MatchString(team) {
		bad.Addf(prefix+"team", "must be a team name, got %q", team)
	}
}

// ValidatePolicy returns every violation of p, with field paths under
// prefix.
func ValidatePolicy(p *monitorv1.EscalationPolicy, prefix string) error {
	var bad server.BadRequestError
	name(&bad, prefix, p.GetName(), p.GetTeam())
	for i, pr := range p.GetPriorities() {
		if !priority.Valid(pr) {
			bad.Addf(fmt.Sprintf("%spriorities[%d]", prefix, i), "must be P0, P1, P2 or P3, got %s", pr)
		} else if slices.Contains(p.GetPriorities()[:i], pr) {
			bad.Addf(fmt.Sprintf("%spriorities[%d]", prefix, i), "%s is listed twice", priority.Name(pr))
		}
	}
	if len(p.GetSteps()) == 0 || len(p.GetSteps()) > maxSteps {
		bad.Addf(prefix+"steps", "must have 1 to %d steps, got %d", maxSteps, len(p.GetSteps()))
	}
	for i, s := range p.GetSteps() {
		f := func(n string) string { return fmt.Sprintf("%ssteps[%d].%s", prefix, i, n) }
		if d := s.GetDelay(); d != nil && (!d.IsValid() || d.AsDuration() < 0 || d.AsDuration() > maxDelay) {
			bad.Addf(f("delay"), "must be 0 to %s", maxDelay)
		} else if i > 0 && d.AsDuration() < time.Minute {
			bad.Add(f("delay"), "must be at least 1m after the previous step")
		}
		if len(s.GetSchedules())+len(s.GetUsers())+len(s.GetTeams())+len(s.GetChannels()) == 0 {
			bad.Add(f("schedules"), "a step needs a target: schedules, users, teams or channels")
		}
		for _, t := range []struct {
			what  string
			names []string
		}{{"schedules", s.GetSchedules()}, {"users", s.GetUsers()}, {"teams", s.GetTeams()}, {"channels", s.GetChannels()}} {
			for j, n := range t.names {
				if n == "" {
					bad.Add(f(fmt.Sprintf("%s[%d]", t.what, j)), "must not be empty")
				}
			}
		}
	}
	if p.GetRepeat() < 0 || p.GetRepeat() > maxRepeat {
		bad.Addf(prefix+"repeat", "must be 0 to %d, got %d", maxRepeat, p.GetRepeat())
	}
	return bad.Err("invalid escalation policy")
}

// CompileRules validates r (field paths under prefix) and readies it.
func CompileRules(r *monitorv1.PriorityRules, prefix string) (*priority.Set, error) {
	var bad server.BadRequestError
	rs := priority.Rules{}
	for _, pr := range r.GetRules() {
		rs.Rules = append(rs.Rules, priority.Rule{
			Matchers: pr.GetMatchers(), App: pr.GetApp(), Team: pr.GetTeam(), Namespace: pr.GetNamespace(), Priority: pr.GetPriority(),
		})
	}
	if len(r.GetTargets()) > 0 {
		rs.Targets = map[typesv1.Priority]time.Duration{}
	}
	for i, t := range r.GetTargets() {
		f := func(n string) string { return fmt.Sprintf("%stargets[%d].%s", prefix, i, n) }
		_, dup := rs.Targets[t.GetPriority()]
		switch {
		case !priority.Valid(t.GetPriority()):
			bad.Addf(f("priority"), "must be P0, P1, P2 or P3, got %s", t.GetPriority())
		case dup:
			bad.Addf(f("priority"), "%s has a target already", priority.Name(t.GetPriority()))
		case !t.GetTarget().IsValid() || t.GetTarget().AsDuration() <= 0 || t.GetTarget().AsDuration() > 7*24*time.Hour:
			bad.Add(f("target"), "must be more than 0 and at most 168h")
		default:
			rs.Targets[t.GetPriority()] = t.GetTarget().AsDuration()
		}
	}
	set, err := priority.Compile(rs)
	var perr *server.BadRequestError
	if errors.As(err, &perr) {
		for _, v := range perr.Violations {
			bad.Add(prefix+v.Field, v.Description)
		}
	}
	if err := bad.Err("invalid priority rules"); err != nil {
		return nil, err
	}
	return set, nil
}
