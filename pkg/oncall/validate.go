package oncall

import (
	"fmt"
	"slices"
	"time"

	"github.com/vigil-ops/vigil/pkg/server"
)

// maxRotationDays bounds a shift's length: far beyond any rotation, it
// catches a typo (700 meant as 7).
const maxRotationDays = 366

// Validate returns a *server.BadRequestError listing every violation of
// the schedule, with fields named as an API will name them:
// "zone", "layers[0].handoff", "overrides[1].end".
func (s Schedule) Validate() error {
	_, err := s.compile()
	return err
}

// compile parses a schedule, or returns every violation of it.
func (s Schedule) compile() (plan, error) {
	var v violations
	var loc *time.Location
	switch s.Zone {
	case "", "Local":
		v.Addf("zone", "must be an IANA time zone such as Asia/Taipei, got %q", s.Zone)
	default:
		l, err := loadZone(s.Zone)
		if err != nil {
			v.Addf("zone", "unknown time zone %q", s.Zone)
		}
		loc = l
	}
	p := plan{overrides: s.Overrides}
	for i, l := range s.Layers {
		f := func(name string) string { return fmt.Sprintf("layers[%d].%s", i, name) }
		c := layer{participants: l.Participants, days: l.RotationDays, loc: loc}
		if len(l.Participants) == 0 {
			v.Add(f("participants"), "must name at least one user")
		}
		for j, who := range l.Participants {
			if who == "" {
				v.Add(f(fmt.Sprintf("participants[%d]", j)), "must not be empty")
			}
		}
		if l.RotationDays < 1 || l.RotationDays > maxRotationDays {
			v.Addf(f("rotation_days"), "must be 1 to %d (1 daily, 7 weekly), got %d", maxRotationDays, l.RotationDays)
		}
		c.hour, c.mins = v.clock(f("handoff"), l.Handoff)
		if d, err := time.Parse(time.DateOnly, l.Start); err != nil {
			v.Addf(f("start"), "must be a date YYYY-MM-DD, got %q", l.Start)
		} else {
			c.start = d
		}
		for j, w := range l.Restrictions {
			f := func(name string) string { return fmt.Sprintf("layers[%d].restrictions[%d].%s", i, j, name) }
			cw := window{weekdays: w.Weekdays}
			for k, d := range w.Weekdays {
				if d < time.Sunday || d > time.Saturday {
					v.Addf(f(fmt.Sprintf("weekdays[%d]", k)), "must be a day of the week, 0 (Sunday) to 6, got %d", d)
				} else if slices.Contains(w.Weekdays[:k], d) {
					v.Addf(f(fmt.Sprintf("weekdays[%d]", k)), "%s is listed twice", d)
				}
			}
			cw.fromH, cw.fromM = v.clock(f("from"), w.From)
			cw.toH, cw.toM = v.clock(f("to"), w.To)
			if w.From == w.To {
				v.Addf(f("to"), "must differ from from (%s); leave restrictions out for all day", w.From)
			}
			cw.endsOnTheNextDay = w.To <= w.From // HH:MM strings order as times
			c.windows = append(c.windows, cw)
		}
		p.layers = append(p.layers, c)
	}
	for i, o := range s.Overrides {
		f := func(name string) string { return fmt.Sprintf("overrides[%d].%s", i, name) }
		if o.Who == "" {
			v.Add(f("who"), "must name a user")
		}
		if o.Start.IsZero() {
			v.Add(f("start"), "must be set")
		}
		if !o.End.After(o.Start) {
			v.Addf(f("end"), "must be after start (%s), got %s", o.Start.Format(time.RFC3339), o.End.Format(time.RFC3339))
		}
		for j, other := range s.Overrides[:i] {
			if o.End.After(o.Start) && other.End.After(other.Start) && o.Start.Before(other.End) && other.Start.Before(o.End) {
				v.Addf(f("start"), "overlaps overrides[%d] (%s until %s)", j, other.Start.Format(time.RFC3339), other.End.Format(time.RFC3339))
			}
		}
	}
	if err := v.Err("invalid on-call schedule"); err != nil {
		return plan{}, err
	}
	return p, nil
}

// violations collects every violation of a schedule.
type violations struct{ server.BadRequestError }

// clock parses s, the value of field, as a time of day "HH:MM".
func (v *violations) clock(field, s string) (int, int) {
	t, err := time.Parse("15:04", s)
	if err != nil || len(s) != len("15:04") {
		v.Addf(field, "must be a time of day HH:MM such as 09:00, got %q", s)
		return 0, 0
	}
	return t.Hour(), t.Minute()
}
