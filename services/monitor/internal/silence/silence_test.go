package silence_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/server"
	"github.com/vigil-ops/vigil/services/monitor/internal/silence"
)

var t0 = time.Date(2025, 6, 2, 12, 0, 0, 0, time.UTC)

func params(matchers ...string) silence.Params {
	return silence.Params{Matchers: matchers, StartsAt: t0, EndsAt: t0.Add(2 * time.Hour), CreatedBy: "alice", Comment: "deploy"}
}

func mustNew(t *testing.T, p silence.Params) *silence.Silence {
	t.Helper()
	s, err := silence.New(p, t0)
	require.NoError(t, err)
	return s
}

func violations(t *testing.T, err error) []string {
	t.Helper()
	var inv *server.BadRequestError
	require.ErrorAs(t, err, &inv)
	require.Equal(t, "invalid silence", inv.Message)
	var fields []string
	for _, v := range inv.Violations {
		require.NotEmpty(t, v.Description)
		fields = append(fields, v.Field)
	}
	return fields
}

func TestNew(t *testing.T) {
	t.Parallel()
	s, err := silence.New(params(`alertname="Watchdog"`, `{namespace="shop", pod=~"web-.*"}`), t0)
	require.NoError(t, err)
	r := s.Record()
	require.NotEmpty(t, r.ID)
	require.Equal(t, s.ID(), r.ID)
	require.Equal(t, []string{`alertname="Watchdog"`, `namespace="shop"`, `pod=~"web-.*"`}, r.Matchers, "one canonical string per matcher")
	require.Equal(t, t0, r.CreatedAt)
	require.Equal(t, "alice", r.CreatedBy)
	require.Equal(t, "deploy", r.Comment)
	require.True(t, r.ExpiredAt.IsZero())
	require.Nil(t, r.Schedule)

	again, err := silence.New(params(`a="b"`), t0)
	require.NoError(t, err)
	require.NotEqual(t, s.ID(), again.ID(), "every silence gets its own id")
}

func TestNewStartsNowByDefault(t *testing.T) {
	t.Parallel()
	p := params(`a="b"`)
	p.StartsAt = time.Time{}
	s := mustNew(t, p)
	require.Equal(t, t0, s.Record().StartsAt)
	require.Equal(t, silence.StateActive, s.State(t0))
}

