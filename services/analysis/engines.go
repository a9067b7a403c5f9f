package analysis

import (
	"context"
	"time"

	analysisv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/analysis/v1"
	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/evidence"
	"github.com/vigil-ops/vigil/services/analysis/internal/rules"
)

// Engines is the configured chain: the LLM engines in their order, the
// rules engine always (it answers when no other does, and its verdict is
// what the others' answers are checked against).
type Engines struct {
	LLMs []engine.Engine
	// Timeout bounds each LLM call (60 s).
	Timeout time.Duration
	Limits  engine.Limits
	// Language of the findings ("": English; see LLMOptions), and
	// Languages, a team's own over it (by team name).
	Language  string
	Languages map[string]string
}

// language is what b's findings are written in: its team's, else the
// installation's.
func (e Engines) language(b *evidence.Bundle) string {
	if l, ok := e.Languages[b.Incident.Team]; ok && b.Incident.Team != "" {
		return l
	}
	return e.Language
}

// RulesOnly is the default: the deterministic rules, no network.
func RulesOnly() Engines { return Engines{} }

// Analyze implements Analyzer: first ("rules" or a provider's name) runs
// before the configured order; "rules" skips the LLMs.
func (e Engines) Analyze(ctx context.Context, b *evidence.Bundle, first string) (engine.Result, []*analysisv1.Attempt, error) {
	llms := e.LLMs
	switch {
	case first == "rules":
		llms = nil
	case first != "":
		llms = make([]engine.Engine, 0, len(e.LLMs))
		for _, l := range e.LLMs {
			if l.Name() == first {
				llms = append(llms, l)
			}
		}
		for _, l := range e.LLMs {
			if l.Name() != first {
				llms = append(llms, l)
			}
		}
	}
	timeout := e.Timeout
	if timeout == 0 {
		timeout = time.Minute
	}
	lim := e.Limits
	if lim == (engine.Limits{}) {
		lim = engine.DefaultLimits()
	}
	b.Language = e.language(b)
	res, attempts, err := engine.NewChain(rules.New(rules.Options{Limits: lim, Language: b.Language}), llms, timeout, lim).Analyze(ctx, b)
	var out []*analysisv1.Attempt
	for _, a := range attempts {
		if a.Used || a.Err == nil {
			continue
		}
		out = append(out, &analysisv1.Attempt{Engine: a.Engine, Error: a.Err.Error()})
	}
	if err == nil {
		for _, a := range attempts {
			if a.Used {
				res.Usage.Duration = a.Duration
			}
		}
	}
	return res, out, err
}
