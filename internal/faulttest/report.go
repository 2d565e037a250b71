package faulttest

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Row is one line of the table of figures a fault run prints at its end.
type Row struct {
	Test      string // e.g. "RabbitMQ killed twice"
	Transport string // "amqp", "redis", "sentinel"
	Fault     string // what was done, e.g. "SIGKILL ×2, restart 1 s later"
	Result    Result
	// Resume is the longest time from the broker accepting connections
	// again (or the fault ending) to the next delivery; 0 when not measured.
	Resume  time.Duration
	Elapsed time.Duration // the whole test
	Note    string        // anything else worth a column (e.g. "stalled 0/4")
}

var (
	tableMu sync.Mutex
	table   []Row
)

// Record logs the row's figures on t and keeps it for PrintTable.
func Record(t testing.TB, r Row) {
	t.Helper()
	t.Logf("FIGURES %s [%s, %s]: %s; resume %s; %s in %v; errors: %s",
		r.Test, r.Transport, r.Fault, r.Result, fmtDur(r.Resume), r.Note, r.Elapsed.Round(time.Millisecond), r.Result.ErrorTally())
	for class, e := range r.Result.FirstErrors {
		t.Logf("  first %s: %.300s", class, e)
	}
	tableMu.Lock()
	table = append(table, r)
	tableMu.Unlock()
}

// Rows returns the rows recorded so far.
func Rows() []Row {
	tableMu.Lock()
	defer tableMu.Unlock()
	return append([]Row(nil), table...)
}

func fmtDur(d time.Duration) string {
	if d <= 0 {
		return "-"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}

// WriteTable writes rows as a markdown table.
func WriteTable(w io.Writer, rows []Row) error {
	return writeTable(w, rows, true)
}

// writeTable writes rows as markdown table lines, after the table's header
// when header is set.
func writeTable(w io.Writer, rows []Row, header bool) error {
	var b strings.Builder
	if header {
		b.WriteString("| test | transport | fault | published | lost | dup | unexpected | recovered | resume | time | note |\n")
		b.WriteString("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---|\n")
	}
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %d/%d | %d | %d | %d | %d | %s | %s | %s |\n",
			r.Test, r.Transport, r.Fault, r.Result.Published, r.Result.Total, r.Result.Lost,
			r.Result.Duplicated, r.Result.Unexpected, r.Result.Recovered, fmtDur(r.Resume),
			r.Elapsed.Round(100*time.Millisecond), r.Note)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// PrintTable prints the recorded rows (nothing when there are none) to
// stdout, and also writes them to the file named by KOMBU_FAULT_TABLE when
// that is set: the rows of every test binary of a run go to one table
// there (the header only when the file is empty). Call it from TestMain
// after m.Run.
func PrintTable() {
	rows := Rows()
	if len(rows) == 0 {
		return
	}
	fmt.Println("\nFault tests: every message counted by id (lost = published and acknowledged by the broker, never delivered)")
	_ = WriteTable(os.Stdout, rows)
	if path := os.Getenv("KOMBU_FAULT_TABLE"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err == nil {
			// Test binaries of one run finish side by side: one at a time.
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_EX)
			st, serr := f.Stat()
			_ = writeTable(f, rows, serr != nil || st.Size() == 0)
			_ = f.Close()
		}
	}
}

// Main is a TestMain for a package with fault tests and nothing else to
// set up: it runs the tests, prints the table of their figures and exits.
func Main(m *testing.M) {
	code := m.Run()
	PrintTable()
	os.Exit(code)
}
