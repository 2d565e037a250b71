// Package sqltest holds the tests that transport/postgres and
// transport/sqlite share: Python kombu interop, a consumer killed with
// unacked messages, several consumer processes on one queue. Each engine's
// tests call them with its URLs; the helper processes are the engine's own
// test binary (see Child).
package sqltest

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
)

// python runs the interop script with args and returns its stdout lines.
func python(t testing.TB, args map[string]any) []string {
	t.Helper()
	py := testenv.Python(t)
	_, file, _, _ := runtime.Caller(0)
	script := filepath.Join(filepath.Dir(file), "testdata", "sql_interop.py")
	a, err := json.Marshal(args)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-I", script, string(a))
	cmd.Dir = t.TempDir() // no kombu/ folder beside the script's working directory
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python %v: %v\n%s", args["mode"], err, stderr.String())
	}
	return strings.Split(strings.TrimSpace(string(out)), "\n")
}
