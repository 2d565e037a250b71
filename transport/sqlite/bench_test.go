package sqlite

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/sqltest"
)

// TestBenchmarkTable measures kombu-go end to end on one SQLite file (one
// at a time and batched by 100), Python kombu's sqla+sqlite transport on
// the same file, and the CPU of an idle consumer. It runs with
// KOMBU_SQL_BENCH=1 and prints the table docs/benchmarks.md shows.
func TestBenchmarkTable(t *testing.T) {
	if os.Getenv("KOMBU_SQL_BENCH") == "" {
		t.Skip("set KOMBU_SQL_BENCH=1 to run the benchmark table")
	}
	raw := fileURL(t, "")
	const rounds = 3
	scenarios := []sqltest.Scenario{
		{Name: "go-1", N: 2000, Run: func(q string, n int) time.Duration { return sqltest.KombuE2E(t, raw, q, n, 1, 1) }},
		{Name: "go-100", N: 20000, Run: func(q string, n int) time.Duration { return sqltest.KombuE2E(t, raw, q, n, 100, 100) }},
		{Name: "python", N: 1000, Run: func(q string, n int) time.Duration { return sqltest.PythonE2E(t, "sqla+"+raw, q, n) }},
	}
	rate, table := sqltest.RunScenarios(scenarios, rounds)
	var sb strings.Builder
	sb.WriteString(table)
	idle := sqltest.IdleCPU(t, raw, fmt.Sprintf("bench.idle.%d", time.Now().UnixNano()), 10*time.Second)
	fmt.Fprintf(&sb, "\nkombu-go/Python: %.1f× one at a time, %.1f× batched; idle consumer CPU %v in 10 s (polling every 100 ms)\n",
		rate["go-1"]/rate["python"], rate["go-100"]/rate["python"], idle)
	t.Log("\n" + sb.String())
}
