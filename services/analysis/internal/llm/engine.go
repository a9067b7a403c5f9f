package llm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/redact"
)

// Options configures an Engine.
type Options struct {
	// Name is the provider's name ("ollama", "openai", ...), the engine's
	// Name.
	Name  string
	Model string
	// MaxTokens bounds the answer; 2048 if zero.
	MaxTokens int
	// Timeout bounds a whole Analyze call, a retry after a 429 included;
	// 60s if zero.
	Timeout time.Duration
	// Prices per million tokens, in US dollars.
	InputPrice, OutputPrice float64
	// Pseudonymise resource names in what is sent (mapped back in the
	// answer).
	Pseudonymise bool
	// Secrets are literal values to redact wherever they appear.
	Secrets []string
	// Language is the BCP 47 tag of the language people read the
	// analysis in ("": English): the model is asked to write its summary,
	// root cause, what it ruled out and its reasoning in it. A bundle's
	// own Language (its team's) wins.
	Language string
}

// Validate says what is wrong with the options.
func (o Options) Validate() error {
	var errs []error
	if o.Name == "" {
		errs = append(errs, errors.New("llm engine: name missing"))
	}
	if o.Model == "" {
		errs = append(errs, fmt.Errorf("llm engine %s: model missing", o.Name))
	}
	if o.MaxTokens < 0 || o.Timeout < 0 || o.InputPrice < 0 || o.OutputPrice < 0 {
		errs = append(errs, fmt.Errorf("llm engine %s: max tokens, timeout and prices must not be negative", o.Name))
	}
	return errors.Join(errs...)
}

// Engine is an engine.Engine that asks one provider's model.
type Engine struct {
	opts     Options
	provider Provider
	budget   Budget
	log      *slog.Logger
}

var _ engine.Engine = (*Engine)(nil)

// New returns an Engine. budget may be nil: no budget.
func New(opts Options, provider Provider, budget Budget, log *slog.Logger) (*Engine, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if provider == nil {
		return nil, fmt.Errorf("llm engine %s: no provider", opts.Name)
	}
	if opts.MaxTokens == 0 {
		opts.MaxTokens = 2048
	}
	if opts.Timeout == 0 {
		opts.Timeout = 60 * time.Second
	}
	return &Engine{
		opts: opts, provider: provider, budget: budget,
		log: log.With("component", "llm", "engine", opts.Name),
	}, nil
}

// Name implements engine.Engine.
func (e *Engine) Name() string { return e.opts.Name }

// Analyze implements engine.Engine. An answer that fails validation
// returns engine.ErrUnusable together with a Result that carries only
// Engine, Model and Usage, so that what the call cost and what was sent
// can still be recorded. Over budget it returns ErrBudget without calling
// the provider.
func (e *Engine) Analyze(ctx context.Context, b *evidence.Bundle) (engine.Result, error) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, e.opts.Timeout)
	defer cancel()

	r := redact.New(redact.Options{Pseudonymise: e.opts.Pseudonymise, Secrets: e.opts.Secrets})
	lang := b.Language
	if lang == "" {
		lang = e.opts.Language
	}
	p, err := buildPrompt(b, r, lang)
	if err != nil {
		return engine.Result{}, fmt.Errorf("%s: %w", e.opts.Name, err)
	}
	req := Request{
		Model: e.opts.Model, System: p.system, User: p.user,
		Schema: Schema, SchemaName: SchemaName, MaxTokens: e.opts.MaxTokens,
	}
	if e.budget != nil {
		// The most this call may cost: the prompt (about four bytes a
		// token) and a full answer.
		in := (len(p.system)+len(p.user)+len(Schema))/4 + 1
		if err := e.budget.Allowed(ctx, e.amount(in, e.opts.MaxTokens)); err != nil {
			return engine.Result{}, fmt.Errorf("%s: %w", e.opts.Name, err)
		}
	}

	resp, err := e.complete(ctx, req)
	usage := engine.Usage{
		InputTokens: resp.InputTokens, OutputTokens: resp.OutputTokens,
		Duration: time.Since(start), Sent: "system:\n" + p.system + "\n\nuser:\n" + p.user,
	}
	spent := e.amount(resp.InputTokens, resp.OutputTokens)
	usage.Cost = spent.Cost
	if e.budget != nil && spent.Tokens > 0 {
		if serr := e.budget.Spend(context.WithoutCancel(ctx), spent); serr != nil {
			e.log.WarnContext(ctx, "record llm spend", "error", serr)
		}
	}
	model := resp.Model
	if model == "" {
		model = e.opts.Model
	}
	partial := engine.Result{Engine: e.opts.Name, Model: model, Usage: usage}
	if err != nil {
		return partial, fmt.Errorf("%s: %w", e.opts.Name, err)
	}

	res, err := ParseAnswer(resp.Text)
	if err != nil {
		return partial, fmt.Errorf("%s: %w", e.opts.Name, err)
	}
	if err := e.restore(&res, b, r, p); err != nil {
		return partial, fmt.Errorf("%s: %w: %w", e.opts.Name, engine.ErrUnusable, err)
	}
	res.Engine, res.Model, res.Usage = e.opts.Name, model, usage
	return res, nil
}

