package oncall_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/oncall"
	"github.com/vigil-ops/vigil/pkg/server"
)

// fv is a server.FieldViolation, short for the tables.
type fv struct{ Field, Description string }

func TestValidate(t *testing.T) {
	t.Parallel()
	tp := func(s string) time.Time { return local(t, "Asia/Taipei", s) }
	override := func(who, start, end string) oncall.Override {
		return oncall.Override{Who: who, Start: tp(start), End: tp(end)}
	}
	for _, tc := range []struct {
		name   string
		mutate func(*oncall.Schedule)
		want   []fv
	}{
		{"valid", nil, nil},
		{"no layers, only overrides", func(s *oncall.Schedule) {
			s.Layers = nil
			s.Overrides = []oncall.Override{override("erin", "2026-03-02 12:00", "2026-03-02 14:00")}
		}, nil},
		{"weekly, midnight hand-off, UTC", func(s *oncall.Schedule) {
			s.Zone, s.Layers[0].RotationDays, s.Layers[0].Handoff = "UTC", 7, "00:00"
		}, nil},
		{"restrictions, every day and over midnight", func(s *oncall.Schedule) {
			s.Layers[0].Restrictions = []oncall.Window{{From: "18:00", To: "09:00"}, {Weekdays: []time.Weekday{time.Sunday, time.Saturday}, From: "00:00", To: "23:59"}}
		}, nil},
		{"overrides back to back", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{
				override("erin", "2026-03-02 12:00", "2026-03-02 14:00"),
				override("frank", "2026-03-02 14:00", "2026-03-02 16:00"),
			}
		}, nil},

		{"unknown zone", func(s *oncall.Schedule) { s.Zone = "Asia/Taipie" }, []fv{{"zone", `unknown time zone "Asia/Taipie"`}}},
		{"no zone", func(s *oncall.Schedule) { s.Zone = "" }, []fv{{"zone", `must be an IANA time zone such as Asia/Taipei, got ""`}}},
		{"the machine's zone", func(s *oncall.Schedule) { s.Zone = "Local" }, []fv{{"zone", `must be an IANA time zone such as Asia/Taipei, got "Local"`}}},
		{"empty rotation", func(s *oncall.Schedule) { s.Layers[0].Participants = nil }, []fv{{"layers[0].participants", "must name at least one user"}}},
		{"empty participant", func(s *oncall.Schedule) { s.Layers[0].Participants = []string{"alice", ""} }, []fv{{"layers[0].participants[1]", "must not be empty"}}},
		{"zero length", func(s *oncall.Schedule) { s.Layers[0].RotationDays = 0 }, []fv{{"layers[0].rotation_days", "must be 1 to 366 (1 daily, 7 weekly), got 0"}}},
		{"length beyond a year", func(s *oncall.Schedule) { s.Layers[0].RotationDays = 700 }, []fv{{"layers[0].rotation_days", "must be 1 to 366 (1 daily, 7 weekly), got 700"}}},
		{"hand-off without leading zero", func(s *oncall.Schedule) { s.Layers[0].Handoff = "9:00" }, []fv{{"layers[0].handoff", `must be a time of day HH:MM such as 09:00, got "9:00"`}}},
		{"hand-off past the day", func(s *oncall.Schedule) { s.Layers[0].Handoff = "24:00" }, []fv{{"layers[0].handoff", `must be a time of day HH:MM such as 09:00, got "24:00"`}}},
		{"hand-off with seconds", func(s *oncall.Schedule) { s.Layers[0].Handoff = "09:00:00" }, []fv{{"layers[0].handoff", `must be a time of day HH:MM such as 09:00, got "09:00:00"`}}},
		{"bad start date", func(s *oncall.Schedule) { s.Layers[0].Start = "2026-02-30" }, []fv{{"layers[0].start", `must be a date YYYY-MM-DD, got "2026-02-30"`}}},
		{"a second layer, every field wrong", func(s *oncall.Schedule) {
			s.Layers = append(s.Layers, oncall.Layer{RotationDays: -1})
		}, []fv{
			{"layers[1].participants", "must name at least one user"},
			{"layers[1].rotation_days", "must be 1 to 366 (1 daily, 7 weekly), got -1"},
			{"layers[1].handoff", `must be a time of day HH:MM such as 09:00, got ""`},
			{"layers[1].start", `must be a date YYYY-MM-DD, got ""`},
		}},
		{"restrictions", func(s *oncall.Schedule) {
			s.Layers[0].Restrictions = []oncall.Window{
				{Weekdays: []time.Weekday{time.Monday, 7, time.Monday}, From: "18:00", To: "9:00"},
				{From: "09:00", To: "09:00"},
			}
		}, []fv{
			{"layers[0].restrictions[0].weekdays[1]", "must be a day of the week, 0 (Sunday) to 6, got 7"},
			{"layers[0].restrictions[0].weekdays[2]", "Monday is listed twice"},
			{"layers[0].restrictions[0].to", `must be a time of day HH:MM such as 09:00, got "9:00"`},
			{"layers[0].restrictions[1].to", "must differ from from (09:00); leave restrictions out for all day"},
		}},
		{"override ends at its start", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{override("erin", "2026-03-02 12:00", "2026-03-02 12:00")}
		}, []fv{{"overrides[0].end", "must be after start (2026-03-02T12:00:00+08:00), got 2026-03-02T12:00:00+08:00"}}},
		{"override ends before its start, and nobody", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{override("", "2026-03-02 12:00", "2026-03-02 11:00")}
		}, []fv{
			{"overrides[0].who", "must name a user"},
			{"overrides[0].end", "must be after start (2026-03-02T12:00:00+08:00), got 2026-03-02T11:00:00+08:00"},
		}},
		{"override without a start", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{{Who: "erin", End: tp("2026-03-02 12:00")}}
		}, []fv{{"overrides[0].start", "must be set"}}},
		{"overlapping overrides", func(s *oncall.Schedule) {
			s.Overrides = []oncall.Override{
				override("erin", "2026-03-02 12:00", "2026-03-02 14:00"),
				override("frank", "2026-03-02 18:00", "2026-03-02 20:00"),
				override("grace", "2026-03-02 13:59", "2026-03-02 18:01"),
			}
		}, []fv{
			{"overrides[2].start", "overlaps overrides[0] (2026-03-02T12:00:00+08:00 until 2026-03-02T14:00:00+08:00)"},
			{"overrides[2].start", "overlaps overrides[1] (2026-03-02T18:00:00+08:00 until 2026-03-02T20:00:00+08:00)"},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := taipei()
			if tc.mutate != nil {
				tc.mutate(&s)
			}
			err := s.Validate()
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			var br *server.BadRequestError
			require.ErrorAs(t, err, &br)
			require.Equal(t, "invalid on-call schedule", br.Message)
			got := make([]fv, len(br.Violations))
			for i, v := range br.Violations {
				got[i] = fv(v)
			}
			require.Equal(t, tc.want, got)
			// A schedule Validate refuses has nobody on call.
			who, ok := s.At(tp("2026-03-02 13:00"))
			require.False(t, ok)
			require.Empty(t, who)
			require.Empty(t, s.Shifts(tp("2026-03-01 00:00"), tp("2026-03-05 00:00")))
		})
	}
}
