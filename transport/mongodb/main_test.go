package mongodb

import (
	"os"
	"testing"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestMain prints the fault table of the package's fault tests.
func TestMain(m *testing.M) {
	code := m.Run()
	faulttest.PrintTable()
	os.Exit(code)
}
