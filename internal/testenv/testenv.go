// Package testenv tells tests where the real servers started by `make test` are.
//
// scripts/services.sh starts Redis, Redis Sentinel and RabbitMQ on free loopback ports and
// writes their URLs to .services/env as KOMBU_TEST_* variables; `make test` exports them to
// `go test`. A test asks for the server it needs with [ServerURL]:
//
//	url := testenv.ServerURL(t, "KOMBU_TEST_REDIS_URL")
//
// When the variable is unset the test is skipped with a message saying how to start the
// servers, except in CI (CI=true or CI=1), where it fails: there every server must be up, and a
// silently skipped suite would hide a broken setup. The redis transport's tests are the one
// exception outside CI: without KOMBU_TEST_REDIS_URL they run on an in-process miniredis (see
// transport/redis/testserver_test.go).
package testenv

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

// Variables set by scripts/services.sh (see .services/env after `make services-up`).
const (
	RedisURL         = "KOMBU_TEST_REDIS_URL"          // redis://127.0.0.1:PORT/0
	RedisSentinelURL = "KOMBU_TEST_REDIS_SENTINEL_URL" // sentinel://127.0.0.1:PORT/0?master_name=mymaster
	RedisCLI         = "KOMBU_TEST_REDIS_CLI"          // "redis-cli -p PORT"
	AMQPURL          = "KOMBU_TEST_AMQP_URL"           // amqp://guest:guest@127.0.0.1:PORT//
	RabbitMQNode     = "KOMBU_TEST_RABBITMQ_NODE"      // node name for rabbitmqctl -n
	RabbitMQCtl      = "KOMBU_TEST_RABBITMQCTL"        // path of a rabbitmqctl preset for that node
	PythonPath       = "KOMBU_TEST_PYTHON"             // a python3 that can import kombu
	MongoDBURL       = "KOMBU_TEST_MONGODB_URL"        // mongodb://127.0.0.1:PORT/kombu_test (FerretDB)
)

// InCI reports whether the tests run in CI: the environment variable CI is "true" (in any
// case) or "1".
func InCI() bool {
	v := strings.TrimSpace(os.Getenv("CI"))
	return v == "1" || strings.EqualFold(v, "true")
}

// ServerURL returns the value of the environment variable envVar (for example
// "KOMBU_TEST_REDIS_URL"). When it is unset or empty, it fails the test in CI (t.Fatalf,
// naming the variable and `make test`) and skips it elsewhere (t.Skipf, naming the variable
// and `make services-up`). It returns only when the variable is set.
func ServerURL(t testing.TB, envVar string) string {
	t.Helper()
	if v := os.Getenv(envVar); v != "" {
		return v
	}
	missing(t, envVar+" is not set")
	return ""
}

// missing fails the test in CI and skips it elsewhere.
func missing(t testing.TB, what string) {
	t.Helper()
	if InCI() {
		t.Fatalf("%s: in CI every test server must be up; run the tests with `make test`, which starts them and sets the KOMBU_TEST_* variables", what)
		return
	}
	t.Skipf("%s: skipping; start the servers with `make services-up` and load their variables with `. .services/env` (or run `make test`)", what)
}

// defaultPython is tried when KOMBU_TEST_PYTHON is unset. Debian's system Python is named by
// its full path because another python3 (pyenv, a venv) may come first on PATH.
var defaultPython = "/usr/bin/python3"

var pythonChecks sync.Map // path -> error (nil when it imports kombu)

// Python returns the path of a python3 that can `import kombu`: KOMBU_TEST_PYTHON when set,
// else /usr/bin/python3 when that one imports kombu. When none does, it fails the test in CI
// and skips it elsewhere, as [ServerURL] does. The check runs once per path per test binary.
//
// Run the interpreter with -I (isolated mode) or from a directory without a kombu/ folder: a
// kombu/ folder in the working directory (the repository root has one) would otherwise be
// imported as an empty namespace package instead of the real kombu.
func Python(t testing.TB) string {
	t.Helper()
	path, fromEnv := os.Getenv(PythonPath), true
	if path == "" {
		path, fromEnv = defaultPython, false
	}
	err := importsKombu(path)
	if err == nil {
		return path
	}
	if fromEnv {
		missing(t, PythonPath+"="+path+" cannot import kombu ("+err.Error()+")")
	} else {
		missing(t, PythonPath+" is not set and "+path+" cannot import kombu ("+err.Error()+")")
	}
	return ""
}

func importsKombu(path string) error {
	if v, ok := pythonChecks.Load(path); ok {
		if v == nil {
			return nil
		}
		return v.(error)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// kombu.Connection is looked up so that an empty namespace package does not pass.
	cmd := exec.CommandContext(ctx, path, "-I", "-c", "import kombu; kombu.Connection")
	cmd.Dir = os.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		if msg := lastLine(out); msg != "" {
			err = &checkError{err: err, msg: msg}
		}
		pythonChecks.Store(path, err)
		return err
	}
	pythonChecks.Store(path, nil)
	return nil
}

type checkError struct {
	err error
	msg string
}

func (e *checkError) Error() string { return e.err.Error() + ": " + e.msg }
func (e *checkError) Unwrap() error { return e.err }

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}
