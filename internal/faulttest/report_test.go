package faulttest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Two test binaries of one run append to the same table file: the header
// is written once, the rows of both follow it.
func TestPrintTableAppendsOneTable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fault-table.md")
	t.Setenv("KOMBU_FAULT_TABLE", path)
	Record(t, Row{Test: "first binary", Transport: "memory", Fault: "none", Result: Result{Total: 1, Published: 1, Delivered: 1}, Elapsed: time.Second})
	PrintTable() // the first binary
	PrintTable() // a second binary, here with the same rows
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if n := strings.Count(text, "| test | transport |"); n != 1 {
		t.Errorf("%d headers in the table file, want 1:\n%s", n, text)
	}
	if n := strings.Count(text, "| first binary | memory |"); n != 2 {
		t.Errorf("%d rows in the table file, want 2:\n%s", n, text)
	}
}
