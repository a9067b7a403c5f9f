package console

import (
	"bytes"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"strings"
	"time"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
	typesv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/types/v1"
)

// recheckEvery is how often a live stream checks that its session still
// holds: a revoked or expired session stops receiving within it.
const recheckEvery = 20 * time.Second

// events streams the incident list's changes as server-sent events, for
// the incidents the user may read (the API's team rule) that pass the
// page's filters (its query): "row" with the row's HTML to put in place
// or on top, "gone" with the id of one that left the filters, "reload"
// when the stream dropped events (a slow browser) or the session ended.
// With ?incident=<id>, it streams that incident page's: "changed" when
// the incident, its analysis or a repair of it changed (the page reads
// itself again through the API), for an incident the API lets the user
// read.
func (c *Console) events(w http.ResponseWriter, r *http.Request) {
	s, err := c.authenticate(w, r)
	if err != nil && !errors.Is(err, errNoSession) {
		c.failCall(w, r, nil, err)
		return
	}
	if c.opts.Live == nil || c.opts.Authenticate == nil {
		c.fail(w, r, nil, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	streamHeaders(w)
	rc := http.NewResponseController(w)
	if s == nil {
		// Signed out: the page reloads, and its load goes to the login.
		_, _ = fmt.Fprint(w, "event: reload\ndata:\n\n")
		return
	}
	p, err := c.opts.Authenticate(r.Context(), s.access)
	if err != nil {
		_, _ = fmt.Fprint(w, "event: reload\ndata:\n\n")
		return
	}
	incident := r.URL.Query().Get("incident")
	if incident != "" {
		_, err := c.incidents.GetIncident(withToken(r.Context(), s.access), &monitorv1.GetIncidentRequest{Id: incident, AlertsPageSize: 1})
		if err != nil {
			c.failCall(w, r, s, err)
			return
		}
	}
	watcher, ok := c.opts.Live.watch(p.Reaches, incident)
	if !ok {
		c.fail(w, r, nil, http.StatusServiceUnavailable, "error.unavailable")
		return
	}
	defer c.opts.Live.unwatch(watcher)
	f := parseFilters(r.URL.Query())
	t, err := c.pages["incidents"].Clone()
	if err != nil {
		c.opts.Log.ErrorContext(r.Context(), "console: live rows not rendered", "error", err)
		return
	}
	t.Funcs(pageFuncs(r, s))
	w.WriteHeader(http.StatusOK)
	_, _ = fmt.Fprint(w, "retry: 3000\n\n")
	if rc.Flush() != nil {
		return
	}
	tick := time.NewTicker(recheckEvery)
	defer tick.Stop()
	var buf bytes.Buffer
	for {
		buf.Reset()
		select {
		case <-r.Context().Done():
			return
		case <-c.opts.Live.done:
			return
		case <-tick.C:
			if _, err := c.opts.Authenticate(r.Context(), s.access); err != nil {
				_, _ = fmt.Fprint(w, "event: reload\ndata:\n\n")
				_ = rc.Flush()
				return
			}
			buf.WriteString(": still here\n\n")
		case ch := <-watcher.events:
			switch {
			case watcher.dropped.Swap(false):
				// Events were lost: the page cannot be patched into the
				// truth any more, only reloaded.
				buf.WriteString("event: reload\ndata:\n\n")
			case incident != "":
				sseData(&buf, "changed", ch.id)
			default:
				writeEvent(&buf, t, f, ch.in)
			}
		}
		if _, err := w.Write(buf.Bytes()); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}

// writeEvent puts in's event for the filters f into buf: its row, or
// that it is gone from the list.
func writeEvent(buf *bytes.Buffer, t *template.Template, f filters, in *typesv1.Incident) {
	if !f.admits(in) {
		sseData(buf, "gone", in.GetId())
		return
	}
	var row bytes.Buffer
	if err := t.ExecuteTemplate(&row, "row", newRow(in)); err != nil {
		buf.WriteString("event: reload\ndata:\n\n")
		return
	}
	sseData(buf, "row", row.String())
}

// streamHeaders make an answer a stream of server-sent events (the
// incident list's and a deployment's).
func streamHeaders(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	// Proxies (nginx) would otherwise hold the stream back.
	w.Header().Set("X-Accel-Buffering", "no")
}

// sseData writes one event whose data may span lines.
func sseData(buf *bytes.Buffer, event, data string) {
	fmt.Fprintf(buf, "event: %s\n", event)
	for line := range strings.SplitSeq(strings.TrimSpace(data), "\n") {
		fmt.Fprintf(buf, "data: %s\n", line)
	}
	buf.WriteString("\n")
}
