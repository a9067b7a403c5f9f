// Package escalation asks people to respond to the incidents nobody has
// acknowledged: it keeps the on-call schedules, the escalation policies
// and the priority rules (as their API messages, in monitor's schema), and
// its Engine walks each open incident through its policy's steps on a
// clock, publishing incident.escalated through the outbox on every step.
//
// The rules (docs/escalation.md):
//
//   - An incident is planned once, when the engine first sees it open: its
//     policy is chosen by its team and priority, and step 1 is due when its
//     response target has passed (plus the step's delay). A priority
//     without a target (P3 by default), or a team without a policy, does
//     not escalate.
//   - Every later step is due its delay after the step before was taken;
//     after the last, the policy starts over while repeats remain, its
//     step 1 again the response target (plus its delay) after the last.
//   - A step is taken only while the incident is open: acknowledged or
//     resolved, its escalation stops for good (an acknowledgement cannot
//     be taken back; a reopened incident is announced, not escalated
//     again).
//   - A snooze holds every step until it ends; a step due meanwhile is
//     taken then. A person may take the next step at once (Escalate).
//   - Replicas share the work: a due row is taken with FOR UPDATE SKIP
//     LOCKED and its event written to the outbox in the same transaction,
//     so each step is published once, and a restart continues from the
//     table.
package escalation

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/vigil-ops/vigil/pkg/bus"
	"github.com/vigil-ops/vigil/pkg/db"
	eventsv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/events/v1"
	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/pkg/outbox"
	"github.com/vigil-ops/vigil/services/monitor/internal/incident"
	"github.com/vigil-ops/vigil/services/monitor/internal/postgres"
	"github.com/vigil-ops/vigil/services/monitor/internal/priority"
)

// Errors callers map to API codes.
var (
	ErrNotFound = errors.New("not found")
	ErrExists   = errors.New("already exists")
	// ErrFromFile: the escalation file defines it; change the file.
	ErrFromFile   = errors.New("defined by the escalation file (VIGIL_ESCALATION_FILE); change it there")
	ErrTeamChange = errors.New("the team cannot change; delete and create it")
	// ErrNoPolicy: no escalation policy applies to the incident.
	ErrNoPolicy = errors.New("no escalation policy applies")
	// ErrExhausted: the policy has no step left.
	ErrExhausted = errors.New("the escalation policy has no step left")
)

// Reasons of incident.escalated.
const (
	ReasonUnacknowledged = "unacknowledged"
	ReasonRepeat         = "repeat"
	ReasonManual         = "manual"
)

// Why an escalation has no next step, in escalations.stopped.
const (
	stopNoPolicy     = "no policy"
	stopNoTarget     = "no response target"
	stopAcknowledged = "acknowledged"
	stopResolved     = "resolved"
	stopDone         = "done"
	stopPolicyGone   = "policy deleted"
)

// Clock tells the time; tests move a fake one.
type Clock interface{ Now() time.Time }

// SystemClock is the real time.
type SystemClock struct{}

// Now implements Clock.
func (SystemClock) Now() time.Time { return time.Now() }

// Options tune an Engine.
type Options struct {
	// Interval between two looks for due steps (default 1s).
	Interval time.Duration
	// Freshness: incidents opened longer ago than this when first seen
	// are not escalated (default 24h), so that an upgrade, or a monitor
	// down for a day, does not page for old incidents.
	Freshness time.Duration
}

// Engine walks incidents through their escalation policies.
type Engine struct {
	pool  *pgxpool.Pool
	clock Clock
	opts  Options
	log   *slog.Logger
}

// NewEngine returns an engine over monitor's schema in pool.
func NewEngine(pool *pgxpool.Pool, clock Clock, opts Options, log *slog.Logger) *Engine {
	if opts.Interval <= 0 {
		opts.Interval = time.Second
	}
	if opts.Freshness <= 0 {
		opts.Freshness = 24 * time.Hour
	}
	return &Engine{pool: pool, clock: clock, opts: opts, log: log.With("component", "escalation")}
}

