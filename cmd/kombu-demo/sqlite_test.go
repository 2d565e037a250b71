package main

import (
	"path/filepath"
	"testing"
)

// TestDemoOnSQLiteFile: `make demo ARGS=sqlite:///FILE` works with no
// server (the demo fails when an order is lost or a queue is left
// non-empty).
func TestDemoOnSQLiteFile(t *testing.T) {
	if err := run("sqlite:///"+filepath.Join(t.TempDir(), "demo.db"), 6); err != nil {
		t.Fatal(err)
	}
}
