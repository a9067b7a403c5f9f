package outbox

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// collector exports, at each scrape, the events of a schema's outbox that
// were committed and not yet published: while NATS is away they wait here
// (and the relay publishes them, in order, once it is back).
type collector struct {
	pool *pgxpool.Pool
	// none is set once the schema turned out to have no outbox (a service
	// without a relay): it is not asked again.
	none atomic.Bool

	pending, oldest *prometheus.Desc
}

// collectTimeout bounds the query of a scrape: one while Postgres is
// away leaves the metrics out rather than hang.
const collectTimeout = 2 * time.Second

// Collector returns the outbox metrics of schema, whose pool is pool, to
// register with the process's registry. A schema without an outbox table
// exports nothing.
func Collector(pool *pgxpool.Pool, schema string) prometheus.Collector {
	l := prometheus.Labels{"schema": schema}
	return &collector{
		pool: pool,
		pending: prometheus.NewDesc("vigil_outbox_pending_events",
			"Events committed in the schema's outbox and not yet published on JetStream.", nil, l),
		oldest: prometheus.NewDesc("vigil_outbox_oldest_event_age_seconds",
			"Age of the oldest event in the schema's outbox not yet published (0 when none waits).", nil, l),
	}
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.oldest
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	if c.none.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), collectTimeout)
	defer cancel()
	var (
		n   int64
		age float64
	)
	// The outbox is empty but for what waits on NATS: a scan of it is
	// cheap, and one statement reads both.
	err := c.pool.QueryRow(ctx, `SELECT count(*), COALESCE(EXTRACT(EPOCH FROM now() - min(created_at)), 0)::float8 FROM outbox`).Scan(&n, &age)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == "42P01": // undefined_table
		c.none.Store(true)
		return
	case err != nil:
		return
	}
	ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(n))
	ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, max(age, 0))
}
