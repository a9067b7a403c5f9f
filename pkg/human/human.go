// Package human reads and writes values as people write them, so that
// the API, the CLI and the web console take and say a value the same way.
package human

import (
	"strings"
	"time"
)

// Duration writes d as people write it: "10m", "1h30m", "45s" (not
// time.Duration's "10m0s", "1h30m0s").
func Duration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