// Run takes due steps every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	return db.Sweep{
		What: "due incidents escalated", Every: e.opts.Interval, Log: e.log,
		Pass: func(ctx context.Context) error {
			_, err := e.Tick(ctx)
			return err
		},
	}.Run(ctx)
}

// batch bounds the rows of one transaction.
const batch = 100

// Tick plans the incidents not planned yet and takes every step due now;
// it returns how many steps it took.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	err := db.Drain(ctx, e.pool, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		n, err := e.plan(ctx, tx)
		return n >= batch, err
	})
	if err != nil {
		return 0, err
	}
	taken := 0
	err = db.Drain(ctx, e.pool, func(ctx context.Context, tx pgx.Tx) (bool, error) {
		n, err := e.takeDue(ctx, tx)
		taken += n
		return n >= batch, err
	})
	return taken, err
}

// plan gives the incidents without an escalation row theirs.
func (e *Engine) plan(ctx context.Context, tx pgx.Tx) (int, error) {
	now := e.clock.Now().UTC()
	rows, err := tx.Query(ctx, `SELECT id::text, team, priority, opened_at FROM incidents i
		WHERE status = 'open' AND opened_at > $1
		AND NOT EXISTS (SELECT 1 FROM escalations e WHERE e.incident_id = i.id)
		ORDER BY opened_at LIMIT $2`, now.Add(-e.opts.Freshness), batch)
	if err != nil {
		return 0, fmt.Errorf("find incidents to plan: %w", err)
	}
	type inc struct {
		id, team string
		prio     int32
		opened   time.Time
	}
	incs, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (inc, error) {
		var i inc
		return i, r.Scan(&i.id, &i.team, &i.prio, &i.opened)
	})
	if err != nil || len(incs) == 0 {
		return 0, err
	}
	c, err := loadConfig(ctx, tx)
	if err != nil {
		return 0, err
	}
	b := &pgx.Batch{}
	for _, i := range incs {
		b.Queue(insertPlan, c.planRow(i.id, i.team, typesv1.Priority(i.prio), i.opened)...)
	}
	if err := tx.SendBatch(ctx, b).Close(); err != nil {
		return 0, fmt.Errorf("plan the escalation of %d incidents: %w", len(incs), err)
	}
	return len(incs), nil
}

// config is what planning and steps read: the policies, the rules, and
// the on-call schedules (read once, by the first step naming one).
type config struct {
	policies  []*monitorv1.EscalationPolicy
	rules     *priority.Set
	schedules []*monitorv1.OnCallSchedule
	loaded    bool
}

// allSchedules returns every schedule, read at its first call.
func (c *config) allSchedules(ctx context.Context, q Querier) ([]*monitorv1.OnCallSchedule, error) {
	if !c.loaded {
		ss, err := Schedules.List(ctx, q, "*")
		if err != nil {
			return nil, err
		}
		c.schedules, c.loaded = ss, true
	}
	return c.schedules, nil
}

func loadConfig(ctx context.Context, q Querier) (*config, error) {
	ps, err := Policies.List(ctx, q, "*")
	if err != nil {
		return nil, err
	}
	rs, err := GetRules(ctx, q)
	if err != nil {
		return nil, err
	}
	set, err := CompileRules(rs, "")
	if err != nil {
		return nil, fmt.Errorf("stored priority rules: %w", err)
	}
	return &config{policies: ps, rules: set}, nil
}

// insertPlan inserts an incident's escalation row (none when one exists),
// with planRow's arguments.
const insertPlan = `INSERT INTO escalations (incident_id, policy, due_at, stopped) VALUES ($1, $2, $3, $4)
	ON CONFLICT (incident_id) DO NOTHING`

// plan inserts incident id's escalation row (none when one exists).
func (c *config) plan(ctx context.Context, tx pgx.Tx, id, team string, prio typesv1.Priority, opened time.Time) error {
	if _, err := tx.Exec(ctx, insertPlan, c.planRow(id, team, prio, opened)...); err != nil {
		return fmt.Errorf("plan the escalation of %s: %w", id, err)
	}
	return nil
}

