package action

import (
	"errors"
	"fmt"
)

// Why a repair is refused: the Reason of a *RefusedError, matched with
// errors.Is.
var (
	// ErrNotSupported: the action is not one Vigil can carry out on this
	// kind of target (REPAIR_ACTION_NONE, UNSPECIFIED, an action with no
	// executor, a Pod where a Deployment is needed).
	ErrNotSupported = errors.New("not supported on this target")
	// ErrInvalid: the proposal is incomplete or malformed (a missing
	// parameter, negative replicas).
	ErrInvalid = errors.New("invalid proposal")
	// ErrNotFound: the target does not exist.
	ErrNotFound = errors.New("target not found")
	// ErrNotApplicable: the target exists but is not in a state the action
	// applies to (no previous revision, no such container, a pod no
	// controller would replace, a paused Deployment).
	ErrNotApplicable = errors.New("not applicable to the target as it is")
	// ErrLimit: the change is outside the policy's Limits.
	ErrLimit = errors.New("outside the policy's limits")
	// ErrChanged: the target is no longer what the repair was planned on;
	// plan again.
	ErrChanged = errors.New("target changed since the repair was planned")
)

// RefusedError is a repair that was not carried out because it does not
// apply: nothing was changed, and trying again will not help until the
// target or the proposal changes. Reason is one of the Err values above.
type RefusedError struct {
	Reason error
	Detail string
}

func (e *RefusedError) Error() string { return e.Reason.Error() + ": " + e.Detail }

// Unwrap lets errors.Is match the Reason.
func (e *RefusedError) Unwrap() error { return e.Reason }

// Refuse returns a *RefusedError for reason, its detail formatted.
func Refuse(reason error, format string, args ...any) error {
	return &RefusedError{Reason: reason, Detail: fmt.Sprintf(format, args...)}
}