func TestNewInvalid(t *testing.T) {
	t.Parallel()
	sched := func(tz string, ws ...silence.Window) *silence.Schedule {
		return &silence.Schedule{TimeZone: tz, Windows: ws}
	}
	tests := []struct {
		name   string
		edit   func(*silence.Params)
		fields []string
	}{
		{"no matchers", func(p *silence.Params) { p.Matchers = nil }, []string{"matchers"}},
		{"bad syntax", func(p *silence.Params) { p.Matchers = []string{`a="b"`, `c=`} }, []string{"matchers[1]"}},
		{"bad regexp", func(p *silence.Params) { p.Matchers = []string{`a=~"("`} }, []string{"matchers[0]"}},
		{"every bad one", func(p *silence.Params) { p.Matchers = []string{`x`, `a="b"`, `y!`} }, []string{"matchers[0]", "matchers[2]"}},
		{"empty filter", func(p *silence.Params) { p.Matchers = []string{``} }, []string{"matchers[0]"}},
		{"matches everything", func(p *silence.Params) { p.Matchers = []string{`foo=~".*"`} }, []string{"matchers"}},
		{"matches the empty string", func(p *silence.Params) { p.Matchers = []string{`foo=""`, `bar=~"x|"`} }, []string{"matchers"}},
		{"no end", func(p *silence.Params) { p.EndsAt = time.Time{} }, []string{"ends_at"}},
		{"ends at start", func(p *silence.Params) { p.EndsAt = p.StartsAt }, []string{"ends_at"}},
		{"ends before start", func(p *silence.Params) { p.StartsAt = t0.Add(3 * time.Hour) }, []string{"ends_at"}},
		{"ends in the past", func(p *silence.Params) {
			p.StartsAt, p.EndsAt = t0.Add(-2*time.Hour), t0.Add(-time.Hour)
		}, []string{"ends_at"}},
		{"unknown zone", func(p *silence.Params) {
			p.Schedule = sched("Mars/Olympus", silence.Window{Start: "22:00", End: "02:00"})
		}, []string{"schedule.time_zone"}},
		{"local zone", func(p *silence.Params) {
			p.Schedule = sched("Local", silence.Window{Start: "22:00", End: "02:00"})
		}, []string{"schedule.time_zone"}},
		{"no windows", func(p *silence.Params) { p.Schedule = sched("UTC") }, []string{"schedule.windows"}},
		{"bad day", func(p *silence.Params) {
			p.Schedule = sched("", silence.Window{Days: []string{"mon", "funday"}, Start: "22:00", End: "02:00"})
		}, []string{"schedule.windows[0].days[1]"}},
		{"bad times", func(p *silence.Params) {
			p.Schedule = sched("", silence.Window{Start: "09:00", End: "17:00"},
				silence.Window{Start: "24:00", End: "7:00"}, silence.Window{Start: "12:60", End: "ab:cd"})
		}, []string{
			"schedule.windows[1].start", "schedule.windows[1].end",
			"schedule.windows[2].start", "schedule.windows[2].end",
		}},
		{"several problems", func(p *silence.Params) {
			p.Matchers = []string{`a=~"("`}
			p.EndsAt = time.Time{}
			p.Schedule = sched("Nowhere/Else", silence.Window{Start: "09:00", End: ""})
		}, []string{"matchers[0]", "ends_at", "schedule.time_zone", "schedule.windows[0].end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := params(`alertname="X"`)
			tt.edit(&p)
			s, err := silence.New(p, t0)
			require.Nil(t, s)
			require.ElementsMatch(t, tt.fields, violations(t, err))
		})
	}
}

func TestNewAllowsWhatAlertmanagerAllows(t *testing.T) {
	t.Parallel()
	for _, ms := range [][]string{
		{`alertname="X"`},
		{`foo=~".*"`, `alertname="X"`}, // one matcher that needs a label is enough
		{`env!="prod"`},                // negative matchers do not count as matching everything, as in Alertmanager
		{`env!~"prod|staging"`},
		{`"service.name"="checkout"`},
	} {
		_, err := silence.New(params(ms...), t0)
		require.NoError(t, err, "%q", ms)
	}
}

func TestFromRecord(t *testing.T) {
	t.Parallel()
	p := params(`alertname="X"`, `instance=~"web-[0-9]+"`)
	p.Schedule = &silence.Schedule{TimeZone: "Europe/Berlin", Windows: []silence.Window{{Days: []string{"Sat", "sun"}, Start: "22:00", End: "02:00"}}}
	s := mustNew(t, p)
	require.NoError(t, s.Expire("bob", t0.Add(time.Minute)))
	r := s.Record()
	require.Equal(t, []string{"sat", "sun"}, r.Schedule.Windows[0].Days, "day names are normalised")

	again, err := silence.FromRecord(r)
	require.NoError(t, err)
	require.Equal(t, r, again.Record())

	r.ID = ""
	r.Matchers = []string{`foo=~".*"`}
	_, err = silence.FromRecord(r)
	require.ElementsMatch(t, []string{"id", "matchers"}, violations(t, err))
}

