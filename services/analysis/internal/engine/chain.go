package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
)

// Attempt is one engine's turn, kept with the analysis.
type Attempt struct {
	Engine string
	Model  string
	// Err is why the engine's answer was not used (it failed, timed out,
	// or Check refused it: errors.Is(Err, ErrUnusable)); nil when it
	// answered.
	Err error
	// Used is the attempt whose result the chain returned.
	Used     bool
	Duration time.Duration
	Usage    Usage
}

// Chain runs engines in order, each bounded by a per-call timeout, and
// returns the first answer Check accepts. The rules engine always runs,
// first, because its verdict is what Check measures the others against;
// its own answer is the one returned when no other engine's is usable, so
// the chain fails only when the context is cancelled.
type Chain struct {
	rules   Engine
	engines []Engine
	timeout time.Duration
	limits  Limits
}

// NewChain returns a chain of engines (LLM providers in their configured
// order) ending with rules; timeout bounds each call (0: only ctx does).
func NewChain(rules Engine, engines []Engine, timeout time.Duration, lim Limits) *Chain {
	return &Chain{rules: rules, engines: engines, timeout: timeout, limits: lim}
}

// Analyze runs the chain on b. The attempts are every engine that ran, in
// the order they ran, for the record.
func (c *Chain) Analyze(ctx context.Context, b *evidence.Bundle) (Result, []Attempt, error) {
	verdict, rulesAttempt := c.call(ctx, c.rules, b)
	if rulesAttempt.Err != nil {
		return Result{}, []Attempt{rulesAttempt}, fmt.Errorf("rules: %w", rulesAttempt.Err)
	}
	attempts := []Attempt{rulesAttempt}
	for _, e := range c.engines {
		if err := ctx.Err(); err != nil {
			return Result{}, attempts, fmt.Errorf("analysis: %w", err)
		}
		res, at := c.call(ctx, e, b)
		if at.Err == nil {
			res, at.Err = Check(b, res, verdict, c.limits)
		}
		at.Used = at.Err == nil
		attempts = append(attempts, at)
		if at.Used {
			return res, attempts, nil
		}
	}
	attempts[0].Used = true
	res, err := Check(b, verdict, verdict, c.limits)
	if err != nil {
		// A rule proposed what Check refuses: a bug in a rule, but
		// still an answer: nobody acts, and the record says why.
		attempts[0].Err = err
		res = Result{
			Summary:    verdict.Summary,
			RootCause:  verdict.RootCause,
			Evidence:   known(b, verdict.Evidence),
			RuledOut:   verdict.RuledOut,
			Proposal:   &typesv1.RepairProposal{Action: typesv1.RepairAction_REPAIR_ACTION_NONE, Target: b.Target},
			Confidence: 0,
			Risk:       typesv1.Risk_RISK_LOW,
			Reasoning:  fmt.Sprintf("rule %s proposed %s, which failed the checks (%v): a person decides", verdict.Rule, verdict.Proposal.GetAction(), err),
			Engine:     verdict.Engine,
			Rule:       verdict.Rule,
		}
	}
	return res, attempts, nil
}

type answer struct {
	res Result
	err error
}

// call runs one engine under the per-call timeout. An engine that ignores
// its context is abandoned when the timeout passes (its goroutine ends
// when it returns); one that panics is recorded as failed.
func (c *Chain) call(ctx context.Context, e Engine, b *evidence.Bundle) (Result, Attempt) {
	at := Attempt{Engine: e.Name()}
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	start := time.Now()
	done := make(chan answer, 1)
	go func() {
		defer func() {
			if v := recover(); v != nil {
				done <- answer{err: fmt.Errorf("engine %s panicked: %v", e.Name(), v)}
			}
		}()
		r, err := e.Analyze(ctx, b)
		done <- answer{r, err}
	}()
	var a answer
	select {
	case a = <-done:
	case <-ctx.Done():
		a.err = ctx.Err()
	}
	at.Duration = time.Since(start)
	if a.err == nil && ctx.Err() != nil {
		a.err = ctx.Err() // answered, but too late
	}
	if a.err != nil {
		if errors.Is(a.err, context.DeadlineExceeded) && c.timeout > 0 {
			a.err = fmt.Errorf("no answer within %s: %w", c.timeout, a.err)
		}
		at.Err = a.err
		at.Model, at.Usage = a.res.Model, a.res.Usage
		return Result{}, at
	}
	a.res.Engine = e.Name()
	at.Model, at.Usage = a.res.Model, a.res.Usage
	return a.res, at
}
