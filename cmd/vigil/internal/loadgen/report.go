package loadgen

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Duration is a time.Duration that reads as seconds in JSON.
type Duration time.Duration

// MarshalJSON writes d in seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return strconv.AppendFloat(nil, time.Duration(d).Seconds(), 'f', -1, 64), nil
}

// String rounds d to what a person compares.
func (d Duration) String() string {
	v := time.Duration(d)
	switch {
	case v >= 10*time.Second:
		return v.Round(100 * time.Millisecond).String()
	case v >= time.Second:
		return v.Round(10 * time.Millisecond).String()
	case v >= time.Millisecond:
		return v.Round(100 * time.Microsecond).String()
	}
	return v.String()
}

// Report is what a run measured.
type Report struct {
	RunID            string  `json:"run_id"`
	Via              string  `json:"via"`
	Senders          int     `json:"senders"`
	AlertsPerRequest int     `json:"alerts_per_request"`
	Groups           int     `json:"groups"`
	Rate             float64 `json:"rate"`
	// Interrupted: the run was stopped (Ctrl-C) before it finished; the
	// figures are what was measured until then.
	Interrupted bool `json:"interrupted"`

	// Send is the send phase: from the first request to the answer to
	// the last.
	Send Duration `json:"send_seconds"`
	// Requests sent, and of them accepted (HTTP 202, gRPC OK).
	Requests         int64 `json:"requests"`
	RequestsAccepted int64 `json:"requests_accepted"`
	// NotAccepted counts the other requests by status ("HTTP 503",
	// "gRPC Unavailable", "timeout", "transport error", "cancelled"), with
	// the first answer of each in NotAcceptedSample. They are not retried:
	// their alerts are not expected in incidents.
	NotAccepted       map[string]int64  `json:"not_accepted,omitempty"`
	NotAcceptedSample map[string]string `json:"not_accepted_sample,omitempty"`
	// Accepted is the unique new alerts in accepted requests: what the
	// incidents must account for. Repeats and Resolutions are the other
	// alerts accepted; AlertsNotAccepted those in requests not accepted.
	Accepted          int64 `json:"accepted"`
	Repeats           int64 `json:"repeats_accepted"`
	Resolutions       int64 `json:"resolutions_accepted"`
	AlertsNotAccepted int64 `json:"alerts_not_accepted"`
	// AcceptedPerSecond is Accepted over Send; AlertsPerSecond counts
	// repeats and resolutions too.
	AcceptedPerSecond float64 `json:"accepted_per_second"`
	AlertsPerSecond   float64 `json:"alerts_per_second"`

	// Persisted is the run's alerts the incidents hold (sum of
	// alert_count) at the last read-back; Missing is how many accepted
	// alerts they did not hold then.
	Persisted int64 `json:"persisted"`
	Missing   int64 `json:"missing"`
	Incidents int   `json:"incidents"`
	// Drained: every accepted alert was accounted for before
	// --wait-timeout.
	Drained bool `json:"drained"`
	// PersistedPerSecond is Persisted over the time from the first
	// accepted request to the read-back that first saw it.
	PersistedPerSecond float64 `json:"persisted_per_second"`
	// Drain is the time from the end of the send phase to the read-back
	// that accounted for every accepted alert (or the last one).
	Drain Duration `json:"drain_seconds"`
	// Lag is how long alerts took from acceptance to an incident; its
	// resolution is PollInterval.
	Lag          Lag      `json:"lag"`
	PollInterval Duration `json:"poll_interval_seconds"`
	Polls        int      `json:"polls"`
	PollErrors   int      `json:"poll_errors"`

	JetStream *JetStreamUsage `json:"jetstream,omitempty"`
	Postgres  *PostgresUsage  `json:"postgres,omitempty"`
	Process   *ProcessUsage   `json:"process,omitempty"`
	// Warnings are measurements that failed.
	Warnings []string `json:"warnings,omitempty"`

	// AcceptedCurve and PersistedCurve are the cumulative counts the lag
	// is computed from.
	AcceptedCurve  []Point `json:"-"`
	PersistedCurve []Point `json:"-"`
}