func TestState(t *testing.T) {
	t.Parallel()
	s := mustNew(t, silence.Params{Matchers: []string{`a="b"`}, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)})
	tests := []struct {
		at   time.Time
		want silence.State
	}{
		{t0, silence.StatePending},
		{t0.Add(time.Hour - time.Nanosecond), silence.StatePending},
		{t0.Add(time.Hour), silence.StateActive},
		{t0.Add(2*time.Hour - time.Nanosecond), silence.StateActive},
		{t0.Add(2 * time.Hour), silence.StateExpired},
		{t0.Add(48 * time.Hour), silence.StateExpired},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, s.State(tt.at), "at %s", tt.at)
	}
	require.Equal(t, "pending", silence.StatePending.String())
	require.Equal(t, "active", silence.StateActive.String())
	require.Equal(t, "expired", silence.StateExpired.String())
}

func TestExpire(t *testing.T) {
	t.Parallel()
	s := mustNew(t, params(`a="b"`))
	now := t0.Add(10 * time.Minute)
	lset := map[string]string{"a": "b"}
	require.True(t, s.Mutes(lset, now))

	require.NoError(t, s.Expire("bob", now))
	require.Equal(t, silence.StateExpired, s.State(now))
	require.False(t, s.Mutes(lset, now.Add(time.Second)), "expired by hand before its end")
	r := s.Record()
	require.Equal(t, now, r.ExpiredAt)
	require.Equal(t, "bob", r.ExpiredBy)

	err := s.Expire("carol", now.Add(time.Minute))
	require.ErrorIs(t, err, silence.ErrExpired)
	require.Equal(t, "bob", s.Record().ExpiredBy, "a second expiry changes nothing")

	ended := mustNew(t, params(`a="b"`))
	require.ErrorIs(t, ended.Expire("bob", t0.Add(3*time.Hour)), silence.ErrExpired, "one that ended on its own")

	pending := mustNew(t, silence.Params{Matchers: []string{`a="b"`}, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)})
	require.NoError(t, pending.Expire("bob", t0))
	require.Equal(t, silence.StateExpired, pending.State(t0.Add(90*time.Minute)), "an expired pending silence never starts")
}

func TestMutes(t *testing.T) {
	t.Parallel()
	s := mustNew(t, params(`alertname="HighLatency"`, `namespace=~"shop|cart"`, `team!="ops"`))
	in := t0.Add(time.Minute)
	tests := []struct {
		name string
		lset map[string]string
		at   time.Time
		want bool
	}{
		{"all match", map[string]string{"alertname": "HighLatency", "namespace": "shop"}, in, true},
		{"regexp alternative", map[string]string{"alertname": "HighLatency", "namespace": "cart", "team": "dev"}, in, true},
		{"one does not match", map[string]string{"alertname": "HighLatency", "namespace": "billing"}, in, false},
		{"negative matcher", map[string]string{"alertname": "HighLatency", "namespace": "shop", "team": "ops"}, in, false},
		{"missing label is empty", map[string]string{"alertname": "HighLatency"}, in, false},
		{"before start", map[string]string{"alertname": "HighLatency", "namespace": "shop"}, t0.Add(-time.Second), false},
		{"at end", map[string]string{"alertname": "HighLatency", "namespace": "shop"}, t0.Add(2 * time.Hour), false},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, s.Mutes(tt.lset, tt.at), tt.name)
	}
}

func zone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	require.NoError(t, err)
	return loc
}

