package access

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// LoginLimits bound failed logins, so that guessing passwords is slow and
// a flood of them does not take the password hashes real users need.
//
// Per user (the name tried, whether or not it exists, so that a lock says
// nothing about who exists): UserFailures failures in a row are free;
// each one after locks the name for a time that doubles from LockBase to
// LockMax. The count starts again after UserWindow without a failure (nor
// a lock). These counts are in Postgres, shared by every replica: the
// guessing bound holds however many replicas there are.
//
// Per client address: at most AddressFailures failed (or not yet
// decided) logins a minute, refilled evenly, per replica. This is flood
// control, and costs no database round trip: an address over it is
// refused before anything else is done.
//
// A refused login takes no hash slot, so a flood from one address, or
// against one name, leaves the slots to everyone else.
type LoginLimits struct {
	UserFailures      int
	UserWindow        time.Duration
	LockBase, LockMax time.Duration
	AddressFailures   int
}

// DefaultLoginLimits are 5 attempts per name, then locks of 1, 2, 4, 8,
// 15 minutes, counted until 15 minutes pass without one; 20 failures a
// minute per address.
var DefaultLoginLimits = LoginLimits{
	UserFailures: 5, UserWindow: 15 * time.Minute, LockBase: time.Minute, LockMax: 15 * time.Minute,
	AddressFailures: 20,
}

func (l LoginLimits) withDefaults() LoginLimits {
	d := DefaultLoginLimits
	if l.UserFailures <= 0 {
		l.UserFailures = d.UserFailures
	}
	if l.UserWindow <= 0 {
		l.UserWindow = d.UserWindow
	}
	if l.LockBase <= 0 {
		l.LockBase = d.LockBase
	}
	if l.LockMax <= 0 {
		l.LockMax = max(d.LockMax, l.LockBase)
	}
	if l.AddressFailures <= 0 {
		l.AddressFailures = d.AddressFailures
	}
	return l
}

// ThrottledError is a login refused before its password was checked.
type ThrottledError struct {
	// Reason words it for the person ("too many failed logins for
	// alice"); RetryAfter is when to try again.
	Reason     string
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%s: try again in %s", e.Reason, e.RetryAfter.Round(time.Second))
}

// LoginFailures are the failed logins per name (postgres.Store).
type LoginFailures interface {
	// LoginAttempt counts an attempt before its password is checked, and
	// locks name when it is one too many (see LoginLimits); while name is
	// locked it returns the lock's end, and zero otherwise.
	LoginAttempt(ctx context.Context, name string, now time.Time, l LoginLimits) (time.Time, error)
	// LoginSucceeded forgets name's attempts, and its lock.
	LoginSucceeded(ctx context.Context, name string) error
}

// addresses is a token bucket per client address, in this replica.
type addresses struct {
	mu      sync.Mutex
	perMin  float64
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

// maxAddresses bounds the buckets kept: past it, full (idle) buckets go
// first, then any.
const maxAddresses = 1 << 16

func newAddresses(perMin int) *addresses {
	return &addresses{perMin: float64(perMin), buckets: map[string]*bucket{}}
}

func (a *addresses) refill(b *bucket, now time.Time) {
	b.tokens = min(a.perMin, b.tokens+now.Sub(b.at).Minutes()*a.perMin)
	b.at = now
}

// take takes a token of addr, or says how long until there is one.
func (a *addresses) take(addr string, now time.Time) (time.Duration, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, ok := a.buckets[addr]
	if !ok {
		if len(a.buckets) >= maxAddresses {
			a.evict(now)
		}
		b = &bucket{tokens: a.perMin, at: now}
		a.buckets[addr] = b
	}
	a.refill(b, now)
	if b.tokens < 1 {
		return time.Duration((1 - b.tokens) / a.perMin * float64(time.Minute)), false
	}
	b.tokens--
	return 0, true
}

// give returns a token taken for a login that succeeded.
func (a *addresses) give(addr string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.buckets[addr]; ok {
		b.tokens = min(a.perMin, b.tokens+1)
	}
}

func (a *addresses) evict(now time.Time) {
	for k, b := range a.buckets {
		if a.refill(b, now); b.tokens >= a.perMin {
			delete(a.buckets, k)
		}
	}
	for k := range a.buckets {
		if len(a.buckets) < maxAddresses*3/4 {
			return
		}
		delete(a.buckets, k)
	}
}
