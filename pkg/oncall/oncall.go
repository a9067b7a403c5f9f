// Package oncall is the model of on-call schedules: who is on call for a
// team at an instant, and the shifts over a range. It is pure (no storage,
// no clock of its own); escalation asks it whom to page.
//
// The rules:
//
//   - A Schedule lives in one time zone (an IANA name such as
//     "Asia/Taipei"); every hand-off and start date is wall-clock time there.
//   - A Layer rotates its participants: the first from the hand-off time on
//     its start date, the next one RotationDays days later at the same
//     wall-clock time, and so on round the list. Across a daylight saving
//     change a daily 09:00 hand-off stays at 09:00, so that shift lasts 23
//     or 25 hours. Before its start date a layer has nobody.
//   - A hand-off at a time the zone skips (02:30 on a spring-forward day)
//     happens at the change itself, the first instant that exists after it
//     (03:00 in America/New_York and Europe/Berlin); one at a time that
//     occurs twice (01:30 on a fall-back day in New York) happens at the
//     first of them. Go's time.Date picks either side for both cases
//     depending on the zone, so the package settles it.
//   - A layer may be restricted to windows of the week (Monday to Friday
//     09:00–18:00; or 18:00–09:00 for nights, a window that ends the next
//     day): outside them it has nobody. Its rotation does not pause, so
//     the windows pick who is on call from it, they do not shift hand-offs.
//   - Later layers win over earlier ones wherever they have someone; an
//     Override, a person for [Start, End), wins over every layer.
package oncall

import (
	"slices"
	"sync"
	"time"
)

// Schedule says who is on call for a team.
type Schedule struct {
	// Zone is the IANA time zone of the hand-offs and start dates.
	Zone string
	// Layers are in order of precedence, lowest first.
	Layers []Layer
	// Overrides put a person on call for a while, over every layer; they
	// must not overlap.
	Overrides []Override
}

// Layer is a rotation of participants.
type Layer struct {
	// Participants are user names, on call in this order.
	Participants []string
	// RotationDays is the length of a shift in days of the zone: 1 for a
	// daily rotation, 7 for a weekly one.
	RotationDays int
	// Handoff is the wall-clock time of a hand-off, "HH:MM" (24-hour).
	Handoff string
	// Start is the date of the first hand-off, "YYYY-MM-DD", when the first
	// participant goes on call.
	Start string
	// Restrictions are the windows the layer is on call in; none for all
	// the time.
	Restrictions []Window
}

// Window is a time of the week: from From until To on each of Weekdays
// (every day when empty), wall-clock time in the schedule's zone. A To at
// or before From ends on the next day.
type Window struct {
	Weekdays []time.Weekday
	From, To string // "HH:MM"
}

// Override puts Who on call for [Start, End).
type Override struct {
	Who        string
	Start, End time.Time
}

// Shift is Who on call for [Start, End).
type Shift struct {
	Who        string
	Start, End time.Time
}

// At returns who is on call at t, and false when nobody is (no layer has
// started, or the schedule is one Validate refuses).
func (s Schedule) At(t time.Time) (string, bool) {
	p, err := s.compile()
	if err != nil {
		return "", false
	}
	return p.at(t)
}

// Shifts returns who is on call over [from, to), in order, each shift cut
// to the range and adjacent shifts of the same person joined. Times when
// nobody is on call have no shift. It is nil for an empty range or a
// schedule Validate refuses.
func (s Schedule) Shifts(from, to time.Time) []Shift {
	p, err := s.compile()
	if err != nil || !from.Before(to) {
		return nil
	}
	// Who is on call changes only at a hand-off or at either end of a
	// window or an override, so asking at each of them in the range finds
	// every shift.
	cuts := []time.Time{from}
	for _, l := range p.layers {
		k, _, end := l.shift(from)
		for ; end.Before(to); k++ {
			cuts = append(cuts, end)
			end = l.handoff(k + 2)
		}
		// A window that starts the day before from may still be open.
		for d := l.date(from).AddDate(0, 0, -1); !d.After(l.date(to)); d = d.AddDate(0, 0, 1) {
			for _, w := range l.windows {
				if start, end, ok := w.on(d, l.loc); ok {
					cuts = append(cuts, start, end)
				}
			}
		}
	}
	for _, o := range s.Overrides {
		cuts = append(cuts, o.Start, o.End)
	}
	cuts = slices.DeleteFunc(cuts, func(c time.Time) bool { return c.Before(from) || !c.Before(to) })
	slices.SortFunc(cuts, func(a, b time.Time) int { return a.Compare(b) })
	cuts = slices.CompactFunc(cuts, time.Time.Equal)
	cuts = append(cuts, to)

	var out []Shift
	for i, c := range cuts[:len(cuts)-1] {
		who, ok := p.at(c)
		switch {
		case !ok:
		case len(out) > 0 && out[len(out)-1].Who == who && out[len(out)-1].End.Equal(c):
			out[len(out)-1].End = cuts[i+1]
		default:
			out = append(out, Shift{Who: who, Start: c, End: cuts[i+1]})
		}
	}
	return out
}