// TestScheduleWindows checks windows in their own time zones, across
// midnight, month ends and the nights daylight saving time starts and ends.
func TestScheduleWindows(t *testing.T) {
	t.Parallel()
	type check struct {
		at   string // RFC 3339, with the offset in force there and then
		want bool
	}
	tests := []struct {
		name   string
		tz     string
		window silence.Window
		checks []check
	}{
		{"Tokyo, across midnight", "Asia/Tokyo", silence.Window{Days: []string{"fri"}, Start: "22:00", End: "02:00"}, []check{
			{"2025-06-13T21:59:59+09:00", false},
			{"2025-06-13T22:00:00+09:00", true}, // Friday 13:00 UTC
			{"2025-06-14T00:00:00+09:00", true},
			{"2025-06-14T01:59:59+09:00", true},
			{"2025-06-14T02:00:00+09:00", false},
			{"2025-06-12T22:30:00+09:00", false}, // Thursday
			{"2025-06-13T01:00:00+09:00", false}, // Friday early: Thursday's window, not listed
			{"2025-06-14T22:30:00+09:00", false}, // Saturday
			{"2025-06-13T13:30:00Z", true},       // the same instant in UTC
		}},
		{"New York in summer", "America/New_York", silence.Window{Days: []string{"fri"}, Start: "22:00", End: "02:00"}, []check{
			{"2025-06-13T21:59:00-04:00", false},
			{"2025-06-14T02:00:00Z", true}, // Friday 22:00 EDT, already Saturday in UTC
			{"2025-06-14T01:30:00-04:00", true},
			{"2025-06-14T06:00:00Z", false}, // Saturday 02:00 EDT
		}},
		{"New York in winter", "America/New_York", silence.Window{Days: []string{"fri"}, Start: "22:00", End: "02:00"}, []check{
			{"2025-01-18T02:30:00Z", false}, // Friday 21:30 EST
			{"2025-01-18T03:00:00Z", true},  // Friday 22:00 EST
			{"2025-01-18T06:59:59Z", true},
			{"2025-01-18T07:00:00Z", false}, // Saturday 02:00 EST
		}},
		{"DST ends overnight (New York)", "America/New_York", silence.Window{Days: []string{"sat"}, Start: "22:00", End: "02:00"}, []check{
			// Sunday 2 November 2025, 02:00 EDT becomes 01:00 EST: the
			// window lasts five hours of real time.
			{"2025-11-01T21:59:59-04:00", false},
			{"2025-11-01T22:00:00-04:00", true},
			{"2025-11-02T01:30:00-04:00", true}, // 01:30 the first time
			{"2025-11-02T01:30:00-05:00", true}, // 01:30 the second time
			{"2025-11-02T01:59:59-05:00", true},
			{"2025-11-02T02:00:00-05:00", false},
		}},
		{"DST starts overnight (New York)", "America/New_York", silence.Window{Days: []string{"sat"}, Start: "22:00", End: "03:00"}, []check{
			// Sunday 9 March 2025, 02:00 EST becomes 03:00 EDT: four hours.
			{"2025-03-08T22:00:00-05:00", true},
			{"2025-03-09T01:59:59-05:00", true},
			{"2025-03-09T06:59:59Z", true},
			{"2025-03-09T03:00:00-04:00", false}, // 07:00 UTC
		}},
		{"DST starts inside a daytime window (Berlin)", "Europe/Berlin", silence.Window{Days: []string{"sun"}, Start: "01:00", End: "04:00"}, []check{
			// Sunday 30 March 2025, 02:00 CET becomes 03:00 CEST: two hours.
			{"2025-03-30T00:59:59+01:00", false},
			{"2025-03-30T01:00:00+01:00", true},
			{"2025-03-30T03:30:00+02:00", true},
			{"2025-03-30T04:00:00+02:00", false}, // 02:00 UTC: only three hours after 01:00 CET
		}},
		{"weekdays, same day", "Europe/Berlin", silence.Window{Days: []string{"mon", "tue"}, Start: "09:00", End: "17:00"}, []check{
			{"2025-06-02T08:59:59+02:00", false}, // Monday, just before
			{"2025-06-02T09:00:00+02:00", true},
			{"2025-06-02T06:30:00Z", false},     // Monday 08:30 CEST
			{"2025-06-02T07:30:00Z", true},      // Monday 09:30 CEST
			{"2025-06-01T23:30:00-08:00", true}, // Monday 09:30 CEST, still Sunday in California
			{"2025-06-03T16:59:59+02:00", true}, // Tuesday
			{"2025-06-03T17:00:00+02:00", false},
			{"2025-06-03T15:00:00Z", false},      // Tuesday 17:00 CEST
			{"2025-06-04T12:00:00+02:00", false}, // Wednesday
			{"2025-06-01T12:00:00+02:00", false}, // Sunday
			{"2025-06-16T12:00:00+02:00", true},  // two weeks later
			{"2025-01-06T08:30:00Z", true},       // Monday 09:30 CET, in winter
			{"2025-01-06T16:30:00Z", false},      // Monday 17:30 CET
		}},
		{"Sunday into Monday, month end", "Asia/Tokyo", silence.Window{Days: []string{"sat"}, Start: "23:00", End: "01:00"}, []check{
			{"2025-05-31T23:30:00+09:00", true}, // Saturday 31 May
			{"2025-06-01T00:30:00+09:00", true}, // Sunday 1 June
			{"2025-06-01T01:00:00+09:00", false},
			{"2025-06-01T23:30:00+09:00", false},
		}},
		{"every day", "", silence.Window{Start: "02:00", End: "03:00"}, []check{
			{"2025-06-02T02:30:00Z", true},
			{"2025-06-05T02:30:00Z", true},
			{"2025-06-05T03:30:00Z", false},
		}},
		{"whole day", "UTC", silence.Window{Days: []string{"sun"}, Start: "00:00", End: "00:00"}, []check{
			{"2025-06-01T00:00:00Z", true},
			{"2025-06-01T23:59:59Z", true},
			{"2025-06-02T00:00:00Z", false},
			{"2025-05-31T23:59:59Z", false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			first, err := time.Parse(time.RFC3339, tt.checks[0].at)
			require.NoError(t, err)
			s, err := silence.FromRecord(silence.Record{
				ID: "x", Matchers: []string{`a="b"`}, StartsAt: first.AddDate(-1, 0, 0), EndsAt: first.AddDate(1, 0, 0),
				Schedule: &silence.Schedule{TimeZone: tt.tz, Windows: []silence.Window{tt.window}},
			})
			require.NoError(t, err)
			set := silence.NewSet([]*silence.Silence{s})
			for _, c := range tt.checks {
				at, err := time.Parse(time.RFC3339, c.at)
				require.NoError(t, err)
				require.Equal(t, c.want, s.Mutes(map[string]string{"a": "b"}, at), "at %s (%s)", c.at, at.In(zoneOr(t, tt.tz)))
				want := ""
				if c.want {
					want = "x"
				}
				require.Equal(t, want, set.Muting(map[string]string{"a": "b"}, at), "Set.Muting at %s", c.at)
			}
		})
	}
}

func zoneOr(t *testing.T, name string) *time.Location {
	if name == "" {
		return time.UTC
	}
	return zone(t, name)
}

func TestScheduleOnlyInsideBounds(t *testing.T) {
	t.Parallel()
	p := params(`a="b"`) // 12:00 to 14:00 UTC on Monday 2 June 2025
	p.Schedule = &silence.Schedule{Windows: []silence.Window{{Start: "13:00", End: "18:00"}}}
	s := mustNew(t, p)
	lset := map[string]string{"a": "b"}
	require.False(t, s.Mutes(lset, t0.Add(30*time.Minute)), "active, between windows")
	require.Equal(t, silence.StateActive, s.State(t0.Add(30*time.Minute)), "active between its windows")
	require.True(t, s.Mutes(lset, t0.Add(90*time.Minute)))
	require.False(t, s.Mutes(lset, t0.Add(150*time.Minute)), "inside the window, after the end")
}

func TestSetMuting(t *testing.T) {
	t.Parallel()
	web := mustNew(t, params(`alertname="HighLatency"`, `instance=~"web-.*"`))
	db := mustNew(t, params(`alertname="DiskFull"`))
	pending := mustNew(t, silence.Params{Matchers: []string{`alertname="Deploying"`}, StartsAt: t0.Add(time.Hour), EndsAt: t0.Add(2 * time.Hour)})
	expired := mustNew(t, params(`alertname="Flapping"`))
	require.NoError(t, expired.Expire("bob", t0))
	set := silence.NewSet([]*silence.Silence{web, db, pending, expired})
	require.Equal(t, 3, set.Len(), "silences expired by hand are left out")

	now := t0.Add(time.Minute)
	tests := []struct {
		name string
		lset map[string]string
		at   time.Time
		want string
	}{
		{"first", map[string]string{"alertname": "HighLatency", "instance": "web-1"}, now, web.ID()},
		{"second", map[string]string{"alertname": "DiskFull", "instance": "db-1"}, now, db.ID()},
		{"no match", map[string]string{"alertname": "HighLatency", "instance": "db-1"}, now, ""},
		{"pending, before start", map[string]string{"alertname": "Deploying"}, now, ""},
		{"pending, once started", map[string]string{"alertname": "Deploying"}, t0.Add(time.Hour), pending.ID()},
		{"ended", map[string]string{"alertname": "DiskFull"}, t0.Add(2 * time.Hour), ""},
		{"expired by hand", map[string]string{"alertname": "Flapping"}, now, ""},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, set.Muting(tt.lset, tt.at), tt.name)
	}

	var none *silence.Set
	require.Empty(t, none.Muting(map[string]string{"alertname": "DiskFull"}, now), "a nil set mutes nothing")
	require.Zero(t, none.Len())
}

