// Package lifecycle is a repair's lifecycle as one aggregate: a Repair
// goes from proposed to decided, answered, executed and verified (or
// blocked, failed, undone and escalated, expired) only through its
// methods. Each checks the repair's status first — a transition its
// status does not allow is refused with a *TransitionError and changes
// nothing — then changes the repair and records what the change leaves
// behind: the row's columns, the steps of its timeline and the events it
// announces (Changes). The repository writes all of it with the row in
// one transaction (postgres.Repairs.Update), so no state change goes
// unrecorded or unannounced.
//
// It is pure on purpose, as internal/guard is: no database, bus or
// cluster. The service brings what it learned (the guardrails' decision,
// the executor's result, the verification) and the time; every transition
// can be tested with tables.
package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/pkg/bus"
	repairv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/repair/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Producer names the repair service in the events its repairs announce.
const Producer = "repair"

// Repair is one repair: the API's message, what the work queue keeps
// beside it, and what its transitions recorded since it was loaded.
type Repair struct {
	r         *repairv1.Repair
	resource  string
	automatic bool
	attempts  int
	tries     int
	state     State
	recent    Counts
	changes   Changes
}

// Stored is what the repository keeps of a repair beside its message.
type Stored struct {
	// Automatic: decided to run without a person (counted by the hourly
	// limits).
	Automatic bool
	// Attempts: how often a worker leased it, the token of the lease's
	// holder (failed tries are counted apart, by the store).
	Attempts int
	// Tries: the leases of its current step since that step last went
	// well, this one included.
	Tries int
	// State is the state column (JSON), nil before the decision.
	State json.RawMessage
	// Recent are the counts a decision is checked against; the
	// repository loads them only for a repair not decided yet.
	Recent Counts
}

// Counts are what the hourly limits and the cooldown are checked against.
type Counts struct {
	// Automatic repairs decided in the last hour: overall, of the
	// repair's resource.
	Overall, OnResource int
	// The resource rests until then (after a failed repair).
	CooldownUntil time.Time
}

// Changes are what the transitions since Restore or Propose recorded:
// the repository writes them with the row, in one transaction.
type Changes struct {
	// Row: the repair's message or columns changed.
	Row bool
	// Automatic, DecidedAt, ExpiresAt, CooldownUntil: the work queue's
	// and the counters' columns (zero: unchanged).
	Automatic     bool
	DecidedAt     time.Time
	ExpiresAt     time.Time
	CooldownUntil time.Time
	// RemindAt is when a snoozed approval is asked again; NoReminder
	// clears it.
	RemindAt   time.Time
	NoReminder bool
	// State, when not nil, replaces the state column.
	State json.RawMessage
	// Release lets the workers take the repair again at once (its lease
	// ends).
	Release bool
	// Steps are appended to its timeline; Events go to the outbox.
	Steps  []*repairv1.RepairStep
	Events []bus.Event
}

// Restore is a repair as the repository stored it.
func Restore(r *repairv1.Repair, s Stored) *Repair {
	rp := &Repair{r: r, resource: Resource(r.GetProposal().GetTarget()), automatic: s.Automatic, attempts: s.Attempts, tries: s.Tries, recent: s.Recent}
	if len(s.State) > 0 {
		// A state that does not decode is treated as none: the worst it
		// costs is an undo or a deploy change not known.
		_ = json.Unmarshal(s.State, &rp.state)
	}
	return rp
}

// Proto is the repair as the API shows it. Callers read it; only the
// transitions change it.
func (r *Repair) Proto() *repairv1.Repair { return r.r }

// ID is the repair's id.
func (r *Repair) ID() string { return r.r.GetId() }

// Status is where the repair is in its lifecycle.
func (r *Repair) Status() repairv1.RepairStatus { return r.r.GetStatus() }

// Resource is what the counters and cooldowns count by.
func (r *Repair) Resource() string { return r.resource }

// Automatic says whether the guardrails let it run without a person.
func (r *Repair) Automatic() bool { return r.automatic }

// Attempts is how often a worker leased it.
func (r *Repair) Attempts() int { return r.attempts }

// Tries is how often a worker leased its current step since the step
// last went well, this lease included.
func (r *Repair) Tries() int { return r.tries }

// State is what the repair carries between its steps.
func (r *Repair) State() State { return r.state }

// Recent are the counts its decision is checked against (loaded only
// while it is not decided).
func (r *Repair) Recent() Counts { return r.recent }

// Changes are what its transitions recorded.
func (r *Repair) Changes() Changes { return r.changes }

// ErrNotPending refuses an answer to a repair that is not waiting for
// one (decided already, expired, never asked), and the expiry of one
// answered meanwhile.
var ErrNotPending = errors.New("not waiting for an answer")

// ErrNotApprovable refuses approving what the guardrails never let run
// (a deny-listed action, a namespace not allowed, not the incident's
// subject...).
var ErrNotApprovable = errors.New("cannot be approved")

// ErrIllegal is what a *TransitionError that is not about an answer
// wraps: the repair's status does not allow the transition.
var ErrIllegal = errors.New("not allowed in this status")

// Refused says whether err is a refused answer: one that does not count
// and is recorded in the timeline as such.
func Refused(err error) bool {
	return errors.Is(err, ErrNotPending) || errors.Is(err, ErrNotApprovable)
}

// TransitionError is a transition the repair's status does not allow;
// nothing was changed. It wraps ErrNotPending for an answer or an expiry,
// ErrIllegal otherwise.
type TransitionError struct {
	ID         string
	Transition string
	Status     repairv1.RepairStatus
	// DecidedBy is who answered it, when someone did.
	DecidedBy string
	// Expired is the deadline of an approval that passed it.
	Expired time.Time
}

func (e *TransitionError) Error() string {
	if !e.Expired.IsZero() {
		return fmt.Sprintf("repair %s expired at %s: %v", e.ID, e.Expired.UTC().Format(time.RFC3339), e.Unwrap())
	}
	msg := "repair " + e.ID + " is " + StatusName(e.Status)
	if e.DecidedBy != "" {
		msg += " (decided by " + e.DecidedBy + ")"
	}
	if errors.Is(e, ErrNotPending) {
		return msg + ": " + ErrNotPending.Error()
	}
	return msg + ": cannot " + e.Transition
}

// Unwrap is the error's kind.
func (e *TransitionError) Unwrap() error {
	switch e.Transition {
	case approve, reject, expire, postpone:
		return ErrNotPending
	}
	return ErrIllegal
}

// StatusName is a status for people: "pending_approval".
func StatusName(s repairv1.RepairStatus) string {
	if s == repairv1.RepairStatus_REPAIR_STATUS_UNSPECIFIED {
		return "proposed"
	}
	return strings.ToLower(strings.TrimPrefix(s.String(), "REPAIR_STATUS_"))
}

// Resource is what counters and cooldowns count by:
// "cluster/namespace/Kind/name".
func Resource(t *typesv1.ResourceRef) string {
	return strings.Join([]string{t.GetCluster(), t.GetNamespace(), t.GetKind(), t.GetName()}, "/")
}

// TargetName names a target for people: "Deployment shop/web".
func TargetName(t *typesv1.ResourceRef) string {
	return t.GetKind() + " " + t.GetNamespace() + "/" + t.GetName()
}

func actionName(a typesv1.RepairAction) string {
	return strings.TrimPrefix(a.String(), "REPAIR_ACTION_")
}

func riskName(r typesv1.Risk) string { return strings.TrimPrefix(r.String(), "RISK_") }
