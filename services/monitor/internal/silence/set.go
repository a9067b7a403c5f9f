package silence

import (
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
)

// Set is the silences that may mute an alert: those active or pending
// when it was loaded. It is read-only, so one Set may serve concurrent
// callers; load a new one to see new silences. A nil *Set mutes nothing.
type Set struct {
	entries []entry
	// names are the label names the matchers read, so that Muting looks
	// each up in an alert once, not once per matcher.
	names map[string]int
}

// cached is how many label names Muting remembers per call; matchers on
// further names look their label up each time.
const cached = 32

// entry is a silence laid out for Muting: its bounds, its matchers with
// the cheapest first, its compiled schedule.
type entry struct {
	id         string
	start, end time.Time
	matchers   []fastMatcher
	schedule   *schedule
}

// fastMatcher rejects a value without the literal prefix every match of
// its regular expression starts with before running the expression: most
// label values fail there (instance=~"db-.*" against "web-1").
type fastMatcher struct {
	*labels.Matcher
	prefix string
	name   int // index of Name in Set.names
}

func newFastMatcher(m *labels.Matcher, name int) fastMatcher {
	f := fastMatcher{Matcher: m, name: name}
	if m.Type == labels.MatchRegexp || m.Type == labels.MatchNotRegexp {
		// Unanchored, the same expression has the same literal prefix,
		// and LiteralPrefix is sound: every full match begins with it.
		if re, err := regexp.Compile(m.Value); err == nil {
			f.prefix, _ = re.LiteralPrefix()
		}
	}
	return f
}

func (f *fastMatcher) matches(v string) bool {
	if f.prefix != "" && !strings.HasPrefix(v, f.prefix) {
		return f.Type == labels.MatchNotRegexp
	}
	return f.Matches(v)
}

// labelCache remembers the values of an alert's labels during one call.
type labelCache struct {
	lset map[string]string
	have uint32
	vals [cached]string
}

func (c *labelCache) value(m *fastMatcher) string {
	if m.name >= cached {
		return c.lset[m.Name]
	}
	bit := uint32(1) << m.name
	if c.have&bit == 0 {
		c.vals[m.name] = c.lset[m.Name]
		c.have |= bit
	}
	return c.vals[m.name]
}

func (c *labelCache) matchAll(ms []fastMatcher) bool {
	for i := range ms {
		if !ms[i].matches(c.value(&ms[i])) {
			return false
		}
	}
	return true
}

// NewSet prepares silences for Muting. Silences expired by hand are left
// out; the rest are checked against their bounds on each call.
func NewSet(silences []*Silence) *Set {
	s := &Set{entries: make([]entry, 0, len(silences)), names: map[string]int{}}
	for _, sil := range silences {
		if !sil.expiredAt.IsZero() {
			continue
		}
		ms := make([]fastMatcher, len(sil.matchers))
		for i, m := range sil.matchers {
			k, ok := s.names[m.Name]
			if !ok {
				k = len(s.names)
				s.names[m.Name] = k
			}
			ms[i] = newFastMatcher(m, k)
		}
		// Equality rejects most alerts at the cost of a string compare;
		// regular expressions run only when every cheaper matcher passed.
		slices.SortStableFunc(ms, func(a, b fastMatcher) int { return cost(a.Matcher) - cost(b.Matcher) })
		s.entries = append(s.entries, entry{id: sil.id, start: sil.startsAt, end: sil.endsAt, matchers: ms, schedule: sil.schedule})
	}
	return s
}

func cost(m *labels.Matcher) int {
	switch m.Type {
	case labels.MatchEqual:
		return 0
	case labels.MatchNotEqual:
		return 1
	}
	return 2
}

// Len is how many silences the set holds.
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.entries)
}

// Muting returns the id of a silence that mutes an alert with labels lset
// at now, or "" when none does. It allocates nothing: it is called for
// every alert of a storm.
func (s *Set) Muting(lset map[string]string, now time.Time) string {
	if s == nil {
		return ""
	}
	c := labelCache{lset: lset}
	for i := range s.entries {
		e := &s.entries[i]
		if now.Before(e.start) || !now.Before(e.end) || !c.matchAll(e.matchers) {
			continue
		}
		if e.schedule == nil || e.schedule.covers(now) {
			return e.id
		}
	}
	return ""
}
