package analysis

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/vigil-ops/vigil/services/analysis/internal/engine"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/anthropic"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/gemini"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/ollama"
	"github.com/vigil-ops/vigil/services/analysis/internal/llm/openai"
)

// Providers are the LLM providers Vigil speaks.
var Providers = []string{"ollama", "openai", "anthropic", "gemini"}

// Provider configures one LLM provider.
type Provider struct {
	// URL of its API; the provider's public one when empty (Ollama:
	// http://localhost:11434).
	URL string
	// APIKey (Ollama: optional, for one behind an authenticating proxy).
	APIKey string
	Model  string
	// Prices in US dollars per million input and output tokens, for the
	// cost of each analysis and the daily budget.
	InputPrice, OutputPrice float64
}

// LLMOptions configure the LLM engines.
type LLMOptions struct {
	// Order of the providers tried before the rules (which always end the
	// chain); empty: rules only.
	Order     []string
	Providers map[string]Provider
	// Timeout of one provider's answer, a retry after a 429 included
	// (60 s).
	Timeout time.Duration
	// DailyTokens and DailyCost bound what all providers spend in a day
	// (UTC); 0: unbounded. A provider over budget is skipped.
	DailyTokens int
	DailyCost   float64
	// Pseudonymise replaces namespace, workload, pod, container, node
	// and cluster names in what is sent, and maps them back in the answer
	// (secrets, emails and addresses are always redacted).
	Pseudonymise bool
	// Language is what the analyses are written in for people
	// (VIGIL_LANGUAGE: en or zh-TW): the LLM is asked to answer in it,
	// and the rules say their findings in it. Languages are teams' own
	// over it, by team name (VIGIL_ANALYSIS_LANGUAGES): an incident's
	// analysis is in its team's.
	Language  string
	Languages map[string]string
}

// Validate reports options a user must fix.
func (o LLMOptions) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for _, name := range o.Order {
		p := o.Providers[name]
		switch {
		case !knownProvider(name):
			errs = append(errs, fmt.Errorf("VIGIL_ANALYSIS_ENGINES: %q is not one of %v", name, Providers))
		case seen[name]:
			errs = append(errs, fmt.Errorf("VIGIL_ANALYSIS_ENGINES: %q is listed twice", name))
		case p.Model == "":
			errs = append(errs, fmt.Errorf("VIGIL_%s_MODEL: missing (the model %s answers with)", upper(name), name))
		case name != "ollama" && p.APIKey == "":
			errs = append(errs, fmt.Errorf("VIGIL_%s_API_KEY: missing", upper(name)))
		}
		seen[name] = true
	}
	for team, lang := range o.Languages {
		if team == "" || lang == "" {
			errs = append(errs, fmt.Errorf("VIGIL_ANALYSIS_LANGUAGES: %q=%q: want team=language, as payments=zh-TW", team, lang))
		}
	}
	if o.Timeout < 0 || o.DailyTokens < 0 || o.DailyCost < 0 {
		errs = append(errs, errors.New("VIGIL_LLM_TIMEOUT, VIGIL_LLM_DAILY_TOKENS, VIGIL_LLM_DAILY_COST: must not be negative"))
	}
	return errors.Join(errs...)
}

func knownProvider(name string) bool { return slices.Contains(Providers, name) }

func upper(s string) string { return strings.ToUpper(s) }

// NewEngines builds the chain: the LLM providers of o in their order,
// sharing one daily budget, then the rules.
func NewEngines(o LLMOptions, log *slog.Logger) (Engines, error) {
	if err := o.Validate(); err != nil {
		return Engines{}, err
	}
	budget := &llm.DailyBudget{MaxTokens: o.DailyTokens, MaxCost: o.DailyCost}
	e := Engines{Timeout: o.Timeout, Language: o.Language, Languages: o.Languages}
	for _, name := range o.Order {
		p := o.Providers[name]
		var (
			provider llm.Provider
			err      error
		)
		switch name {
		case "ollama":
			provider = ollama.New(ollama.Options{URL: p.URL, APIKey: p.APIKey})
		case "openai":
			provider, err = openai.New(openai.Options{URL: p.URL, APIKey: p.APIKey})
		case "anthropic":
			provider, err = anthropic.New(anthropic.Options{URL: p.URL, APIKey: p.APIKey})
		case "gemini":
			provider, err = gemini.New(gemini.Options{URL: p.URL, APIKey: p.APIKey})
		}
		if err != nil {
			return Engines{}, err
		}
		eng, err := llm.New(llm.Options{
			Name: name, Model: p.Model, Timeout: o.Timeout, InputPrice: p.InputPrice, OutputPrice: p.OutputPrice,
			Pseudonymise: o.Pseudonymise, Language: o.Language,
		}, provider, budget, log)
		if err != nil {
			return Engines{}, err
		}
		e.LLMs = append(e.LLMs, engine.Engine(eng))
	}
	return e, nil
}
