// Package matcher reads Alertmanager label matchers (alertname="X",
// severity!="info", instance=~"web-.*", job!~"test.*") with Alertmanager's
// own UTF-8 parser, so a matcher means in Vigil exactly what it means in
// amtool and in an Alertmanager route or silence.
package matcher

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/prometheus/alertmanager/matcher/parse"
	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/common/model"
)

// errEmpty is the reason given for a filter that holds no matcher: an empty
// filter is a mistake (an unset flag or query parameter), not "match all".
var errEmpty = errors.New("no matcher")

// Error says which filter of a list could not be parsed, and why.
type Error struct {
	// Index is the filter's position in the list given to Parse.
	Index int
	// Filter is the filter as given.
	Filter string
	// Err is the parser's reason.
	Err error
}

func (e *Error) Error() string {
	return fmt.Sprintf("filter %d (%q): %v", e.Index, e.Filter, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// Parse reads filters, each holding one matcher or several separated by
// commas, with or without braces: `alertname="X"`, `{a="b", c=~"d.*"}`.
// It returns every matcher in order; an alert must match them all. The
// first filter that does not parse, or holds no matcher, is reported as an
// *Error.
func Parse(filters []string) ([]*labels.Matcher, error) {
	var out []*labels.Matcher
	for i, f := range filters {
		ms, err := parse.Matchers(f)
		if err == nil && len(ms) == 0 {
			err = errEmpty
		}
		if err == nil {
			err = valid(ms)
		}
		if err != nil {
			return nil, &Error{Index: i, Filter: f, Err: err}
		}
		out = append(out, ms...)
	}
	return out, nil
}

// valid refuses what the parser lets through but no alert can carry: an
// empty label name (`""="x"`) or a value that is not UTF-8 (unquoted bytes).
func valid(ms []*labels.Matcher) error {
	for _, m := range ms {
		if !model.UTF8Validation.IsValidLabelName(m.Name) {
			return fmt.Errorf("%q is not a valid label name", m.Name)
		}
		if !utf8.ValidString(m.Value) {
			return fmt.Errorf("the value of %q is not valid UTF-8", m.Name)
		}
	}
	return nil
}

// Matches reports whether lset satisfies every matcher. A label lset lacks
// has the empty value, as in Alertmanager: `team=""` matches an alert
// without a team label, and `team!="ops"` does too.
func Matches(ms []*labels.Matcher, lset map[string]string) bool {
	for _, m := range ms {
		if !m.Matches(lset[m.Name]) {
			return false
		}
	}
	return true
}
