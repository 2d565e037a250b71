package postgres

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/kombu-go/kombu/internal/sqltest"
	"github.com/kombu-go/kombu/virtual"
)

// rawE2E is what a hand-written Go worker on pgx does with the same table
// and the same guarantee (a claimed row is leased, deleted on ack): a
// producer INSERTs batch rows per statement while a consumer claims up to
// batch rows with FOR UPDATE SKIP LOCKED and deletes them. It polls every
// millisecond when the queue is empty (no LISTEN), its best case. With
// asyncClaims its claims and deletes commit with synchronous_commit off, as
// kombu-go's do.
func rawE2E(tb testing.TB, raw, queue string, n, batch int, asyncClaims bool) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	o, err := ParseURL(mustURL(tb, raw))
	if err != nil {
		tb.Fatal(err)
	}
	pc, err := pgxpool.New(ctx, o.Config.ConnString())
	if err != nil {
		tb.Fatal(err)
	}
	defer pc.Close()
	cc := pc
	if asyncClaims {
		cfg, err := pgxpool.ParseConfig(o.Config.ConnString())
		if err != nil {
			tb.Fatal(err)
		}
		cfg.ConnConfig.RuntimeParams["synchronous_commit"] = "off"
		if cc, err = pgxpool.NewWithConfig(ctx, cfg); err != nil {
			tb.Fatal(err)
		}
		defer cc.Close()
	}
	// The payload a kombu producer writes, made before timing.
	env := &virtual.Envelope{}
	env.Body, env.ContentType, env.ContentEncoding, env.RoutingKey = sqltest.BenchBody, "application/json", "utf-8", queue
	payloads := make([]string, batch)
	for i := range payloads {
		b, _ := env.Marshal()
		payloads[i] = string(b)
	}
	var qid int64
	if err := pc.QueryRow(ctx, "INSERT INTO kombu_queue (id, name) VALUES (nextval('queue_id_sequence'), $1) ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING id", queue).Scan(&qid); err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	start := time.Now()
	go func() {
		got := 0
		for got < n {
			lease := time.Now().Add(time.Hour).UnixMilli()
			// MATERIALIZED, as kombu-go's claim: a subquery can be rerun
			// per row and take more than batch (see sqlstore's dialect).
			rows, err := cc.Query(ctx, `WITH p AS MATERIALIZED (SELECT id FROM kombu_message WHERE queue_id = $2 AND visible = true ORDER BY priority DESC, id LIMIT $3 FOR UPDATE SKIP LOCKED)
				UPDATE kombu_message AS m SET visible = false, lease_until = $1, version = version + 1
				FROM p WHERE m.id = p.id RETURNING m.id, m.payload`, lease, qid, batch)
			if err != nil {
				done <- err
				return
			}
			var ids []int64
			for rows.Next() {
				var id int64
				var payload string
				if err := rows.Scan(&id, &payload); err != nil {
					done <- err
					return
				}
				ids = append(ids, id)
			}
			if err := rows.Err(); err != nil {
				done <- err
				return
			}
			if len(ids) == 0 {
				time.Sleep(time.Millisecond)
				continue
			}
			if _, err := cc.Exec(ctx, "DELETE FROM kombu_message WHERE id = ANY($1)", ids); err != nil {
				done <- err
				return
			}
			got += len(ids)
		}
		done <- nil
	}()
	for sent := 0; sent < n; sent += batch {
		k := min(batch, n-sent)
		if _, err := pc.Exec(ctx, `INSERT INTO kombu_message (id, visible, payload, version, queue_id)
			SELECT nextval('message_id_sequence'), true, p, 1, $2 FROM unnest($1::text[]) AS p`, payloads[:k], qid); err != nil {
			tb.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		tb.Fatal(err)
	}
	return time.Since(start)
}

// TestBenchmarkTable measures end to end throughput (one at a time and
// batched by 100) of kombu-go against the raw pgx claim loop in the same
// run, Python kombu's sqlalchemy transport on the same database, and the
// CPU of an idle consumer. It runs with KOMBU_SQL_BENCH=1 and prints the
// table docs/benchmarks.md shows.
func TestBenchmarkTable(t *testing.T) {
	if os.Getenv("KOMBU_SQL_BENCH") == "" {
		t.Skip("set KOMBU_SQL_BENCH=1 to run the benchmark table (about a minute)")
	}
	raw := testURL(t)
	u := mustURL(t, raw)
	py := (&url.URL{Scheme: "sqla+postgresql", User: u.User, Host: u.Host, Path: u.Path}).String()
	openStore(t, raw) // the schema
	const rounds = 3
	scenarios := []sqltest.Scenario{
		{Name: "raw-1", N: 2000, Run: func(q string, n int) time.Duration { return rawE2E(t, raw, q, n, 1, false) }},
		{Name: "raw-1-async", N: 2000, Run: func(q string, n int) time.Duration { return rawE2E(t, raw, q, n, 1, true) }},
		{Name: "go-1", N: 2000, Run: func(q string, n int) time.Duration { return sqltest.KombuE2E(t, raw, q, n, 1, 1) }},
		{Name: "raw-100", N: 20000, Run: func(q string, n int) time.Duration { return rawE2E(t, raw, q, n, 100, false) }},
		{Name: "raw-100-async", N: 20000, Run: func(q string, n int) time.Duration { return rawE2E(t, raw, q, n, 100, true) }},
		{Name: "go-100", N: 20000, Run: func(q string, n int) time.Duration { return sqltest.KombuE2E(t, raw, q, n, 100, 100) }},
		{Name: "python", N: 1000, Run: func(q string, n int) time.Duration { return sqltest.PythonE2E(t, py, q, n) }},
	}
	rate, table := sqltest.RunScenarios(scenarios, rounds)
	var sb strings.Builder
	sb.WriteString(table)
	idle := sqltest.IdleCPU(t, raw, fmt.Sprintf("bench.idle.%d", time.Now().UnixNano()), 10*time.Second)
	fmt.Fprintf(&sb, "\nkombu-go/raw-async: one at a time %.2f×, batched %.2f×\n", rate["go-1"]/rate["raw-1-async"], rate["go-100"]/rate["raw-100-async"])
	fmt.Fprintf(&sb, "\nkombu-go/raw: one at a time %.2f×, batched %.2f×; kombu-go/Python: %.1f× one at a time, %.1f× batched; idle consumer CPU %v in 10 s\n",
		rate["go-1"]/rate["raw-1"], rate["go-100"]/rate["raw-100"], rate["go-1"]/rate["python"], rate["go-100"]/rate["python"], idle)
	t.Log("\n" + sb.String())
}
