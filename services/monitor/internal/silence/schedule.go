package silence

import (
	"fmt"
	"strings"
	"time"

	// Time zones resolve the same on every host, even one without
	// /usr/share/zoneinfo (a scratch image): the embedded database is the
	// fallback of time.LoadLocation.
	_ "time/tzdata"

	"github.com/vigil-ops/vigil/pkg/server"
)

// Schedule restricts a silence to weekly windows of local time: a
// maintenance window such as "Saturdays 22:00 to 02:00 in Europe/Berlin".
type Schedule struct {
	// TimeZone is an IANA name such as Europe/Berlin; UTC when empty.
	TimeZone string
	Windows  []Window
}

// Window is a time of day on some days of the week. A window whose end is
// not after its start crosses midnight and ends on the next day: "22:00"
// to "02:00" on "fri" covers Friday 22:00 to Saturday 02:00, and "00:00"
// to "00:00" covers a whole day.
type Window struct {
	// Days it starts on, "mon".."sun"; every day when empty.
	Days []string
	// Start and End are "HH:MM", 24-hour, in the schedule's time zone.
	Start, End string
}

var dayNames = []string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"} // indexed by time.Weekday

// schedule is a validated Schedule, ready to evaluate.
type schedule struct {
	spec    Schedule // normalised: day names in lower case
	loc     *time.Location
	windows []window
}

type window struct {
	days           uint8 // bit time.Weekday set when the window starts that day
	startH, startM int
	endH, endM     int
	crosses        bool // ends on the day after it starts
}

func compileSchedule(in Schedule, vs []server.FieldViolation) (*schedule, []server.FieldViolation) {
	sc := &schedule{spec: Schedule{TimeZone: in.TimeZone}}
	var err error
	switch in.TimeZone {
	case "":
		sc.loc = time.UTC
	case "Local":
		// LoadLocation would take the server's own zone: ambiguous.
		vs = append(vs, server.FieldViolation{Field: "schedule.time_zone", Description: `"Local" is not an IANA time zone: name one, such as Europe/Berlin`})
	default:
		if sc.loc, err = time.LoadLocation(in.TimeZone); err != nil {
			vs = append(vs, server.FieldViolation{Field: "schedule.time_zone", Description: fmt.Sprintf("%q is not a known IANA time zone, such as Europe/Berlin", in.TimeZone)})
		}
	}
	if len(in.Windows) == 0 {
		vs = append(vs, server.FieldViolation{Field: "schedule.windows", Description: "at least one window is required"})
	}
	for i, w := range in.Windows {
		field := fmt.Sprintf("schedule.windows[%d]", i)
		cw := window{}
		norm := Window{Start: w.Start, End: w.End}
		for j, d := range w.Days {
			d = strings.ToLower(strings.TrimSpace(d))
			n := indexOf(dayNames, d)
			if n < 0 {
				vs = append(vs, server.FieldViolation{Field: fmt.Sprintf("%s.days[%d]", field, j), Description: fmt.Sprintf("%q is not a day: want mon, tue, wed, thu, fri, sat or sun", w.Days[j])})
				continue
			}
			cw.days |= 1 << n
			norm.Days = append(norm.Days, d)
		}
		if len(w.Days) == 0 {
			cw.days = 0x7f
		}
		var ok bool
		if cw.startH, cw.startM, ok = clock(w.Start); !ok {
			vs = append(vs, server.FieldViolation{Field: field + ".start", Description: fmt.Sprintf("%q is not a time of day: want HH:MM, 24-hour", w.Start)})
		}
		if cw.endH, cw.endM, ok = clock(w.End); !ok {
			vs = append(vs, server.FieldViolation{Field: field + ".end", Description: fmt.Sprintf("%q is not a time of day: want HH:MM, 24-hour", w.End)})
		}
		cw.crosses = cw.endH*60+cw.endM <= cw.startH*60+cw.startM
		sc.windows = append(sc.windows, cw)
		sc.spec.Windows = append(sc.spec.Windows, norm)
	}
	return sc, vs
}

func indexOf(names []string, s string) int {
	for i, n := range names {
		if n == s {
			return i
		}
	}
	return -1
}

// clock parses "HH:MM", 00:00 to 23:59.
func clock(s string) (h, m int, ok bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, 0, false
	}
	for _, i := range []int{0, 1, 3, 4} {
		if s[i] < '0' || s[i] > '9' {
			return 0, 0, false
		}
	}
	h, m = int(s[0]-'0')*10+int(s[1]-'0'), int(s[3]-'0')*10+int(s[4]-'0')
	if h > 23 || m > 59 {
		return 0, 0, false
	}
	return h, m, true
}

// covers reports whether t is inside one of the windows. Each window is
// placed on the calendar with time.Date in the schedule's location, so it
// follows the zone's rules (daylight saving included) rather than a fixed
// offset: a window "22:00"-"02:00" is 22:00 to 02:00 on the wall clock
// whatever the offset on either side of midnight, and so lasts three,
// four or five hours of real time on the nights the clocks change. A
// window edge that falls in a skipped hour is placed where time.Date puts
// it. Windows crossing midnight are looked for on the day before, too.
func (sc *schedule) covers(t time.Time) bool {
	local := t.In(sc.loc)
	y, m, d := local.Date()
	today := local.Weekday()
	yesterday := (today + 6) % 7
	for i := range sc.windows {
		w := &sc.windows[i]
		if w.days&(1<<today) != 0 && w.covers(t, y, m, d, sc.loc) {
			return true
		}
		if w.crosses && w.days&(1<<yesterday) != 0 && w.covers(t, y, m, d-1, sc.loc) {
			return true
		}
	}
	return false
}

// covers reports whether t is inside the window that starts on day d.
func (w *window) covers(t time.Time, y int, m time.Month, d int, loc *time.Location) bool {
	start := time.Date(y, m, d, w.startH, w.startM, 0, 0, loc)
	if t.Before(start) {
		return false
	}
	endDay := d
	if w.crosses {
		endDay++
	}
	return t.Before(time.Date(y, m, endDay, w.endH, w.endM, 0, 0, loc))
}
