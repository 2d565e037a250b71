package sqlite

import (
	"testing"

	"github.com/kombu-go/kombu/internal/sqltest"
)

// TestPythonInterop: Python kombu's sqla+sqlite:/// transport and this one
// share queues on one file, both ways (see sqltest.Interop).
func TestPythonInterop(t *testing.T) {
	raw := fileURL(t, "")
	sqltest.Interop(t, raw, "sqla+"+raw)
}