// WriteTable writes r for a person to read.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	rate := "flat out"
	if r.Rate > 0 {
		rate = num(r.Rate) + " alerts/s"
	}
	row := func(name, format string, args ...any) {
		fmt.Fprintf(tw, "%s\t"+format+"\n", append([]any{name}, args...)...)
	}
	row("run", "%s: %s, %d senders × %d alerts per request, %d groups, %s", r.RunID, r.Via, r.Senders, r.AlertsPerRequest, r.Groups, rate)
	if r.Interrupted {
		row("interrupted", "yes: figures up to Ctrl-C")
	}
	row("send phase", "%s", r.Send)
	row("requests", "%s sent, %s accepted", count(r.Requests), count(r.RequestsAccepted))
	for _, status := range slices.Sorted(maps.Keys(r.NotAccepted)) {
		row("  not accepted", "%s × %s: %s", count(r.NotAccepted[status]), status, oneLine(r.NotAcceptedSample[status]))
	}
	row("alerts accepted", "%s unique, %s repeats, %s resolutions (%s in requests not accepted)",
		count(r.Accepted), count(r.Repeats), count(r.Resolutions), count(r.AlertsNotAccepted))
	row("accepted/s", "%s unique (%s with repeats and resolutions)", num(r.AcceptedPerSecond), num(r.AlertsPerSecond))
	switch {
	case r.Drained:
		row("persisted", "%s of %s accepted, in %d incidents: all accounted for", count(r.Persisted), count(r.Accepted), r.Incidents)
	case r.Interrupted:
		row("persisted", "%s of %s accepted, in %d incidents: %s not yet when interrupted", count(r.Persisted), count(r.Accepted), r.Incidents, count(r.Missing))
	default:
		row("persisted", "%s of %s accepted, in %d incidents: %s MISSING", count(r.Persisted), count(r.Accepted), r.Incidents, count(r.Missing))
	}
	row("persisted/s", "%s", num(r.PersistedPerSecond))
	row("lag to incident", "p50 %s  p99 %s  max %s  (%d samples, resolution %s)", r.Lag.P50, r.Lag.P99, r.Lag.Max, r.Lag.Samples, r.PollInterval)
	switch {
	case r.Drained:
		row("drain", "%s after sending stopped", r.Drain)
	case !r.Interrupted:
		row("drain", "not drained %s after sending stopped (--wait-timeout)", r.Drain)
	}
	row("read-back", "%d polls, %d failed", r.Polls, r.PollErrors)
	if u := r.JetStream; u != nil {
		row("JetStream", "%s (%s → %s), %s B/alert", signedBytes(u.Delta), bytesOf(int64(u.StoreBefore)), bytesOf(int64(u.StoreAfter)), num(u.BytesPerAlert))
		for _, s := range u.Streams {
			if s.Delta != 0 {
				row("  "+s.Name, "%s, %s B/alert", signedBytes(s.Delta), num(s.BytesPerAlert))
			}
		}
	}
	if u := r.Postgres; u != nil {
		row("Postgres", "%s (%s → %s), %s B/alert", signedBytes(u.Delta), bytesOf(u.BytesBefore), bytesOf(u.BytesAfter), num(u.BytesPerAlert))
	}
	if u := r.Process; u != nil {
		row("memory", "pid %d: RSS %s before, peak %s (%d samples); VmHWM %s", u.PID, bytesOf(u.RSSBefore), bytesOf(u.PeakRSS), u.Samples, bytesOf(u.HWM))
	}
	for _, w := range r.Warnings {
		row("warning", "%s", oneLine(w))
	}
	return tw.Flush()
}

// count writes n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// num writes a rate or ratio: whole numbers from 100 on, else 3 digits.
func num(f float64) string {
	if f >= 100 || f <= -100 {
		return count(int64(f + 0.5))
	}
	return strconv.FormatFloat(f, 'g', 3, 64)
}

func bytesOf(n int64) string {
	const unit = 1024
	a := n
	if a < 0 {
		a = -a
	}
	if a < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := a / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func signedBytes(n int64) string {
	if n >= 0 {
		return "+" + bytesOf(n)
	}
	return bytesOf(n)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}