func TestSetMutingAllocatesNothing(t *testing.T) {
	set, lset := benchSet(t)
	now := t0.Add(time.Minute)
	require.NotEmpty(t, set.Muting(lset, now), "the last silence mutes it")
	allocs := testing.AllocsPerRun(100, func() { set.Muting(lset, now) })
	require.Zero(t, allocs)
}

// benchSet is 50 silences of the shapes people write, the last of which
// (a maintenance window) mutes the 10-label alert returned with it.
func benchSet(tb testing.TB) (*silence.Set, map[string]string) {
	tb.Helper()
	var ss []*silence.Silence
	for i := range 49 {
		var ms []string
		switch i % 4 {
		case 0:
			ms = []string{fmt.Sprintf(`alertname="Alert%d"`, i)}
		case 1:
			ms = []string{`alertname="HighLatency"`, fmt.Sprintf(`namespace="ns-%d"`, i)}
		case 2:
			ms = []string{fmt.Sprintf(`instance=~"db-%d-.*"`, i), `severity!="critical"`}
		case 3:
			ms = []string{`alertname=~"Kube.*"`, fmt.Sprintf(`cluster="c%d"`, i), `team!~"ops|sre"`}
		}
		s, err := silence.New(params(ms...), t0)
		if err != nil {
			tb.Fatal(err)
		}
		ss = append(ss, s)
	}
	p := params(`namespace=~"shop|cart"`, `alertname="HighLatency"`, `severity="warning"`)
	p.Schedule = &silence.Schedule{TimeZone: "Europe/Berlin", Windows: []silence.Window{{Start: "13:00", End: "15:00"}}}
	last, err := silence.New(p, t0)
	if err != nil {
		tb.Fatal(err)
	}
	ss = append(ss, last)
	lset := map[string]string{
		"alertname": "HighLatency", "namespace": "shop", "severity": "warning", "instance": "web-7:8080",
		"job": "checkout", "pod": "checkout-6d5f7c9b8-x2k4q", "container": "app", "cluster": "eu-1",
		"team": "payments", "service": "checkout",
	}
	return silence.NewSet(ss), lset
}

func BenchmarkSetMuting(b *testing.B) {
	set, lset := benchSet(b)
	now := t0.Add(time.Minute)
	b.ReportAllocs()
	for b.Loop() {
		if set.Muting(lset, now) == "" {
			b.Fatal("want the last silence to mute the alert")
		}
	}
}
