package db_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/vigil-ops/vigil/pkg/db"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

// The pool's metrics say what the pool holds when scraped: a connection
// acquired, then back among the idle ones.
func TestPoolCollector(t *testing.T) {
	t.Parallel()
	pool := open(t, testkit.Postgres(t), "alpha")
	reg := prometheus.NewRegistry()
	reg.MustRegister(db.PoolCollector(pool, "alpha"))
	conns := func(acquired, idle string) string {
		return `
# HELP vigil_db_pool_connections Connections of the schema's pool, by state (acquired, idle, constructing).
# TYPE vigil_db_pool_connections gauge
vigil_db_pool_connections{schema="alpha",state="acquired"} ` + acquired + `
vigil_db_pool_connections{schema="alpha",state="constructing"} 0
vigil_db_pool_connections{schema="alpha",state="idle"} ` + idle + "\n"
	}

	conn, err := pool.Acquire(t.Context())
	require.NoError(t, err)
	idle := pool.Stat().IdleConns()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(conns("1", itoa(idle))), "vigil_db_pool_connections"))
	conn.Release()
	require.NoError(t, testutil.GatherAndCompare(reg, strings.NewReader(conns("0", itoa(idle+1))), "vigil_db_pool_connections"))
	require.Equal(t, 1, testutil.CollectAndCount(reg, "vigil_db_pool_max_connections"))
}

func itoa(n int32) string { return strconv.FormatInt(int64(n), 10) }
