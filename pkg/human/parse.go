package human

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// maxDays bounds "Nd" well inside time.Duration.
const maxDays = 100 * 366

// ParseDuration reads a positive duration as people write it: Go's
// (90m, 1h30m) or whole days (2d), as the CLI's flags and the web
// console's forms take it.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if n, ok := strings.CutSuffix(s, "d"); ok && err != nil {
		var days int
		if days, err = strconv.Atoi(n); err == nil && days > maxDays {
			err = errors.New("too many days")
		}
		d = time.Duration(days) * 24 * time.Hour
	}
	if err != nil || d <= 0 {
		return 0, errors.New("want a positive duration (90m, 2h, 2d)")
	}
	return d, nil
}