// planRow is insertPlan's arguments for incident id: its policy, when
// step 1 is due, or why it will not escalate.
func (c *config) planRow(id, team string, prio typesv1.Priority, opened time.Time) []any {
	var (
		policy  string
		due     *time.Time
		stopped string
	)
	p := Choose(c.policies, team, prio)
	target, hasTarget := c.rules.Target(prio)
	switch {
	case p == nil:
		stopped = stopNoPolicy
	case !hasTarget:
		policy, stopped = p.GetName(), stopNoTarget
	default:
		policy = p.GetName()
		t := opened.Add(target + p.GetSteps()[0].GetDelay().AsDuration())
		due = &t
	}
	return []any{id, policy, due, stopped}
}

// Choose returns the policy for an incident of team and prio: the team's
// policy naming prio, else the team's naming no priority, else the same
// among the global policies (team ""); by name among equals. Nil when none
// applies.
func Choose(ps []*monitorv1.EscalationPolicy, team string, prio typesv1.Priority) *monitorv1.EscalationPolicy {
	rank := func(p *monitorv1.EscalationPolicy) int {
		r := 0
		switch p.GetTeam() {
		case team:
		case "":
			r += 2
		default:
			return -1
		}
		switch {
		case slices.Contains(p.GetPriorities(), prio):
		case len(p.GetPriorities()) == 0:
			r++
		default:
			return -1
		}
		return r
	}
	var best *monitorv1.EscalationPolicy
	bestRank := -1
	for _, p := range ps {
		r := rank(p)
		if r < 0 || len(p.GetSteps()) == 0 {
			continue
		}
		if best == nil || r < bestRank || r == bestRank && p.GetName() < best.GetName() {
			best, bestRank = p, r
		}
	}
	return best
}

// state is an incident's escalation row.
type state struct {
	incidentID string
	policy     string
	level      int32
	due        *time.Time
	snoozed    *time.Time
	stopped    string
}

// takeDue takes the steps due now, one per incident.
func (e *Engine) takeDue(ctx context.Context, tx pgx.Tx) (int, error) {
	now := e.clock.Now().UTC()
	rows, err := tx.Query(ctx, `SELECT incident_id::text, policy, level, due_at, snoozed_until, stopped FROM escalations
		WHERE due_at <= $1 AND (snoozed_until IS NULL OR snoozed_until <= $1)
		ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED`, now, batch)
	if err != nil {
		return 0, fmt.Errorf("find due escalations: %w", err)
	}
	due, err := pgx.CollectRows(rows, scanState)
	if err != nil || len(due) == 0 {
		return 0, err
	}
	c, err := loadConfig(ctx, tx)
	if err != nil {
		return 0, err
	}
	for _, st := range due {
		if err := e.step(ctx, tx, c, st, now, ReasonUnacknowledged, ""); err != nil {
			return 0, err
		}
	}
	return len(due), nil
}

func scanState(r pgx.CollectableRow) (state, error) {
	var s state
	return s, r.Scan(&s.incidentID, &s.policy, &s.level, &s.due, &s.snoozed, &s.stopped)
}

