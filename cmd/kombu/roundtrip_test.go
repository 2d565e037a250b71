package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/internal/testenv"
	"github.com/kombu-go/kombu/transport"
)

// transportRow is one transport the binary should speak, with where its
// test server's URL comes from.
type transportRow struct {
	scheme string
	env    string                    // variable holding the test URL; "" for serverless ones
	url    func(t *testing.T) string // for serverless transports
}

// everyTransport lists the transports of `make test`. A row whose scheme
// this binary does not register (transports.go lacks its import) fails; one
// whose server variable is missing goes through testenv (a failure in CI).
var everyTransport = []transportRow{
	{scheme: "memory", url: func(*testing.T) string { return "memory://" }},
	{scheme: "redis", env: testenv.RedisURL},
	{scheme: "amqp", env: testenv.AMQPURL},
	{scheme: "sqs", env: "KOMBU_TEST_SQS_URL"},
	{scheme: "mongodb", env: "KOMBU_TEST_MONGODB_URL"},
	{scheme: "postgres", env: "KOMBU_TEST_POSTGRES_URL"},
	{scheme: "beanstalk", env: "KOMBU_TEST_BEANSTALK_URL"},
	{scheme: "couchdb", env: "KOMBU_TEST_COUCHDB_URL"},
	// Four slashes: an absolute path, as in SQLAlchemy's sqlite URLs.
	{scheme: "sqlite", url: func(t *testing.T) string { return "sqlite:///" + filepath.Join(t.TempDir(), "kombu.db") }},
}

// urlFor returns the row's URL, or skips or fails the test as the rows'
// comment says.
func (r transportRow) urlFor(t *testing.T) string {
	t.Helper()
	if !registered(r.scheme) {
		t.Fatalf("scheme %s:// is not registered in cmd/kombu: add its transport's import to cmd/kombu/transports.go", r.scheme)
	}
	if r.env == "" {
		return r.url(t)
	}
	return testenv.ServerURL(t, r.env)
}

// registered reports whether the binary speaks scheme: the test is built
// from the same package, transports.go included.
func registered(scheme string) bool {
	for _, s := range transport.Schemes() {
		if s == scheme {
			return true
		}
	}
	return false
}

func TestPublishConsumeRoundTripEveryTransport(t *testing.T) {
	body := []byte("round trip \x00\xff\xfe binary")
	bodyFile := filepath.Join(t.TempDir(), "body.bin")
	if err := os.WriteFile(bodyFile, body, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, row := range everyTransport {
		t.Run(row.scheme, func(t *testing.T) {
			url := row.urlFor(t)
			// In one process: the only round trip memory:// can do.
			r := mustKombu(t, "", "check", url)
			if !strings.Contains(r.stdout, "byte-exact") {
				t.Fatalf("check: %q", r.stdout)
			}
			var info struct {
				Transport string         `json:"transport"`
				Features  map[string]any `json:"features"`
			}
			r = mustKombu(t, "", "inspect", url, "--json")
			if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
				t.Fatalf("inspect --json: %v: %q", err, r.stdout)
			}
			if info.Features["persistent"] != true {
				// Queues of a non-persistent transport die with the
				// process: a second process finds the queue gone.
				if r := runKombu(t, "", nil, "get", url, "kombu-check-nothing"); r.code != exitNotFound {
					t.Fatalf("%s is not persistent, yet a new process found a queue: exit %d", row.scheme, r.code)
				}
				return
			}
			// Across processes: publish, then consume in another run.
			q := uniqueName(t, "rt-"+row.scheme)
			t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q) })
			mustKombu(t, "", "publish", url, "--queue", q, "--file", bodyFile, "--serializer", "raw",
				"-H", "trace=abc", "-H", "n=7", "-H", "ratio=0.5", "--message-id", "m-1", "--priority", "3")
			mustKombu(t, `{"json": ["body", 2]}`, "publish", url, "--queue", q, "-")
			r = mustKombu(t, "", "consume", url, q, "--ack", "--count", "2", "--timeout", "10s")
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			if len(lines) != 2 {
				t.Fatalf("consume printed %d lines: %q", len(lines), r.stdout)
			}
			// Priorities may reorder them (redis serves 0 before 3).
			var first, second record
			if strings.Contains(lines[0], `"application/json"`) {
				lines[0], lines[1] = lines[1], lines[0]
			}
			if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
				t.Fatal(err)
			}
			if first.BodyBase64 == nil || *first.BodyBase64 != base64.StdEncoding.EncodeToString(body) {
				t.Errorf("binary body changed: %s", lines[0])
			}
			if string(first.Headers) != `{"n":7,"ratio":0.5,"trace":"abc"}` || first.Properties.MessageID != "m-1" ||
				first.ContentType != "application/data" || first.Properties.Priority != 3 {
				t.Errorf("headers or properties changed: %s", lines[0])
			}
			if second.Body == nil || *second.Body != `{"json": ["body", 2]}` || string(second.Payload) != `{"json":["body",2]}` {
				t.Errorf("JSON message: %s", lines[1])
			}
			// --ack removed them.
			if r := runKombu(t, "", nil, "get", url, q); r.code != exitEmpty && r.code != exitNotFound {
				t.Errorf("after consume --ack, get: exit %d, stdout %q", r.code, r.stdout)
			}
		})
	}
}
