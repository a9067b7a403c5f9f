package db

import (
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
)

// poolCollector exports the pool of a schema (of its service), read at
// each scrape: a pool whose connections are all acquired makes every query
// wait for one.
type poolCollector struct {
	pool                      *pgxpool.Pool
	conns, max, waits, waited *prometheus.Desc
}

// PoolCollector returns the metrics of the pool of schema, to register
// with the process's registry.
func PoolCollector(pool *pgxpool.Pool, schema string) prometheus.Collector {
	l := prometheus.Labels{"schema": schema}
	return &poolCollector{
		pool: pool,
		conns: prometheus.NewDesc("vigil_db_pool_connections",
			"Connections of the schema's pool, by state (acquired, idle, constructing).", []string{"state"}, l),
		max: prometheus.NewDesc("vigil_db_pool_max_connections",
			"The most connections the schema's pool opens.", nil, l),
		waits: prometheus.NewDesc("vigil_db_pool_empty_acquires_total",
			"Connections acquired from the schema's pool after waiting, every one being in use.", nil, l),
		waited: prometheus.NewDesc("vigil_db_pool_empty_acquire_wait_seconds_total",
			"Time spent waiting for a connection of the schema's pool, every one being in use.", nil, l),
	}
}

func (c *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.conns
	ch <- c.max
	ch <- c.waits
	ch <- c.waited
}

func (c *poolCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.pool.Stat()
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.AcquiredConns()), "acquired")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.IdleConns()), "idle")
	ch <- prometheus.MustNewConstMetric(c.conns, prometheus.GaugeValue, float64(s.ConstructingConns()), "constructing")
	ch <- prometheus.MustNewConstMetric(c.max, prometheus.GaugeValue, float64(s.MaxConns()))
	ch <- prometheus.MustNewConstMetric(c.waits, prometheus.CounterValue, float64(s.EmptyAcquireCount()))
	ch <- prometheus.MustNewConstMetric(c.waited, prometheus.CounterValue, s.EmptyAcquireWaitTime().Seconds())
}
