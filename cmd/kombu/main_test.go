package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// The end-to-end tests run the built binary, as an operator does: the test
// process builds it once into a temporary folder.
var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
	buildDir  string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// kombuBinary returns the path of the built command.
func kombuBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "kombu-cli-test-")
		if buildErr != nil {
			return
		}
		builtPath = filepath.Join(buildDir, "kombu")
		out, err := exec.Command("go", "build", "-o", builtPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtPath
}

// result is one run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

// runKombu runs the binary with args (env entries added to the environment,
// KOMBU_URL unset unless given) and stdin, for at most a minute.
func runKombu(t testing.TB, stdin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, kombuBinary(t), args...)
	cmd.Env = append(environWithout("KOMBU_URL"), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("kombu %s: %v", strings.Join(args, " "), err)
	}
	return r
}

// mustKombu runs the binary and fails the test unless it exits 0.
func mustKombu(t testing.TB, stdin string, args ...string) result {
	t.Helper()
	r := runKombu(t, stdin, nil, args...)
	if r.code != 0 {
		t.Fatalf("kombu %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

func environWithout(name string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, name+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// uniqueName gives every test its own queue: other suites share the servers.
func uniqueName(t testing.TB, what string) string {
	return fmt.Sprintf("kombu-cli-%s-%s", what, randomTag())
}

// oneErrorLine checks the contract for bad input: one line on stderr,
// "kombu: ..." and no stack trace.
func oneErrorLine(t *testing.T, r result) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(r.stderr, "\n"), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "kombu: ") {
		t.Errorf("stderr is not one 'kombu: ' line: %q", r.stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", ".go:"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr looks like a stack trace (%q): %q", bad, r.stderr)
		}
	}
}

func TestBadInputIsOneLineAndExitCode2(t *testing.T) {
	dir := t.TempDir()
	badDump := filepath.Join(dir, "bad.jsonl")
	os.WriteFile(badDump, []byte(`{"queue":"q","body":"ok","properties":{}}`+"\n"+`{"queue": "q", "body": 1`+"\n"), 0o600)
	noBody := filepath.Join(dir, "nobody.jsonl")
	os.WriteFile(noBody, []byte(`{"queue":"q","properties":{}}`+"\n"), 0o600)
	badHeader := filepath.Join(dir, "badheader.jsonl")
	os.WriteFile(badHeader, []byte(`{"queue":"q","body":"x","properties":{},"headers":{"h":{"$nope":1}}}`+"\n"), 0o600)
	for _, tc := range []struct {
		name  string
		stdin string
		args  []string
		want  string // in the error line
	}{
		{"unknown scheme", "", []string{"check", "nosuch://host"}, `unknown scheme "nosuch"`},
		{"malformed URL", "", []string{"check", "amqp://host:99999//"}, "invalid URL"},
		{"URL with control byte", "", []string{"check", "redis://a\x01b"}, "control character"},
		{"unreadable body file", "", []string{"publish", "memory://", "--queue", "q", "--file", filepath.Join(dir, "missing")}, "cannot read body"},
		{"unreadable dump", "", []string{"load", filepath.Join(dir, "missing.jsonl"), "memory://"}, "cannot read dump"},
		{"dump line not JSON", "", []string{"load", badDump, "memory://"}, "line 2: not a dump record"},
		{"dump line without body", "", []string{"load", noBody, "memory://"}, "line 1: no body"},
		{"dump header with unknown tag", "", []string{"load", badHeader, "memory://"}, `unknown type tag "$nope"`},
		{"body not JSON", "", []string{"publish", "memory://", "--queue", "q", "{oops"}, "body is not valid json"},
		{"body not YAML", "", []string{"publish", "memory://", "--queue", "q", "-s", "yaml", "a: [1"}, "body is not valid yaml"},
		{"empty JSON body from stdin", "", []string{"publish", "memory://", "--queue", "q"}, "empty body"},
		{"msgpack body not JSON", "", []string{"publish", "memory://", "--queue", "q", "-s", "msgpack", "{"}, "not valid JSON"},
		{"unknown serializer", "", []string{"publish", "memory://", "--queue", "q", "-s", "pickle", "1"}, "pickle"},
		{"unknown compression", "", []string{"publish", "memory://", "--queue", "q", "-z", "lz4", "1"}, "lz4"},
		{"bad header", "", []string{"publish", "memory://", "--queue", "q", "-H", "novalue", "1"}, "want NAME=VALUE"},
		{"no URL", "", []string{"consume", "q"}, "no broker URL"},
		{"too many arguments", "", []string{"get", "memory://", "a", "b"}, "want arguments"},
		{"unknown flag", "", []string{"consume", "memory://", "q", "--bogus"}, "unknown flag"},
		{"bad flag value", "", []string{"consume", "memory://", "q", "--count", "many"}, "invalid argument"},
		{"two settle modes", "", []string{"consume", "memory://", "q", "--ack", "--no-ack"}, "one of --ack"},
		{"unknown command", "", []string{"frobnicate"}, "unknown command"},
		{"move without URLs", "", []string{"move", "q", "memory://"}, "SRC-URL QUEUE DST-URL"},
		{"move into itself", "", []string{"move", "memory://", "q", "memory://"}, "the same queue"},
		{"declare bad kind", "", []string{"declare", "memory://", "topic", "x"}, "want queue or exchange"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runKombu(t, tc.stdin, nil, tc.args...)
			if r.code != exitUsage {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, exitUsage, r.stderr)
			}
			oneErrorLine(t, r)
			if !strings.Contains(r.stderr, tc.want) {
				t.Errorf("stderr %q does not say %q", r.stderr, tc.want)
			}
		})
	}
}

