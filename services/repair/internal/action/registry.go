package action

import (
	"context"
	"fmt"

	"k8s.io/client-go/kubernetes"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// Registry finds the executor of an action. Actions without one, and
// REPAIR_ACTION_NONE and UNSPECIFIED, are refused with ErrNotSupported.
type Registry struct {
	byAction map[typesv1.RepairAction]Executor
}

// NewRegistry returns a registry of executors. It panics on two executors
// of one action or an executor of NONE or UNSPECIFIED: a wiring mistake.
func NewRegistry(executors ...Executor) *Registry {
	r := &Registry{byAction: make(map[typesv1.RepairAction]Executor, len(executors))}
	for _, e := range executors {
		a := e.Action()
		if !executable(a) {
			panic(fmt.Sprintf("action: an executor of %s", a))
		}
		if _, dup := r.byAction[a]; dup {
			panic(fmt.Sprintf("action: two executors of %s", a))
		}
		r.byAction[a] = e
	}
	return r
}

func executable(a typesv1.RepairAction) bool {
	return a != typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED && a != typesv1.RepairAction_REPAIR_ACTION_NONE
}

// Executor returns the executor of a.
func (r *Registry) Executor(a typesv1.RepairAction) (Executor, error) {
	if e, ok := r.byAction[a]; ok {
		return e, nil
	}
	if !executable(a) {
		return nil, Refuse(ErrNotSupported, "%s is not a repair", a)
	}
	return nil, Refuse(ErrNotSupported, "no executor of %s", a)
}

// Plan plans p with the executor of its action.
func (r *Registry) Plan(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, lim Limits) (Plan, error) {
	e, err := r.Executor(p.GetAction())
	if err != nil {
		return Plan{}, err
	}
	return e.Plan(ctx, c, p, lim)
}

// Execute executes p with the executor of its action.
func (r *Registry) Execute(ctx context.Context, c kubernetes.Interface, p *typesv1.RepairProposal, run Run) (Result, error) {
	e, err := r.Executor(p.GetAction())
	if err != nil {
		return Result{}, err
	}
	return e.Execute(ctx, c, p, run)
}
