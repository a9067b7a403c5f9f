package llm

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Budget is a daily allowance of tokens and money for LLM calls. Engines
// ask before a call and report what it cost after; one Budget may be
// shared by several engines.
type Budget interface {
	// Allowed returns nil if a call that may cost up to want can be made
	// now, or an error wrapping ErrBudget.
	Allowed(ctx context.Context, want Amount) error
	// Spend records what a call cost.
	Spend(ctx context.Context, spent Amount) error
}

// Amount is tokens (input and output together) and US dollars.
type Amount struct {
	Tokens int
	Cost   float64
}

// DailyBudget is an in-memory Budget that resets at midnight UTC. A zero
// limit is no limit. It forgets what was spent when the process restarts.
type DailyBudget struct {
	MaxTokens int
	MaxCost   float64
	// Now is the clock; time.Now if nil.
	Now func() time.Time

	mu    sync.Mutex
	day   string
	spent Amount
}

// Allowed implements Budget.
func (b *DailyBudget) Allowed(_ context.Context, want Amount) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	if b.MaxTokens > 0 && b.spent.Tokens+want.Tokens > b.MaxTokens {
		return fmt.Errorf("%w: %d of %d tokens spent today, a call may take %d", ErrBudget, b.spent.Tokens, b.MaxTokens, want.Tokens)
	}
	if b.MaxCost > 0 && b.spent.Cost+want.Cost > b.MaxCost {
		return fmt.Errorf("%w: $%.4f of $%.4f spent today, a call may cost $%.4f", ErrBudget, b.spent.Cost, b.MaxCost, want.Cost)
	}
	return nil
}

// Spend implements Budget.
func (b *DailyBudget) Spend(_ context.Context, spent Amount) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	b.spent.Tokens += spent.Tokens
	b.spent.Cost += spent.Cost
	return nil
}

// Spent is what was spent today.
func (b *DailyBudget) Spent() Amount {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.roll()
	return b.spent
}

func (b *DailyBudget) roll() {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	if day := now().UTC().Format(time.DateOnly); day != b.day {
		b.day, b.spent = day, Amount{}
	}
}
