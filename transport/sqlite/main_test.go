package sqlite

import (
	"testing"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestMain prints the fault table of the package's fault tests.
func TestMain(m *testing.M) { faulttest.Main(m) }
