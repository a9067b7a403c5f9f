package oncall_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/oncall"
)

// local is the instant the clock in zone shows s ("2006-01-02 15:04"),
// with an explicit zone abbreviation where the wall clock is ambiguous.
func local(t testing.TB, zone, s string) time.Time {
	t.Helper()
	loc, err := time.LoadLocation(zone)
	require.NoError(t, err)
	at, err := time.ParseInLocation("2006-01-02 15:04", s, loc)
	require.NoError(t, err)
	return at
}

// taipei is a daily rotation of three from 09:00 on 1 March 2026, in a
// zone without daylight saving: the common case.
func taipei() oncall.Schedule {
	return oncall.Schedule{
		Zone: "Asia/Taipei",
		Layers: []oncall.Layer{{
			Participants: []string{"alice", "bob", "carol"},
			RotationDays: 1,
			Handoff:      "09:00",
			Start:        "2026-03-01",
		}},
	}
}

func TestAt(t *testing.T) {
	t.Parallel()
	tp := func(s string) time.Time { return local(t, "Asia/Taipei", s) }
	weekly := func(s *oncall.Schedule) { s.Layers[0].RotationDays = 7 }
	// dave's layer, from 3 March, wins over the first wherever it has
	// someone: everywhere from its first hand-off.
	secondLayer := func(s *oncall.Schedule) {
		s.Layers = append(s.Layers, oncall.Layer{Participants: []string{"dave"}, RotationDays: 7, Handoff: "18:00", Start: "2026-03-03"})
	}
	// dave covers office hours over the rotation, from the 2nd (a Monday);
	// nights of the weekend are nora's, from Friday 18:00 to Monday 09:00.
	officeHours := func(s *oncall.Schedule) {
		s.Layers = append(s.Layers, oncall.Layer{
			Participants: []string{"dave"}, RotationDays: 7, Handoff: "09:00", Start: "2026-03-02",
			Restrictions: []oncall.Window{{Weekdays: []time.Weekday{time.Monday, time.Tuesday, time.Wednesday, time.Thursday, time.Friday}, From: "09:00", To: "18:00"}},
		})
	}
	weekendNights := func(s *oncall.Schedule) {
		s.Layers = append(s.Layers, oncall.Layer{
			Participants: []string{"nora"}, RotationDays: 7, Handoff: "09:00", Start: "2026-03-02",
			Restrictions: []oncall.Window{
				{Weekdays: []time.Weekday{time.Friday, time.Saturday, time.Sunday}, From: "18:00", To: "09:00"},
				{Weekdays: []time.Weekday{time.Saturday, time.Sunday}, From: "09:00", To: "18:00"},
			},
		})
	}
	override := func(s *oncall.Schedule) {
		s.Overrides = []oncall.Override{{Who: "erin", Start: tp("2026-03-02 12:00"), End: tp("2026-03-02 14:00")}}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*oncall.Schedule)
		at     string // Asia/Taipei wall clock
		want   string // "" for nobody
	}{
		{"before the start date", nil, "2026-02-28 12:00", ""},
		{"on the start date before the first hand-off", nil, "2026-03-01 08:59", ""},
		{"first hand-off", nil, "2026-03-01 09:00", "alice"},
		{"just before the second hand-off", nil, "2026-03-02 08:59", "alice"},
		{"second hand-off", nil, "2026-03-02 09:00", "bob"},
		{"third", nil, "2026-03-03 23:00", "carol"},
		{"round the list", nil, "2026-03-04 09:00", "alice"},
		{"a year on", nil, "2027-03-01 09:00", "carol"}, // 365 days = 121×3 + 2
		{"weekly, end of the first week", weekly, "2026-03-08 08:59", "alice"},
		{"weekly, second week", weekly, "2026-03-08 09:00", "bob"},
		{"weekly, fourth week", weekly, "2026-03-22 09:00", "alice"},
		{"a later layer before it starts", secondLayer, "2026-03-03 17:59", "carol"},
		{"a later layer wins", secondLayer, "2026-03-03 18:00", "dave"},
		{"a later layer keeps winning", secondLayer, "2026-03-20 10:00", "dave"},
		{"office hours", officeHours, "2026-03-03 09:00", "dave"},
		{"after office hours, the rotation below", officeHours, "2026-03-03 18:00", "carol"},
		{"before office hours", officeHours, "2026-03-03 08:59", "bob"},
		{"office hours on a Saturday", officeHours, "2026-03-07 12:00", "alice"},
		{"office hours before the layer starts", officeHours, "2026-03-01 12:00", "alice"},
		{"a window over midnight, before it", weekendNights, "2026-03-06 17:59", "carol"},
		{"a window over midnight, opening on Friday", weekendNights, "2026-03-06 18:00", "nora"},
		{"a window over midnight, past it", weekendNights, "2026-03-07 03:00", "nora"},
		{"two windows meet", weekendNights, "2026-03-07 09:00", "nora"},
		{"the last window closes on Monday", weekendNights, "2026-03-09 09:00", "carol"},
		{"a window's Thursday is not listed", weekendNights, "2026-03-05 20:00", "bob"},
		{"before an override", override, "2026-03-02 11:59", "bob"},
		{"an override wins", override, "2026-03-02 12:00", "erin"},
		{"an override ends", override, "2026-03-02 14:00", "bob"},
		{"an override wins over later layers", func(s *oncall.Schedule) {
			secondLayer(s)
			s.Overrides = []oncall.Override{{Who: "erin", Start: tp("2026-03-10 00:00"), End: tp("2026-03-11 00:00")}}
		}, "2026-03-10 12:00", "erin"},
		{"an override before any layer starts", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{{Who: "erin", Start: tp("2026-02-01 00:00"), End: tp("2026-02-02 00:00")}}
		}, "2026-02-01 12:00", "erin"},
		{"no layers", func(s *oncall.Schedule) { s.Layers = nil }, "2026-03-02 12:00", ""},
		{"an invalid schedule has nobody", func(s *oncall.Schedule) { s.Layers[0].Handoff = "9am" }, "2026-03-02 12:00", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := taipei()
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			who, ok := s.At(tp(tc.at))
			require.Equal(t, tc.want, who)
			require.Equal(t, tc.want != "", ok)
		})
	}
}

