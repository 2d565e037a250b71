package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// fakeTB records how a helper ended the test instead of ending the real one. Fatal and Skip
// calls stop the calling goroutine with runtime.Goexit, as the testing package does, so run
// calls the helper on a goroutine of its own.
type fakeTB struct {
	testing.TB // the real test, for anything not overridden (Name, TempDir, ...)

	mu       sync.Mutex
	returned bool
	failed   bool
	skipped  bool
	msgs     []string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) note(failed, skipped bool, s string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failed = f.failed || failed
	f.skipped = f.skipped || skipped
	if s != "" {
		f.msgs = append(f.msgs, s)
	}
}

func (f *fakeTB) Log(args ...any)                 { f.note(false, false, fmt.Sprint(args...)) }
func (f *fakeTB) Logf(format string, args ...any) { f.note(false, false, fmt.Sprintf(format, args...)) }
func (f *fakeTB) Fail()                           { f.note(true, false, "") }
func (f *fakeTB) Error(args ...any)               { f.note(true, false, fmt.Sprint(args...)) }
func (f *fakeTB) Errorf(format string, args ...any) {
	f.note(true, false, fmt.Sprintf(format, args...))
}
func (f *fakeTB) FailNow()          { f.note(true, false, ""); runtime.Goexit() }
func (f *fakeTB) Fatal(args ...any) { f.note(true, false, fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.note(true, false, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) SkipNow()         { f.note(false, true, ""); runtime.Goexit() }
func (f *fakeTB) Skip(args ...any) { f.note(false, true, fmt.Sprint(args...)); runtime.Goexit() }
func (f *fakeTB) Skipf(format string, args ...any) {
	f.note(false, true, fmt.Sprintf(format, args...))
	runtime.Goexit()
}
func (f *fakeTB) Failed() bool  { f.mu.Lock(); defer f.mu.Unlock(); return f.failed }
func (f *fakeTB) Skipped() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.skipped }

func (f *fakeTB) message() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.msgs, "\n")
}

// run calls fn with a fakeTB and reports how it ended.
func run(t *testing.T, fn func(tb testing.TB)) *fakeTB {
	t.Helper()
	f := &fakeTB{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(f)
		f.mu.Lock()
		f.returned = true
		f.mu.Unlock()
	}()
	<-done
	return f
}

func TestInCI(t *testing.T) {
	for _, tc := range []struct {
		value string
		want  bool
	}{
		{"", false},
		{"true", true},
		{"TRUE", true},
		{"True", true},
		{"1", true},
		{"false", false},
		{"0", false},
		{"yes", false},
	} {
		t.Setenv("CI", tc.value)
		if got := InCI(); got != tc.want {
			t.Errorf("CI=%q: InCI() = %v, want %v", tc.value, got, tc.want)
		}
	}
}

const testVar = "KOMBU_TEST_TESTENV_SELFTEST_URL"

func TestServerURLSet(t *testing.T) {
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		t.Setenv(testVar, "redis://127.0.0.1:1234/0")
		var got string
		f := run(t, func(tb testing.TB) { got = ServerURL(tb, testVar) })
		if !f.returned || f.Failed() || f.Skipped() {
			t.Fatalf("CI=%q: returned=%v failed=%v skipped=%v (%s)", ci, f.returned, f.Failed(), f.Skipped(), f.message())
		}
		if got != "redis://127.0.0.1:1234/0" {
			t.Errorf("CI=%q: ServerURL = %q", ci, got)
		}
	}
}

func TestServerURLUnsetSkipsOutsideCI(t *testing.T) {
	t.Setenv("CI", "")
	t.Setenv(testVar, "")
	f := run(t, func(tb testing.TB) { ServerURL(tb, testVar) })
	if f.returned || f.Failed() || !f.Skipped() {
		t.Fatalf("want a skip: returned=%v failed=%v skipped=%v", f.returned, f.Failed(), f.Skipped())
	}
	for _, want := range []string{testVar, "make services-up"} {
		if !strings.Contains(f.message(), want) {
			t.Errorf("skip message %q does not mention %q", f.message(), want)
		}
	}
}

