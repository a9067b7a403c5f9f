package oncall_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/oncall"
)

// FuzzAtAgreesWithShifts checks, for any instant and hand-off time around
// New York's changes of the clocks, that the shifts over a range holding
// the instant are contiguous and name whom At names.
func FuzzAtAgreesWithShifts(f *testing.F) {
	f.Add(int64(0), uint8(9), uint8(0), uint8(1))
	f.Add(int64(7*24*3600+7*3600), uint8(2), uint8(30), uint8(7)) // a spring-forward hand-off
	f.Add(int64(245*24*3600), uint8(1), uint8(30), uint8(1))      // a fall-back hand-off
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, secs int64, hour, mins, days uint8) {
		at := base.Add(time.Duration(secs%(400*24*3600)) * time.Second)
		s := oncall.Schedule{
			Zone: "America/New_York",
			Layers: []oncall.Layer{
				{Participants: []string{"a", "b", "c"}, RotationDays: int(days%14) + 1, Handoff: time.Date(0, 1, 1, int(hour%24), int(mins%60), 0, 0, time.UTC).Format("15:04"), Start: "2026-03-01"},
				{Participants: []string{"d", "e"}, RotationDays: 7, Handoff: "02:30", Start: "2026-06-01", Restrictions: []oncall.Window{
					{Weekdays: []time.Weekday{time.Sunday, time.Monday}, From: "01:30", To: "02:30"}, // over both changes of the clocks
					{Weekdays: []time.Weekday{time.Friday}, From: "18:00", To: "09:00"},
				}},
			},
			Overrides: []oncall.Override{{Who: "o", Start: base.Add(250 * 24 * time.Hour), End: base.Add(251 * 24 * time.Hour)}},
		}
		require.NoError(t, s.Validate())
		from, to := at.Add(-3*24*time.Hour), at.Add(time.Hour)
		shifts := s.Shifts(from, to)
		var inShifts string
		for i, sh := range shifts {
			require.True(t, sh.Start.Before(sh.End))
			if i > 0 {
				require.True(t, shifts[i-1].End.Equal(sh.Start) || shifts[i-1].End.Before(sh.Start))
				require.False(t, shifts[i-1].Who == sh.Who && shifts[i-1].End.Equal(sh.Start), "adjacent shifts of one person are joined")
			}
			if !at.Before(sh.Start) && at.Before(sh.End) {
				inShifts = sh.Who
			}
		}
		who, ok := s.At(at)
		require.Equal(t, inShifts, who)
		require.Equal(t, inShifts != "", ok)
	})
}
