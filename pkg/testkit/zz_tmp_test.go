package testkit_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-ops/vigil/pkg/testkit"
)

func TestZZCreateDB(t *testing.T) {
	conn, err := pgx.Connect(t.Context(), testkit.Postgres(t))
	if err != nil { t.Fatal(err) }
	for _, strat := range []string{"WAL_LOG", "FILE_COPY", "WAL_LOG", "FILE_COPY"} {
		b := time.Now()
		for i := 0; i < 5; i++ {
			if _, err := conn.Exec(t.Context(), fmt.Sprintf("CREATE DATABASE zz_%s_%d_%d STRATEGY = %s", strat, i, b.UnixNano(), strat)); err != nil { t.Fatal(err) }
		}
		t.Log(strat, time.Since(b)/5)
	}
}