func TestPasswordsAreNeverPrinted(t *testing.T) {
	const pw = "Sup3r-s3cret"
	for _, args := range [][]string{
		{"check", "amqp://user:" + pw + "@127.0.0.1:1//", "--connect-timeout", "2s"},
		{"inspect", "redis://:" + pw + "@127.0.0.1:1/0", "--connect-timeout", "2s"},
		{"check", "amqp://user:" + pw + "@127.0.0.1:1//?unknown_option=1"},
		{"check", "amqp://user:" + pw + "@host:port//"},
		{"check", "amqp://user:" + pw + "@127.0.0.1:1//;amqp://user:" + pw + "@127.0.0.1:2//", "--connect-timeout", "2s"},
		{"move", "amqp://user:" + pw + "@127.0.0.1:1//", "q", "redis://:" + pw + "@127.0.0.1:1/0", "--connect-timeout", "2s"},
		{"check", "nosuch://user:" + pw + "@host"},
	} {
		r := runKombu(t, "", nil, args...)
		if r.code == 0 {
			t.Errorf("kombu %v succeeded", args[:2])
		}
		if strings.Contains(r.stdout+r.stderr, pw) {
			t.Errorf("kombu %s printed the password: %q", args[0], r.stdout+r.stderr)
		}
		oneErrorLine(t, r)
	}
	// From KOMBU_URL too.
	r := runKombu(t, "", []string{"KOMBU_URL=amqp://user:" + pw + "@127.0.0.1:1//"}, "check", "--connect-timeout", "2s")
	if r.code != exitUnreachable || strings.Contains(r.stderr, pw) {
		t.Errorf("KOMBU_URL: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestExitCodesWithoutServer(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"ok", []string{"check", "memory://"}, exitOK},
		{"unreachable", []string{"check", "amqp://guest:guest@127.0.0.1:1//", "--connect-timeout", "2s"}, exitUnreachable},
		{"queue not found", []string{"get", "memory://", "no-such-queue"}, exitNotFound},
		{"consume of a missing queue", []string{"consume", "memory://", "no-such-queue"}, exitNotFound},
		{"inspect of a missing queue", []string{"inspect", "memory://", "no-such-queue"}, exitNotFound},
		{"usage", []string{"publish"}, exitUsage},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runKombu(t, "", nil, tc.args...)
			if r.code != tc.want {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.want, r.stderr)
			}
		})
	}
}

func TestKombuURLFromEnvironment(t *testing.T) {
	r := runKombu(t, "", []string{"KOMBU_URL=memory://"}, "check")
	if r.code != 0 || !strings.HasPrefix(r.stdout, "ok: memory round trip") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	// An explicit URL wins over KOMBU_URL.
	r = runKombu(t, "", []string{"KOMBU_URL=nosuch://x"}, "check", "memory://")
	if r.code != 0 {
		t.Fatalf("explicit URL: exit %d, stderr %q", r.code, r.stderr)
	}
	r = runKombu(t, "", []string{"KOMBU_URL=nosuch://x"}, "inspect", "q")
	if r.code != exitUsage || !strings.Contains(r.stderr, `unknown scheme "nosuch"`) {
		t.Fatalf("KOMBU_URL not used: exit %d, stderr %q", r.code, r.stderr)
	}
}

func TestHelpHasExamplesForEveryCommand(t *testing.T) {
	root := (&app{}).rootCommand()
	for _, c := range root.Commands() {
		r := mustKombu(t, "", c.Name(), "--help")
		if !strings.Contains(r.stdout, "Usage:") {
			t.Errorf("%s --help has no usage: %q", c.Name(), r.stdout)
		}
		if c.Example == "" || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("%s --help has no examples", c.Name())
		}
	}
}

func TestShellCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish", "powershell"} {
		r := mustKombu(t, "", "completion", shell)
		if !strings.Contains(r.stdout, "kombu") || len(r.stdout) < 500 {
			t.Errorf("completion %s: %d bytes: %.200q", shell, len(r.stdout), r.stdout)
		}
	}
	r := mustKombu(t, "", "__complete", "consume", "")
	for _, s := range []string{"memory://", "redis://", "amqp://"} {
		if !strings.Contains(r.stdout, s+"\n") {
			t.Errorf("completion of the URL does not offer %s: %q", s, r.stdout)
		}
	}
	r = mustKombu(t, "", "__complete", "declare", "memory://", "")
	if !strings.Contains(r.stdout, "queue\nexchange\n") {
		t.Errorf("completion after declare URL: %q", r.stdout)
	}
	r = mustKombu(t, "", "__complete", "publish", "--serializer", "")
	if !strings.Contains(r.stdout, "msgpack\n") {
		t.Errorf("completion of --serializer: %q", r.stdout)
	}
}