// complete calls the provider, and once more if it answered 429 with a
// Retry-After that fits in what is left of the call's time.
func (e *Engine) complete(ctx context.Context, req Request) (Response, error) {
	resp, err := e.provider.Complete(ctx, req)
	var se *StatusError
	if err == nil || !errors.As(err, &se) || !errors.Is(err, ErrRateLimited) || se.RetryAfter <= 0 {
		return resp, err
	}
	deadline, ok := ctx.Deadline()
	if ok && time.Until(deadline) <= se.RetryAfter {
		return resp, fmt.Errorf("retry-after %s exceeds the %s left of the call: %w", se.RetryAfter, time.Until(deadline).Round(time.Millisecond), err)
	}
	e.log.InfoContext(ctx, "llm rate limited, retrying", "retry_after", se.RetryAfter)
	if serr := sleepCtx(ctx, se.RetryAfter); serr != nil {
		return resp, fmt.Errorf("wait to retry: %w", serr)
	}
	return e.provider.Complete(ctx, req)
}

// restore maps what the model wrote back to the bundle: evidence ids to
// the items' ids, pseudonyms to names, and the target's cluster (which
// the model is never asked for) from the bundle.
func (e *Engine) restore(res *engine.Result, b *evidence.Bundle, r *redact.Redactor, p prompt) error {
	for i, id := range res.Evidence {
		itemID, ok := p.itemIDs[id]
		if !ok {
			return fmt.Errorf("evidence %q is not an item of the bundle", id)
		}
		res.Evidence[i] = itemID
	}
	res.Summary = r.Restore(res.Summary)
	res.RootCause = r.Restore(res.RootCause)
	res.Reasoning = r.Restore(res.Reasoning)
	for i, s := range res.RuledOut {
		res.RuledOut[i] = r.Restore(s)
	}
	if t := res.Proposal.GetTarget(); t != nil {
		t.Namespace = r.RestoreName(t.Namespace)
		t.Name = r.RestoreName(t.Name)
		t.Cluster = b.Target.GetCluster()
	}
	if m := res.Proposal.GetMemoryLimit(); m != nil {
		m.Container = r.RestoreName(m.Container)
	}
	if res.Proposal.GetAction() == typesv1.RepairAction_REPAIR_ACTION_UNSPECIFIED {
		return errors.New("no action")
	}
	return nil
}

func (e *Engine) amount(in, out int) Amount {
	return Amount{
		Tokens: in + out,
		Cost:   float64(in)*e.opts.InputPrice/1e6 + float64(out)*e.opts.OutputPrice/1e6,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