// render writes a shift as its person, start and length, the start in UTC
// so that a hand-off is named without ambiguity.
func render(sh []oncall.Shift) []string {
	var out []string
	for _, s := range sh {
		out = append(out, fmt.Sprintf("%s %s %s", s.Who, s.Start.UTC().Format("01-02 15:04Z"), s.End.Sub(s.Start)))
	}
	return out
}

// TestDaylightSaving checks that hand-offs keep the zone's wall clock
// across its changes, and the rule for hand-offs at skipped and repeated
// times. 2026: America/New_York springs forward on 8 March (02:00 → 03:00)
// and falls back on 1 November (02:00 → 01:00); Europe/Berlin on 29 March
// (02:00 → 03:00) and 25 October (03:00 → 02:00).
func TestDaylightSaving(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		zone     string
		days     int
		handoff  string
		start    string
		from, to string // wall clock in zone
		want     []string
	}{
		{"New York spring, daily 09:00: a 23-hour shift", "America/New_York", 1, "09:00", "2026-03-06", "2026-03-07 09:00", "2026-03-10 09:00", []string{
			"b 03-07 14:00Z 23h0m0s", // 09:00 EST → 09:00 EDT
			"a 03-08 13:00Z 24h0m0s",
			"b 03-09 13:00Z 24h0m0s",
		}},
		{"New York fall, daily 09:00: a 25-hour shift", "America/New_York", 1, "09:00", "2026-10-30", "2026-10-31 09:00", "2026-11-03 09:00", []string{
			"b 10-31 13:00Z 25h0m0s",
			"a 11-01 14:00Z 24h0m0s",
			"b 11-02 14:00Z 24h0m0s",
		}},
		{"Berlin spring, daily 09:00", "Europe/Berlin", 1, "09:00", "2026-03-27", "2026-03-28 09:00", "2026-03-30 09:00", []string{
			"b 03-28 08:00Z 23h0m0s",
			"a 03-29 07:00Z 24h0m0s",
		}},
		{"Berlin fall, daily 09:00", "Europe/Berlin", 1, "09:00", "2026-10-23", "2026-10-24 09:00", "2026-10-26 09:00", []string{
			"b 10-24 07:00Z 25h0m0s",
			"a 10-25 08:00Z 24h0m0s",
		}},
		{"New York spring, weekly Monday 09:00: a week an hour short", "America/New_York", 7, "09:00", "2026-02-23", "2026-03-02 09:00", "2026-03-16 09:00", []string{
			"b 03-02 14:00Z 167h0m0s",
			"a 03-09 13:00Z 168h0m0s",
		}},
		{"Berlin fall, weekly: a week an hour long", "Europe/Berlin", 7, "09:00", "2026-10-19", "2026-10-19 09:00", "2026-11-02 09:00", []string{
			"a 10-19 07:00Z 169h0m0s",
			"b 10-26 08:00Z 168h0m0s",
		}},
		// 02:30 does not exist on 8 March in New York: the hand-off is at
		// the change, 03:00 EDT (07:00Z); Go's time.Date would say 01:30 EST.
		{"New York hand-off at a skipped time", "America/New_York", 1, "02:30", "2026-03-06", "2026-03-07 02:30", "2026-03-09 02:30", []string{
			"b 03-07 07:30Z 23h30m0s",
			"a 03-08 07:00Z 23h30m0s",
		}},
		// Go's time.Date would say 03:30 CEST here.
		{"Berlin hand-off at a skipped time", "Europe/Berlin", 1, "02:30", "2026-03-27", "2026-03-28 02:30", "2026-03-30 02:30", []string{
			"b 03-28 01:30Z 23h30m0s", // → 03:00 CEST
			"a 03-29 01:00Z 23h30m0s", // → 02:30 CEST
		}},
		// 01:30 happens twice on 1 November in New York: the first, EDT.
		{"New York hand-off at a repeated time", "America/New_York", 1, "01:30", "2026-10-30", "2026-10-31 01:30", "2026-11-02 01:30", []string{
			"b 10-31 05:30Z 24h0m0s",
			"a 11-01 05:30Z 25h0m0s", // 01:30 EDT → 01:30 EST
		}},
		// 02:30 happens twice on 25 October in Berlin: the first, CEST
		// (Go's time.Date would say the second, CET).
		{"Berlin hand-off at a repeated time", "Europe/Berlin", 1, "02:30", "2026-10-23", "2026-10-24 02:30", "2026-10-26 02:30", []string{
			"b 10-24 00:30Z 24h0m0s",
			"a 10-25 00:30Z 25h0m0s",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := oncall.Schedule{Zone: tc.zone, Layers: []oncall.Layer{{
				Participants: []string{"a", "b"}, RotationDays: tc.days, Handoff: tc.handoff, Start: tc.start,
			}}}
			require.NoError(t, s.Validate())
			shifts := s.Shifts(local(t, tc.zone, tc.from), local(t, tc.zone, tc.to))
			require.Equal(t, tc.want, render(shifts))
			for _, sh := range shifts {
				who, ok := s.At(sh.Start)
				require.True(t, ok)
				require.Equal(t, sh.Who, who)
				who, _ = s.At(sh.End.Add(-time.Nanosecond))
				require.Equal(t, sh.Who, who, "on call until the end of the shift")
			}
		})
	}
}

