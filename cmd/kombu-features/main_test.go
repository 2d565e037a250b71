package main

import (
	"os"
	"strings"
	"testing"
)

// docs/transports.md must show the capability table the transports declare.
func TestTransportsDocIsCurrent(t *testing.T) {
	var b strings.Builder
	writeTable(&b)
	doc, err := os.ReadFile("../../docs/transports.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), b.String()) {
		t.Fatalf("docs/transports.md is out of date; regenerate its table with `go run ./cmd/kombu-features`:\n%s", b.String())
	}
}