// step takes st's next step at now (or stops it, for an incident no
// longer open when the step is not by hand), and records it.
func (e *Engine) step(ctx context.Context, tx pgx.Tx, c *config, st state, now time.Time, reason, by string) error {
	// The incident's lock orders a step and an acknowledgement: one
	// commits first, and the other sees it.
	inc, err := postgres.Store{}.LockIncident(ctx, tx, st.incidentID)
	if err != nil {
		return err
	}
	stop := func(why string) error {
		_, err := tx.Exec(ctx, `UPDATE escalations SET due_at = NULL, stopped = $2 WHERE incident_id = $1`, st.incidentID, why)
		return err
	}
	switch inc.GetStatus() {
	case typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED:
		if by == "" {
			return stop(stopResolved)
		}
		return fmt.Errorf("escalate %s: %w", st.incidentID, incident.ErrResolved)
	case typesv1.IncidentStatus_INCIDENT_STATUS_ACKNOWLEDGED:
		if by == "" {
			return stop(stopAcknowledged)
		}
	}
	i := slices.IndexFunc(c.policies, func(p *monitorv1.EscalationPolicy) bool { return p.GetName() == st.policy })
	if i < 0 {
		if by != "" {
			return fmt.Errorf("incident %s (team %q, %s): %w", st.incidentID, inc.GetTeam(), inc.GetPriority(), ErrNoPolicy)
		}
		return stop(stopPolicyGone)
	}
	p := c.policies[i]
	steps := int32(len(p.GetSteps()))
	round, idx := st.level/steps, st.level%steps
	if round > p.GetRepeat() {
		if by != "" {
			return fmt.Errorf("incident %s, policy %s: %w", st.incidentID, p.GetName(), ErrExhausted)
		}
		return stop(stopDone)
	}
	s := p.GetSteps()[idx]
	if reason == ReasonUnacknowledged && round > 0 && idx == 0 {
		reason = ReasonRepeat
	}
	users, err := e.resolve(ctx, tx, c, s, now)
	if err != nil {
		return err
	}
	level := st.level + 1
	next := c.next(p, inc.GetPriority(), level, now)
	why := ""
	if next == nil {
		why = stopDone
	}
	if _, err := tx.Exec(ctx, `UPDATE escalations SET level = $2, due_at = $3, stopped = $4 WHERE incident_id = $1`,
		st.incidentID, level, next, why); err != nil {
		return fmt.Errorf("record step %d of %s: %w", level, st.incidentID, err)
	}
	snap := inc.Incident
	snap.Alerts = nil
	meta := bus.NewMeta(incident.Producer, nil)
	meta.CorrelationId, meta.App = cmp.Or(inc.CorrelationID, meta.GetCorrelationId()), inc.GetApp()
	ev := &eventsv1.IncidentEscalated{
		Meta:     meta,
		Incident: snap, Level: level, Policy: p.GetName(), Users: users,
		Channels: slices.Clone(s.GetChannels()), Reason: reason, By: by,
	}
	e.log.InfoContext(ctx, "incident escalated", "incident", st.incidentID, "policy", p.GetName(), "step", level,
		"reason", reason, "users", users, "channels", s.GetChannels())
	return outbox.Add(ctx, tx, ev)
}

// next is when the step after level is due: its delay after now; a new
// round of the policy waits the response target first, as the incident
// did. Nil when the policy is done (or a round would start for a priority
// without a target).
func (c *config) next(p *monitorv1.EscalationPolicy, prio typesv1.Priority, level int32, now time.Time) *time.Time {
	steps := int32(len(p.GetSteps()))
	if level/steps > p.GetRepeat() {
		return nil
	}
	d := p.GetSteps()[level%steps].GetDelay().AsDuration()
	if level%steps == 0 {
		target, ok := c.rules.Target(prio)
		if !ok {
			return nil
		}
		d += target
	}
	t := now.Add(d)
	return &t
}

