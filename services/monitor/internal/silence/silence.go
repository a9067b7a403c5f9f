// Package silence is what mutes alerts: a silence's Alertmanager matchers
// select the alerts, its time range and an optional weekly schedule (a
// maintenance window in a named time zone) say when. A silenced alert is
// kept and shown, but opens no incident and notifies no one.
package silence

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vigil-ops/vigil/pkg/matcher"
	"github.com/vigil-ops/vigil/pkg/server"
)

// Errors callers map to API codes.
var (
	ErrNotFound = errors.New("silence not found")
	// ErrExpired means the silence has ended or was expired by hand, and
	// cannot be expired again.
	ErrExpired = errors.New("silence is expired")
)

// State is where a silence is in its life at some instant.
type State int

// States of a silence.
const (
	// StatePending: not started yet.
	StatePending State = iota + 1
	// StateActive: between its start and its end, and not expired by hand.
	// A silence with a schedule is active between its windows too; it
	// mutes only inside them.
	StateActive
	// StateExpired: ended, or expired by hand.
	StateExpired
)

func (s State) String() string {
	switch s {
	case StatePending:
		return "pending"
	case StateActive:
		return "active"
	case StateExpired:
		return "expired"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Params are what a person gives to create a silence.
type Params struct {
	// Matchers in Alertmanager syntax; an alert must match every one. An
	// element may hold several, comma-separated, with or without braces.
	Matchers []string
	// StartsAt is when it starts muting (now when zero); EndsAt when it
	// stops, which must be after both StartsAt and now.
	StartsAt, EndsAt time.Time
	CreatedBy        string
	Comment          string
	// Schedule, when set, restricts muting to its weekly windows.
	Schedule *Schedule
	// Team owns the silence ("": none; only admins and the default team
	// may expire it): the team of the namespace its matchers confine it
	// to (the API decides, see Namespaces).
	Team string
	// Limits bound it (the zero value: DefaultLimits).
	Limits Limits
}

// Limits bound what one silence may be: a silence is a person's decision
// to hear nothing, and must end.
type Limits struct {
	// MaxDuration of a one-off silence (30 days) and of a maintenance
	// window's whole range (366 days).
	MaxDuration, MaxScheduled time.Duration
	// MaxMatchers (16), MaxMatcherLen bytes per matcher (1 KiB) and
	// MaxComment bytes (4 KiB).
	MaxMatchers, MaxMatcherLen, MaxComment int
}

// DefaultLimits are the bounds when none are set.
var DefaultLimits = Limits{
	MaxDuration: 30 * 24 * time.Hour, MaxScheduled: 366 * 24 * time.Hour,
	MaxMatchers: 16, MaxMatcherLen: 1 << 10, MaxComment: 4 << 10,
}

func (l Limits) withDefaults() Limits {
	d := DefaultLimits
	if l.MaxDuration > 0 {
		d.MaxDuration = l.MaxDuration
	}
	if l.MaxScheduled > 0 {
		d.MaxScheduled = l.MaxScheduled
	}
	if l.MaxMatchers > 0 {
		d.MaxMatchers = l.MaxMatchers
	}
	if l.MaxMatcherLen > 0 {
		d.MaxMatcherLen = l.MaxMatcherLen
	}
	if l.MaxComment > 0 {
		d.MaxComment = l.MaxComment
	}
	return d
}

// check adds what p breaks of l to vs.
func (l Limits) check(p Params, vs []server.FieldViolation) []server.FieldViolation {
	l = l.withDefaults()
	if len(p.Matchers) > l.MaxMatchers {
		vs = append(vs, server.FieldViolation{Field: "matchers", Description: fmt.Sprintf("at most %d matchers, got %d", l.MaxMatchers, len(p.Matchers))})
	}
	for i, m := range p.Matchers {
		if len(m) > l.MaxMatcherLen {
			vs = append(vs, server.FieldViolation{Field: fmt.Sprintf("matchers[%d]", i), Description: fmt.Sprintf("at most %d bytes, got %d", l.MaxMatcherLen, len(m))})
		}
	}
	if len(p.Comment) > l.MaxComment {
		vs = append(vs, server.FieldViolation{Field: "comment", Description: fmt.Sprintf("at most %d bytes, got %d", l.MaxComment, len(p.Comment))})
	}
	maxD, what := l.MaxDuration, "a silence"
	if p.Schedule != nil {
		maxD, what = l.MaxScheduled, "a maintenance window"
	}
	if d := p.EndsAt.Sub(p.StartsAt); d > maxD {
		vs = append(vs, server.FieldViolation{Field: "ends_at", Description: fmt.Sprintf("%s may last at most %s, this one %s: make a new one when it ends", what, maxD, d.Round(time.Minute))})
	}
	return vs
}

// Record is a silence as stored: Params, its identity and its expiry.
type Record struct {
	ID               string
	Matchers         []string
	StartsAt, EndsAt time.Time
	CreatedBy        string
	Comment          string
	CreatedAt        time.Time
	// ExpiredAt is zero unless someone expired the silence by hand.
	ExpiredAt time.Time
	ExpiredBy string
	Schedule  *Schedule
	Team      string
}

// Silence mutes the alerts its matchers select while it is active and,
// with a schedule, inside one of its windows. Build one with New or
// FromRecord: its zero value is not usable.
type Silence struct {
	id        string
	matchers  []*labels.Matcher
	startsAt  time.Time
	endsAt    time.Time
	createdBy string
	comment   string
	createdAt time.Time
	expiredAt time.Time
	expiredBy string
	schedule  *schedule
	team      string
}

// New validates p and returns a new silence created at now, with a fresh
// id. A failed validation is a *server.BadRequestError listing every problem,
// each named after the API field that carries it ("matchers[1]",
// "schedule.windows[0].start").
func New(p Params, now time.Time) (*Silence, error) {
	now = dbTime(now)
	if p.StartsAt.IsZero() {
		p.StartsAt = now
	}
	r := Record{
		ID: uuid.Must(uuid.NewV7()).String(), Matchers: p.Matchers, StartsAt: p.StartsAt, EndsAt: p.EndsAt,
		CreatedBy: p.CreatedBy, Comment: p.Comment, CreatedAt: now, Schedule: p.Schedule, Team: p.Team,
	}
	var vs []server.FieldViolation
	if p.EndsAt.After(p.StartsAt) && !p.EndsAt.After(now) {
		vs = append(vs, server.FieldViolation{Field: "ends_at", Description: "must be in the future"})
	}
	vs = p.Limits.check(p, vs)
	return build(r, vs)
}

// FromRecord rebuilds a stored silence, checking again what must always
// hold of one.
func FromRecord(r Record) (*Silence, error) {
	var vs []server.FieldViolation
	if r.ID == "" {
		vs = append(vs, server.FieldViolation{Field: "id", Description: "is required"})
	}
	return build(r, vs)
}

func build(r Record, vs []server.FieldViolation) (*Silence, error) {
	s := &Silence{
		id: r.ID, startsAt: dbTime(r.StartsAt), endsAt: dbTime(r.EndsAt), createdBy: r.CreatedBy,
		comment: r.Comment, createdAt: dbTime(r.CreatedAt), expiredBy: r.ExpiredBy, team: r.Team,
	}
	if !r.ExpiredAt.IsZero() {
		s.expiredAt = dbTime(r.ExpiredAt)
	}
	s.matchers, vs = parseMatchers(r.Matchers, vs)
	switch {
	case s.startsAt.IsZero():
		vs = append(vs, server.FieldViolation{Field: "starts_at", Description: "is required"})
	case s.endsAt.IsZero():
		vs = append(vs, server.FieldViolation{Field: "ends_at", Description: "is required"})
	case !s.endsAt.After(s.startsAt):
		vs = append(vs, server.FieldViolation{Field: "ends_at", Description: "must be after starts_at"})
	}
	if r.Schedule != nil {
		s.schedule, vs = compileSchedule(*r.Schedule, vs)
	}
	if len(vs) > 0 {
		return nil, server.InvalidArgument("invalid silence", vs...)
	}
	return s, nil
}

// parseMatchers parses each element on its own, so every bad one is
// reported, and refuses a set of matchers that would match an alert with
// no labels at all: Alertmanager's rule against silencing everything.
func parseMatchers(in []string, vs []server.FieldViolation) ([]*labels.Matcher, []server.FieldViolation) {
	if len(in) == 0 {
		return nil, append(vs, server.FieldViolation{Field: "matchers", Description: "at least one matcher is required"})
	}
	var out []*labels.Matcher
	bad := false
	for i, s := range in {
		ms, err := matcher.Parse([]string{s})
		if perr := (*matcher.Error)(nil); errors.As(err, &perr) {
			err = perr.Err
		}
		if err != nil {
			vs = append(vs, server.FieldViolation{Field: fmt.Sprintf("matchers[%d]", i), Description: fmt.Sprintf("%q: %v", s, err)})
			bad = true
			continue
		}
		out = append(out, ms...)
	}
	if bad {
		return nil, vs
	}
	for _, m := range out {
		if !matchesEmpty(m) {
			return out, vs
		}
	}
	return nil, append(vs, server.FieldViolation{Field: "matchers", Description: "at least one matcher must not match the empty string: these would silence every alert"})
}

// matchesEmpty is Alertmanager's own test (silence/validation.go): only
// = and =~ count, so a silence of negative matchers alone, such as
// env!="prod", is allowed as it is in Alertmanager.
func matchesEmpty(m *labels.Matcher) bool {
	switch m.Type {
	case labels.MatchEqual, labels.MatchRegexp:
		return m.Matches("")
	}
	return false
}

// dbTime is t as Postgres keeps it: UTC, whole microseconds, no monotonic
// reading, so a silence compares equal before and after a round trip.
func dbTime(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC().Truncate(time.Microsecond)
}

// ID is the silence's id, a UUID.
func (s *Silence) ID() string { return s.id }

// Team is the team that owns the silence ("": none).
func (s *Silence) Team() string { return s.team }

// Namespaces are the namespaces the silence is confined to: the values
// of its equality matchers on the namespace label (an alert must match
// every matcher, so it mutes nothing outside them).
func Namespaces(matchers []string) []string {
	ms, err := matcher.Parse(matchers)
	if err != nil {
		return nil
	}
	var out []string
	for _, m := range ms {
		if m.Name == "namespace" && m.Type == labels.MatchEqual && m.Value != "" {
			out = append(out, m.Value)
		}
	}
	return out
}

// Record returns the silence as stored, its matchers in canonical form.
func (s *Silence) Record() Record {
	r := Record{
		ID: s.id, StartsAt: s.startsAt, EndsAt: s.endsAt, CreatedBy: s.createdBy, Comment: s.comment,
		CreatedAt: s.createdAt, ExpiredAt: s.expiredAt, ExpiredBy: s.expiredBy, Team: s.team,
	}
	r.Matchers = make([]string, len(s.matchers))
	for i, m := range s.matchers {
		r.Matchers[i] = m.String()
	}
	if s.schedule != nil {
		sc := Schedule{TimeZone: s.schedule.spec.TimeZone, Windows: make([]Window, len(s.schedule.spec.Windows))}
		for i, w := range s.schedule.spec.Windows {
			sc.Windows[i] = Window{Days: slices.Clone(w.Days), Start: w.Start, End: w.End}
		}
		r.Schedule = &sc
	}
	return r
}

// State is where the silence is at now.
func (s *Silence) State(now time.Time) State {
	switch {
	case !s.expiredAt.IsZero() || !now.Before(s.endsAt):
		return StateExpired
	case now.Before(s.startsAt):
		return StatePending
	}
	return StateActive
}

// Mutes reports whether the silence mutes an alert with labels lset at
// now: it is active, every matcher matches (a missing label is the empty
// string) and, with a schedule, now is inside one of its windows.
func (s *Silence) Mutes(lset map[string]string, now time.Time) bool {
	return s.State(now) == StateActive && matcher.Matches(s.matchers, lset) &&
		(s.schedule == nil || s.schedule.covers(now))
}

// Expire ends the silence at now, on behalf of by. A silence that has
// already ended or been expired cannot be: ErrExpired.
func (s *Silence) Expire(by string, now time.Time) error {
	if s.State(now) == StateExpired {
		return fmt.Errorf("silence %s: %w", s.id, ErrExpired)
	}
	s.expiredAt, s.expiredBy = dbTime(now), by
	return nil
}
