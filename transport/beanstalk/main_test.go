package beanstalk

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/kombu-go/kombu/internal/faulttest"
)

// TestMain checks that no goroutine outlives the tests and prints the
// fault tests' table of figures (KOMBU_FAULT_TABLE collects it in make test).
func TestMain(m *testing.M) {
	code := m.Run()
	faulttest.PrintTable()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutines left after the tests:", err)
			code = 1
		}
	}
	os.Exit(code)
}