// resolve names the users a step asks at now: its users, whoever is on
// call in its schedules and its teams' default schedules; each once, in
// that order.
func (e *Engine) resolve(ctx context.Context, q Querier, c *config, s *monitorv1.EscalationStep, now time.Time) ([]string, error) {
	var users []string
	add := func(u string) {
		if u != "" && !slices.Contains(users, u) {
			users = append(users, u)
		}
	}
	for _, u := range s.GetUsers() {
		add(u)
	}
	if len(s.GetSchedules()) == 0 && len(s.GetTeams()) == 0 {
		return users, nil
	}
	all, err := c.allSchedules(ctx, q)
	if err != nil {
		return nil, err
	}
	for _, n := range s.GetSchedules() {
		i := slices.IndexFunc(all, func(sch *monitorv1.OnCallSchedule) bool { return sch.GetName() == n })
		if i < 0 {
			e.log.WarnContext(ctx, "escalation step names a schedule that does not exist", "schedule", n)
			continue
		}
		who, _ := ScheduleOf(all[i]).At(now)
		add(who)
	}
	for _, t := range s.GetTeams() {
		var own []*monitorv1.OnCallSchedule
		for _, sch := range all {
			if sch.GetTeam() == t {
				own = append(own, sch)
			}
		}
		sch, err := teamSchedule(own, t)
		if err != nil {
			e.log.WarnContext(ctx, "escalation step names a team without an on-call schedule", "team", t)
			continue
		}
		who, _ := ScheduleOf(sch).At(now)
		add(who)
	}
	return users, nil
}

// TeamSchedule is team's default schedule: the one named like the team,
// else its only one (ErrNotFound otherwise).
func TeamSchedule(ctx context.Context, q Querier, team string) (*monitorv1.OnCallSchedule, error) {
	ss, err := Schedules.List(ctx, q, team)
	if err != nil {
		return nil, err
	}
	return teamSchedule(ss, team)
}

// teamSchedule picks team's default schedule among ss, its schedules by
// name.
func teamSchedule(ss []*monitorv1.OnCallSchedule, team string) (*monitorv1.OnCallSchedule, error) {
	if i := slices.IndexFunc(ss, func(s *monitorv1.OnCallSchedule) bool { return s.GetName() == team }); i >= 0 {
		return ss[i], nil
	}
	if len(ss) == 1 {
		return ss[0], nil
	}
	return nil, fmt.Errorf("default schedule of team %q (%d schedules, none named like the team): %w", team, len(ss), ErrNotFound)
}

// lockState plans incident id if it is not yet (whatever its status) and
// locks its row; it returns the incident's team, priority and status too.
func (e *Engine) lockState(ctx context.Context, tx pgx.Tx, c *config, id string) (state, planned, error) {
	var inc planned
	var prio int32
	var opened time.Time
	err := tx.QueryRow(ctx, `SELECT team, priority, opened_at, status FROM incidents WHERE id = $1`, id).Scan(&inc.team, &prio, &opened, &inc.status)
	if errors.Is(err, pgx.ErrNoRows) {
		return state{}, inc, fmt.Errorf("incident %s: %w", id, incident.ErrNotFound)
	}
	if err != nil {
		return state{}, inc, fmt.Errorf("load incident %s: %w", id, err)
	}
	inc.prio = typesv1.Priority(prio)
	if err := c.plan(ctx, tx, id, inc.team, inc.prio, opened); err != nil {
		return state{}, inc, err
	}
	rows, err := tx.Query(ctx, `SELECT incident_id::text, policy, level, due_at, snoozed_until, stopped FROM escalations
		WHERE incident_id = $1 FOR UPDATE`, id)
	if err != nil {
		return state{}, inc, fmt.Errorf("lock the escalation of %s: %w", id, err)
	}
	st, err := pgx.CollectExactlyOneRow(rows, scanState)
	return st, inc, err
}

// planned is what lockState read of an incident.
type planned struct {
	team, status string
	prio         typesv1.Priority
}

// Escalate takes incident id's next step now, by a person, whatever is
// due or snoozed; it returns the level taken. An incident planned without
// a policy (or whose policy was deleted) gets the one that applies now.
func (e *Engine) Escalate(ctx context.Context, tx pgx.Tx, id, by string) (int32, error) {
	c, err := loadConfig(ctx, tx)
	if err != nil {
		return 0, err
	}
	st, inc, err := e.lockState(ctx, tx, c, id)
	if err != nil {
		return 0, err
	}
	if !slices.ContainsFunc(c.policies, func(p *monitorv1.EscalationPolicy) bool { return p.GetName() == st.policy }) {
		if p := Choose(c.policies, inc.team, inc.prio); p != nil {
			st.policy = p.GetName()
			if _, err := tx.Exec(ctx, `UPDATE escalations SET policy = $2, level = 0 WHERE incident_id = $1`, id, st.policy); err != nil {
				return 0, err
			}
			st.level = 0
		}
	}
	if err := e.step(ctx, tx, c, st, e.clock.Now().UTC(), ReasonManual, by); err != nil {
		return 0, err
	}
	return st.level + 1, nil
}