// plan is a valid schedule with its zone loaded and its strings parsed.
type plan struct {
	layers    []layer
	overrides []Override
}

type layer struct {
	participants []string
	days         int
	loc          *time.Location
	// start is the date of the first hand-off, at midnight UTC: civil
	// arithmetic on it is free of the zone's changes.
	start      time.Time
	hour, mins int
	windows    []window
}

// window is a parsed Window.
type window struct {
	weekdays         []time.Weekday
	fromH, fromM     int
	toH, toM         int
	endsOnTheNextDay bool
}

// on returns the window's bounds when it opens on date (midnight UTC),
// and false when it does not open that weekday.
func (w window) on(date time.Time, loc *time.Location) (time.Time, time.Time, bool) {
	if len(w.weekdays) > 0 && !slices.Contains(w.weekdays, date.Weekday()) {
		return time.Time{}, time.Time{}, false
	}
	end := date
	if w.endsOnTheNextDay {
		end = date.AddDate(0, 0, 1)
	}
	return wallClock(date.Year(), date.Month(), date.Day(), w.fromH, w.fromM, loc),
		wallClock(end.Year(), end.Month(), end.Day(), w.toH, w.toM, loc), true
}

// open reports whether t is in one of the layer's windows, or the layer
// has none.
func (l layer) open(t time.Time) bool {
	if len(l.windows) == 0 {
		return true
	}
	today := l.date(t)
	for _, d := range []time.Time{today, today.AddDate(0, 0, -1)} {
		for _, w := range l.windows {
			if start, end, ok := w.on(d, l.loc); ok && !t.Before(start) && t.Before(end) {
				return true
			}
		}
	}
	return false
}

// date is t's date in the layer's zone, at midnight UTC.
func (l layer) date(t time.Time) time.Time {
	lt := t.In(l.loc)
	return time.Date(lt.Year(), lt.Month(), lt.Day(), 0, 0, 0, 0, time.UTC)
}

func (p plan) at(t time.Time) (string, bool) {
	for _, o := range p.overrides {
		if !t.Before(o.Start) && t.Before(o.End) {
			return o.Who, true
		}
	}
	for i := len(p.layers) - 1; i >= 0; i-- {
		l := p.layers[i]
		if k, _, _ := l.shift(t); k >= 0 && l.open(t) {
			return l.participants[k%len(l.participants)], true
		}
	}
	return "", false
}

// handoff is the instant of the layer's k-th hand-off (the first is 0).
func (l layer) handoff(k int) time.Time {
	d := l.start.AddDate(0, 0, k*l.days)
	return wallClock(d.Year(), d.Month(), d.Day(), l.hour, l.mins, l.loc)
}

// shift returns the number of the shift t is in and its bounds; a
// negative number for a t before the first hand-off.
func (l layer) shift(t time.Time) (int, time.Time, time.Time) {
	days := int(l.date(t).Sub(l.start).Hours()) / 24
	k := days / l.days
	if days < 0 && days%l.days != 0 {
		k-- // floor, not truncation, before the start
	}
	// The estimate from t's date is off by one at most, when t is on a
	// hand-off day before the hand-off.
	for t.Before(l.handoff(k)) {
		k--
	}
	for !t.Before(l.handoff(k + 1)) {
		k++
	}
	return k, l.handoff(k), l.handoff(k + 1)
}

// wallClock is the instant the clock in loc shows the date and time, with
// the package's rule for times the zone skips (the change itself) or
// repeats (the first of them).
func wallClock(y int, mo time.Month, d, h, mi int, loc *time.Location) time.Time {
	t := time.Date(y, mo, d, h, mi, 0, 0, loc)
	want := time.Date(y, mo, d, h, mi, 0, 0, time.UTC)
	got := time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), 0, 0, time.UTC)
	start, end := t.ZoneBounds()
	switch {
	case got.After(want): // skipped, and t is past the change
		return start
	case got.Before(want): // skipped, and t is before the change
		return end
	}
	// A repeated time has an earlier twin in the previous zone period.
	if !start.IsZero() {
		_, before := start.Add(-time.Nanosecond).Zone()
		_, now := t.Zone()
		if twin := t.Add(time.Duration(now-before) * time.Second); twin.Before(start) {
			if w := twin.In(loc); w.Hour() == h && w.Minute() == mi && w.Day() == d {
				return twin
			}
		}
	}
	return t
}

// zones caches loaded locations: time.LoadLocation reads the zone's file
// every time, and At is asked often.
var zones sync.Map

func loadZone(name string) (*time.Location, error) {
	if l, ok := zones.Load(name); ok {
		return l.(*time.Location), nil
	}
	l, err := time.LoadLocation(name)
	if err != nil {
		return nil, err
	}
	zones.Store(name, l)
	return l, nil
}
