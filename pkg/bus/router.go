package bus

import (
	"context"
	"fmt"
	"slices"
)

// Router sends each event to the typed handler registered for its type. A
// is an extra argument every handler takes: a database transaction, say, or
// struct{} when there is none.
type Router[A any] struct {
	routes map[string]func(context.Context, A, Event) error
}

// NewRouter returns an empty Router.
func NewRouter[A any]() *Router[A] {
	return &Router[A]{routes: map[string]func(context.Context, A, Event) error{}}
}

// On registers fn for events of type T. It panics when T has no subject or
// already has a handler: both are programming errors found at start.
func On[A any, T Event](r *Router[A], fn func(ctx context.Context, a A, e T) error) {
	var zero T // a nil message still describes its type
	subject, err := SubjectOf(zero)
	if err != nil {
		panic(err)
	}
	if _, dup := r.routes[subject]; dup {
		panic(fmt.Sprintf("bus: two handlers for %s", subject))
	}
	r.routes[subject] = func(ctx context.Context, a A, e Event) error {
		t, ok := e.(T)
		if !ok {
			return Permanent(fmt.Errorf("bus: %s carries %T", subject, e))
		}
		return fn(ctx, a, t)
	}
}

// Subjects are the subjects with a handler, sorted: a consumer's filter.
func (r *Router[A]) Subjects() []string {
	out := make([]string, 0, len(r.routes))
	for s := range r.routes {
		out = append(out, s)
	}
	slices.Sort(out)
	return out
}

// Dispatch calls the handler of d's event.
func (r *Router[A]) Dispatch(a A, d *Delivery) error {
	fn, ok := r.routes[d.Subject]
	if !ok {
		return Permanent(fmt.Errorf("bus: no handler for %s", d.Subject))
	}
	return fn(d.Context(), a, d.Event)
}

// Handler returns a BatchHandler calling r's handlers one delivery at a
// time, with a as their extra argument.
func Handler[A any](r *Router[A], a A) BatchHandler {
	return BatchHandlerFunc(func(_ context.Context, ds []*Delivery) []error {
		errs := make([]error, len(ds))
		for i, d := range ds {
			errs[i] = r.Dispatch(a, d)
		}
		return errs
	})
}

// BatchHandlerFunc adapts a function to a BatchHandler.
type BatchHandlerFunc func(ctx context.Context, ds []*Delivery) []error

// HandleBatch calls f.
func (f BatchHandlerFunc) HandleBatch(ctx context.Context, ds []*Delivery) []error { return f(ctx, ds) }