func TestShifts(t *testing.T) {
	t.Parallel()
	ny := func(s string) time.Time { return local(t, "America/New_York", s) }
	s := oncall.Schedule{
		Zone: "America/New_York",
		Layers: []oncall.Layer{
			{Participants: []string{"alice", "bob"}, RotationDays: 1, Handoff: "09:00", Start: "2026-03-01"},
			// frank takes over from the 9th at 18:00, a weekly layer above.
			{Participants: []string{"frank"}, RotationDays: 7, Handoff: "18:00", Start: "2026-03-09"},
		},
		Overrides: []oncall.Override{
			// erin covers alice's shift across the change of the clocks.
			{Who: "erin", Start: ny("2026-03-08 00:00"), End: ny("2026-03-08 05:00")},
			// and frank's own override joins his layer's shift.
			{Who: "frank", Start: ny("2026-03-09 12:00"), End: ny("2026-03-09 18:00")},
		},
	}
	require.NoError(t, s.Validate())
	from, to := ny("2026-03-07 06:00"), ny("2026-03-10 06:00")
	shifts := s.Shifts(from, to)
	require.Equal(t, []string{
		"bob 03-07 11:00Z 3h0m0s", // cut to the range: from 06:00 EST
		"alice 03-07 14:00Z 15h0m0s",
		"erin 03-08 05:00Z 4h0m0s",  // 00:00 EST to 05:00 EDT: four hours
		"alice 03-08 09:00Z 4h0m0s", // until the 09:00 EDT hand-off
		"bob 03-08 13:00Z 24h0m0s",
		"alice 03-09 13:00Z 3h0m0s",
		"frank 03-09 16:00Z 18h0m0s", // the override and the layer, joined
	}, render(shifts))
	require.Equal(t, from, shifts[0].Start)
	require.Equal(t, to, shifts[len(shifts)-1].End)
	for i := 1; i < len(shifts); i++ {
		require.Equal(t, shifts[i-1].End, shifts[i].Start, "shift %d starts where %d ends", i, i-1)
	}

	t.Run("office hours over a rotation, across the change of the clocks", func(t *testing.T) {
		t.Parallel()
		s := oncall.Schedule{
			Zone: "America/New_York",
			Layers: []oncall.Layer{
				{Participants: []string{"alice", "bob"}, RotationDays: 7, Handoff: "09:00", Start: "2026-03-02"},
				{
					Participants: []string{"dave"}, RotationDays: 1, Handoff: "00:00", Start: "2026-01-01",
					// Saturday 01:00 to 03:00, over the hour New York skips
					// on Sunday 8 March; and Monday office hours.
					Restrictions: []oncall.Window{
						{Weekdays: []time.Weekday{time.Sunday}, From: "01:00", To: "03:00"},
						{Weekdays: []time.Weekday{time.Monday}, From: "09:00", To: "18:00"},
					},
				},
			},
		}
		require.NoError(t, s.Validate())
		from, to := ny("2026-03-07 00:00"), ny("2026-03-10 00:00")
		shifts := s.Shifts(from, to)
		require.Equal(t, []string{
			"alice 03-07 05:00Z 25h0m0s",
			"dave 03-08 06:00Z 1h0m0s",   // 01:00 EST to 03:00 EDT: one hour
			"alice 03-08 07:00Z 30h0m0s", // until Monday 09:00 EDT
			"dave 03-09 13:00Z 9h0m0s",   // over the weekly hand-off to bob
			"bob 03-09 22:00Z 6h0m0s",    // 18:00 to midnight EDT
		}, render(shifts))
		require.Equal(t, from, shifts[0].Start)
		require.Equal(t, to, shifts[len(shifts)-1].End)
		for i := 1; i < len(shifts); i++ {
			require.Equal(t, shifts[i-1].End, shifts[i].Start, "shift %d starts where %d ends", i, i-1)
		}
	})
	t.Run("nobody before the start", func(t *testing.T) {
		t.Parallel()
		got := s.Shifts(ny("2026-02-27 00:00"), ny("2026-03-01 10:00"))
		require.Equal(t, []string{"alice 03-01 14:00Z 1h0m0s"}, render(got))
	})
	t.Run("an empty range", func(t *testing.T) {
		t.Parallel()
		require.Empty(t, s.Shifts(to, from))
		require.Empty(t, s.Shifts(to, to))
	})
	t.Run("an invalid schedule", func(t *testing.T) {
		t.Parallel()
		bad := s
		bad.Zone = "Mars/Olympus"
		require.Empty(t, bad.Shifts(from, to))
	})
}