// MaxSnooze bounds a snooze: longer, and it is a silence.
const MaxSnooze = 24 * time.Hour

// Snooze holds incident id's escalation until now+d.
func (e *Engine) Snooze(ctx context.Context, tx pgx.Tx, id string, d time.Duration, by string) (time.Time, error) {
	c, err := loadConfig(ctx, tx)
	if err != nil {
		return time.Time{}, err
	}
	_, inc, err := e.lockState(ctx, tx, c, id)
	if err != nil {
		return time.Time{}, err
	}
	if inc.status == "resolved" {
		return time.Time{}, fmt.Errorf("snooze %s: %w", id, incident.ErrResolved)
	}
	until := e.clock.Now().UTC().Add(d)
	if _, err := tx.Exec(ctx, `UPDATE escalations SET snoozed_until = $2, snoozed_by = $3 WHERE incident_id = $1`, id, until, by); err != nil {
		return time.Time{}, fmt.Errorf("snooze %s: %w", id, err)
	}
	return until, nil
}

// Replan drops the plan of an incident no step was taken for, so that
// the next tick plans it again (after a person changed its priority).
func Replan(ctx context.Context, tx pgx.Tx, id string) error {
	_, err := tx.Exec(ctx, `DELETE FROM escalations WHERE incident_id = $1 AND level = 0 AND snoozed_until IS NULL`, id)
	return err
}

// StateOf returns where incident id's escalation is; nil before it is
// planned.
func StateOf(ctx context.Context, q Querier, id string) (*monitorv1.IncidentEscalation, error) {
	rows, err := q.Query(ctx, `SELECT incident_id::text, policy, level, due_at, snoozed_until, stopped, snoozed_by FROM escalations
		WHERE incident_id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("load the escalation of %s: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (*monitorv1.IncidentEscalation, error) {
		var s state
		var by string
		if err := r.Scan(&s.incidentID, &s.policy, &s.level, &s.due, &s.snoozed, &s.stopped, &by); err != nil {
			return nil, err
		}
		e := &monitorv1.IncidentEscalation{Policy: s.policy, Level: s.level, Stopped: s.stopped, SnoozedBy: by}
		if s.due != nil {
			e.NextStepAt = timestamppb.New(*s.due)
		}
		if s.snoozed != nil {
			e.SnoozedUntil = timestamppb.New(*s.snoozed)
		}
		return e, nil
	})
	if err != nil || len(out) == 0 {
		return nil, err
	}
	return out[0], nil
}

// Lock locks incident id's escalation row, if it has one, before a person
// changes the incident: the engine locks the row, then the incident, and
// so must they.
func Lock(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `SELECT 1 FROM escalations WHERE incident_id = $1 FOR UPDATE`, id); err != nil {
		return fmt.Errorf("lock the escalation of %s: %w", id, err)
	}
	return nil
}

// Stop ends incident id's escalation at once, as a person acknowledged or
// resolved it (the engine would at the next due step; GetIncident says so
// now).
func Stop(ctx context.Context, tx pgx.Tx, id string, status typesv1.IncidentStatus) error {
	why := stopAcknowledged
	if status == typesv1.IncidentStatus_INCIDENT_STATUS_RESOLVED {
		why = stopResolved
	}
	if _, err := tx.Exec(ctx, `UPDATE escalations SET due_at = NULL, stopped = $2 WHERE incident_id = $1 AND due_at IS NOT NULL`, id, why); err != nil {
		return fmt.Errorf("stop the escalation of %s: %w", id, err)
	}
	return nil
}
