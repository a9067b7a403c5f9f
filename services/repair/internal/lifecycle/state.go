package lifecycle

import (
	"encoding/json"
	"time"

	"github.com/vigil-ops/vigil/services/repair/internal/action"
)

// State is what a repair carries between its steps (the state column,
// JSON: its field names are stored).
type State struct {
	Plan          *action.Plan   `json:"plan,omitempty"`
	Verify        *action.Verify `json:"verify,omitempty"`
	Undo          *action.Undo   `json:"undo,omitempty"`
	VerifyStarted time.Time      `json:"verify_started,omitzero"`
	// VerifyUntil and UndoOnFailure are the guardrails' as the change
	// was made: verification does not read them again on every look.
	VerifyUntil   time.Time `json:"verify_until,omitzero"`
	UndoOnFailure bool      `json:"undo_on_failure,omitempty"`
	// Deploy is the change asked of the deploy service (Vigil's apps).
	Deploy *DeployChange `json:"deploy,omitempty"`
}

// DeployChange is what a repair asked the deploy service for, kept in
// its state before asking: asked again (a worker that stopped midway),
// the repair sends the same change, which the deploy service finds made,
// rather than planning again against a Deployment it already changed.
type DeployChange struct {
	// Rollback: to the last good revision, which the deploy service
	// finds as the executor did (pkg/workload).
	Rollback         bool   `json:"rollback,omitempty"`
	Replicas         int32  `json:"replicas,omitempty"`
	Container        string `json:"container,omitempty"`
	MemoryLimitBytes int64  `json:"memory_limit_bytes,omitempty"`
}

// Change is what a repair changed, for its verification and its undo.
type Change struct {
	// Summary says what was done, for the timeline.
	Summary string
	Verify  action.Verify
	// Undo puts it back; nil when nothing may be undone (a change made
	// through the deploy service, whose history keeps it).
	Undo *action.Undo
	// Window is how long the change has to verify; UndoOnFailure whether
	// a change that does not is undone (the guardrails').
	Window        time.Duration
	UndoOnFailure bool
}

func (st State) json() json.RawMessage {
	// Plain values only: it cannot fail.
	b, _ := json.Marshal(st)
	return b
}
