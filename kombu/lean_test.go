package kombu_test

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A program that imports only the core, memory:// and the middleware links
// no third-party package (OpenTelemetry stays in kombu/otelkombu) and no
// net/http: codecs beyond json, raw and zlib come from their
// own packages (docs/design.md, "A lean core").
func TestCoreLinksOnlyTheStandardLibrary(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command")
	}
	goCmd := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{else}}std:{{.ImportPath}}{{end}}",
		"github.com/kombu-go/kombu/kombu", "github.com/kombu-go/kombu/transport/memory",
		"github.com/kombu-go/kombu/kombu/middleware").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		switch {
		case pkg == "std:net/http" || strings.HasPrefix(pkg, "std:net/http/"):
			t.Errorf("the core links %s", strings.TrimPrefix(pkg, "std:"))
		case strings.HasPrefix(pkg, "std:"):
		case !strings.HasPrefix(pkg, "github.com/kombu-go/kombu/"):
			t.Errorf("the core links third-party package %s", pkg)
		}
	}
}
