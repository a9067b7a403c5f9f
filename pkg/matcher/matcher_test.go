package matcher_test

import (
	"errors"
	"strconv"
	"testing"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/matcher"
)

// m is a matcher as the test expects it: type, name, value.
type m struct {
	typ         labels.MatchType
	name, value string
}

func flatten(ms []*labels.Matcher) []m {
	out := make([]m, 0, len(ms))
	for _, x := range ms {
		out = append(out, m{x.Type, x.Name, x.Value})
	}
	return out
}

func TestParse(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filters []string
		want    []m
	}{
		{"equal", []string{`alertname="Watchdog"`}, []m{{labels.MatchEqual, "alertname", "Watchdog"}}},
		{"not equal", []string{`severity!="info"`}, []m{{labels.MatchNotEqual, "severity", "info"}}},
		{"regexp", []string{`instance=~"web-.*"`}, []m{{labels.MatchRegexp, "instance", "web-.*"}}},
		{"not regexp", []string{`job!~"test.*"`}, []m{{labels.MatchNotRegexp, "job", "test.*"}}},
		{"unquoted value", []string{`alertname=Watchdog`}, []m{{labels.MatchEqual, "alertname", "Watchdog"}}},
		{"empty value", []string{`team=""`}, []m{{labels.MatchEqual, "team", ""}}},
		{"braces", []string{`{alertname="X"}`}, []m{{labels.MatchEqual, "alertname", "X"}}},
		{"several in braces", []string{`{a="b", c=~"d.*"}`}, []m{
			{labels.MatchEqual, "a", "b"}, {labels.MatchRegexp, "c", "d.*"},
		}},
		{"several without braces", []string{`a="b",c!="d"`}, []m{
			{labels.MatchEqual, "a", "b"}, {labels.MatchNotEqual, "c", "d"},
		}},
		{"trailing comma", []string{`{a="b",}`}, []m{{labels.MatchEqual, "a", "b"}}},
		{"several filters", []string{`a="b"`, `{c=~"d|e"}`, `f!~"g"`}, []m{
			{labels.MatchEqual, "a", "b"}, {labels.MatchRegexp, "c", "d|e"}, {labels.MatchNotRegexp, "f", "g"},
		}},
		{"UTF-8 name, quoted", []string{`"service.name"="checkout"`}, []m{{labels.MatchEqual, "service.name", "checkout"}}},
		{"escaped quote", []string{`summary="say \"hi\""`}, []m{{labels.MatchEqual, "summary", `say "hi"`}}},
		{"comma inside quotes", []string{`a="b,c"`}, []m{{labels.MatchEqual, "a", "b,c"}}},
		{"none", nil, []m{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := matcher.Parse(tt.filters)
			require.NoError(t, err)
			require.Equal(t, tt.want, flatten(got))
		})
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		filters []string
		index   int
		reason  string
	}{
		{"no operator", []string{`alertname`}, 0, "expected an operator"},
		{"no value", []string{`alertname=`}, 0, "expected label value"},
		{"unclosed brace", []string{`{a="b"`}, 0, "expected close brace"},
		{"close without open", []string{`a="b"}`}, 0, "expected opening brace"},
		{"unterminated quote", []string{`a="b`}, 0, `missing end "`},
		{"bad regexp", []string{`instance=~"web-("`}, 0, "missing closing )"},
		{"bad regexp, negated", []string{`instance!~"*"`}, 0, "missing argument to repetition operator"},
		{"double comma", []string{`a="b",,c="d"`}, 0, "unexpected ,"},
		{"empty", []string{``}, 0, "no matcher"},
		{"empty braces", []string{`{}`}, 0, "no matcher"},
		{"empty label name", []string{`a="b", ""="c"`}, 0, `"" is not a valid label name`},
		{"value not UTF-8", []string{"a=\xff"}, 0, "not valid UTF-8"},
		{"second filter", []string{`a="b"`, `c=~"("`}, 1, "missing closing )"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := matcher.Parse(tt.filters)
			require.Error(t, err)
			require.Nil(t, got)
			var perr *matcher.Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, tt.index, perr.Index)
			require.Equal(t, tt.filters[tt.index], perr.Filter)
			require.ErrorContains(t, err, tt.reason)
			require.Contains(t, err.Error(), strconv.Quote(tt.filters[tt.index]), "the message names the filter")
		})
	}
}

func TestErrorUnwraps(t *testing.T) {
	t.Parallel()
	_, err := matcher.Parse([]string{""})
	var perr *matcher.Error
	require.ErrorAs(t, err, &perr)
	require.Same(t, perr.Err, errors.Unwrap(err))
}

func TestMatches(t *testing.T) {
	t.Parallel()
	lset := map[string]string{"alertname": "HighLatency", "instance": "web-1", "severity": "warning"}
	tests := []struct {
		filters []string
		want    bool
	}{
		{[]string{`alertname="HighLatency"`}, true},
		{[]string{`alertname="Other"`}, false},
		{[]string{`alertname!="Other"`}, true},
		{[]string{`alertname!="HighLatency"`}, false},
		{[]string{`instance=~"web-.*"`}, true},
		{[]string{`instance=~"web"`}, false}, // anchored, as in Alertmanager
		{[]string{`instance!~"db-.*"`}, true},
		{[]string{`instance!~"web-[0-9]"`}, false},
		{[]string{`alertname="HighLatency"`, `severity="critical"`}, false}, // all must match
		{[]string{`{alertname="HighLatency", severity=~"warn.*"}`}, true},
		// A missing label is the empty string.
		{[]string{`team=""`}, true},
		{[]string{`team!="ops"`}, true},
		{[]string{`team=~".*"`}, true},
		{[]string{`team=~".+"`}, false},
		{[]string{`team="ops"`}, false},
		{nil, true},
	}
	for _, tt := range tests {
		ms, err := matcher.Parse(tt.filters)
		require.NoError(t, err)
		require.Equal(t, tt.want, matcher.Matches(ms, lset), "%q", tt.filters)
	}
}

// FuzzParse checks that the parser never panics, that it returns matchers
// or an error but not both, and that a parsed matcher's canonical String()
// (what the silences table stores) parses back to the same matcher.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		`alertname="Watchdog"`, `severity!="info"`, `instance=~"web-.*"`, `job!~"test.*"`,
		`{a="b", c=~"d.*"}`, `a=b,c!=d`, `{a="b",}`, `"service.name"="x"`, `a="\"q\"\n\\"`,
		`a="ü日本"`, `a=~"(?i)x|y"`,
		``, `{}`, `{`, `}`, `a`, `a=`, `a="b`, `a=~"("`, `a="b",,`, `{a="b"}}`, `a="\xff"`, `=~"x"`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ms, err := matcher.Parse([]string{s})
		if err != nil {
			require.Nil(t, ms)
			var perr *matcher.Error
			require.ErrorAs(t, err, &perr)
			require.Equal(t, s, perr.Filter)
			return
		}
		require.NotEmpty(t, ms)
		for _, x := range ms {
			again, err := matcher.Parse([]string{x.String()})
			require.NoError(t, err, "String() of %#v = %q", x, x.String())
			require.Len(t, again, 1)
			require.Equal(t, m{x.Type, x.Name, x.Value}, m{again[0].Type, again[0].Name, again[0].Value}, "via %q", x.String())
		}
	})
}