func TestServerURLUnsetFailsInCI(t *testing.T) {
	for _, ci := range []string{"true", "1"} {
		t.Setenv("CI", ci)
		t.Setenv(testVar, "")
		f := run(t, func(tb testing.TB) { ServerURL(tb, testVar) })
		if f.returned || !f.Failed() || f.Skipped() {
			t.Fatalf("CI=%s: want a fatal failure: returned=%v failed=%v skipped=%v", ci, f.returned, f.Failed(), f.Skipped())
		}
		for _, want := range []string{testVar, "make test"} {
			if !strings.Contains(f.message(), want) {
				t.Errorf("CI=%s: failure message %q does not mention %q", ci, f.message(), want)
			}
		}
	}
}

// fakePython writes a shell script standing in for an interpreter: it succeeds only when
// called as `PATH -I -c CODE` and ok is true.
func fakePython(t *testing.T, ok bool) string {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skip("needs a POSIX shell")
	}
	body := "#!/bin/sh\n[ \"$1\" = -I ] && [ \"$2\" = -c ] || { echo 'not isolated' >&2; exit 3; }\n"
	if ok {
		body += "exit 0\n"
	} else {
		body += "echo \"ModuleNotFoundError: No module named 'kombu'\" >&2\nexit 1\n"
	}
	path := filepath.Join(t.TempDir(), "python3")
	if err := os.WriteFile(path, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestPythonFromEnv(t *testing.T) {
	t.Setenv("CI", "true")
	py := fakePython(t, true)
	t.Setenv(PythonPath, py)
	var got string
	f := run(t, func(tb testing.TB) { got = Python(tb) })
	if !f.returned || f.Failed() || f.Skipped() || got != py {
		t.Fatalf("Python = %q, returned=%v failed=%v skipped=%v (%s)", got, f.returned, f.Failed(), f.Skipped(), f.message())
	}
}

func TestPythonWithoutKombu(t *testing.T) {
	bad := fakePython(t, false)
	for _, ci := range []string{"", "true"} {
		t.Setenv("CI", ci)
		t.Setenv(PythonPath, bad)
		f := run(t, func(tb testing.TB) { Python(tb) })
		if f.returned {
			t.Fatalf("CI=%q: Python returned for an interpreter without kombu", ci)
		}
		if inCI := ci != ""; f.Failed() != inCI || f.Skipped() == inCI {
			t.Errorf("CI=%q: failed=%v skipped=%v, want failure only in CI", ci, f.Failed(), f.Skipped())
		}
		for _, want := range []string{PythonPath, "No module named 'kombu'"} {
			if !strings.Contains(f.message(), want) {
				t.Errorf("CI=%q: message %q does not mention %q", ci, f.message(), want)
			}
		}
	}
}

func TestPythonDefault(t *testing.T) {
	old := defaultPython
	t.Cleanup(func() { defaultPython = old })
	t.Setenv(PythonPath, "")
	t.Setenv("CI", "")

	defaultPython = fakePython(t, true)
	var got string
	f := run(t, func(tb testing.TB) { got = Python(tb) })
	if !f.returned || got != defaultPython {
		t.Fatalf("Python = %q, want the default %q (%s)", got, defaultPython, f.message())
	}

	defaultPython = filepath.Join(t.TempDir(), "no-such-python3")
	f = run(t, func(tb testing.TB) { Python(tb) })
	if f.returned || !f.Skipped() || !strings.Contains(f.message(), PythonPath+" is not set") {
		t.Fatalf("missing default interpreter: returned=%v skipped=%v (%s)", f.returned, f.Skipped(), f.message())
	}
}

// A kombu/ folder where the interpreter runs must not count as kombu (it would be imported as
// an empty namespace package). Uses any python3 on PATH that lacks the real kombu.
func TestPythonIgnoresKombuFolder(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3 on PATH")
	}
	if exec.Command(py, "-I", "-c", "import kombu; kombu.Connection").Run() == nil {
		t.Skip(py + " has the real kombu")
	}
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "kombu"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TMPDIR", dir) // importsKombu runs the interpreter in os.TempDir()
	t.Setenv("CI", "")
	t.Setenv(PythonPath, py)
	f := run(t, func(tb testing.TB) { Python(tb) })
	if f.returned || !f.Skipped() {
		t.Fatalf("Python accepted %s next to an empty kombu/ folder (%s)", py, f.message())
	}
}

// With the servers up (make test), the interpreter the scripts chose must really import kombu.
func TestPythonReal(t *testing.T) {
	py := Python(t)
	out, err := exec.Command(py, "-I", "-c", "import kombu, sys; sys.stdout.write(kombu.__version__)").CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", py, err, out)
	}
	t.Logf("%s: kombu %s", py, out)
}
