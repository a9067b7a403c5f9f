package loadgen

import (
	"context"
	"fmt"
	"strings"
	"time"

	monitorv1 "github.com/vigil-ops/vigil/pkg/gen/vigil/monitor/v1"
)

// readback counts, through the public API, the alerts of one run that
// incidents hold.
type readback struct {
	client monitorv1.IncidentServiceClient
	prefix string
	// timeout bounds one count: every page of it.
	timeout time.Duration
}

// incidentsPageSize is the most ListIncidents returns at once.
const incidentsPageSize = 500

// count pages through every incident and sums alert_count (alerts ever
// attached) over the run's: those whose alertname group label, or else
// title, starts with the run's prefix. It also returns how many incidents
// those are.
func (r *readback) count(ctx context.Context) (alerts int64, incidents int, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req := &monitorv1.ListIncidentsRequest{PageSize: incidentsPageSize}
	for page := 0; ; page++ {
		resp, err := r.client.ListIncidents(ctx, req)
		if err != nil {
			return 0, 0, fmt.Errorf("list incidents (page %d): %w", page+1, err)
		}
		for _, inc := range resp.GetIncidents() {
			if strings.HasPrefix(inc.GetGroupLabels()["alertname"], r.prefix) || strings.HasPrefix(inc.GetTitle(), r.prefix) {
				alerts += int64(inc.GetAlertCount())
				incidents++
			}
		}
		if resp.GetNextPageToken() == "" {
			return alerts, incidents, nil
		}
		req.PageToken = resp.GetNextPageToken()
	}
}
