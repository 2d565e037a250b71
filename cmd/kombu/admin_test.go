package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/internal/testenv"
)

// TestDeclareBindUnbindDelete drives the entity commands on every server
// transport: a topic exchange, a queue bound to it, routing through it,
// unbinding, and deleting both.
func TestDeclareBindUnbindDelete(t *testing.T) {
	for _, env := range []string{testenv.RedisURL, testenv.AMQPURL} {
		t.Run(env, func(t *testing.T) {
			url := testenv.ServerURL(t, env)
			ex, q := uniqueName(t, "ex"), uniqueName(t, "bound")
			t.Cleanup(func() {
				runKombu(t, "", nil, "delete", url, "queue", q)
				runKombu(t, "", nil, "delete", url, "exchange", ex)
			})
			mustKombu(t, "", "declare", url, "exchange", ex, "--type", "topic")
			// --type declares the exchange in this connection too: redis
			// knows an exchange per connection, as Python kombu.
			r := mustKombu(t, "", "declare", url, "queue", q, "--bind", ex, "--type", "topic", "--routing-key", "user.*")
			if !strings.Contains(r.stdout, "declared queue "+q) {
				t.Errorf("declare queue said %q", r.stdout)
			}
			mustKombu(t, "", "publish", url, "--exchange", ex, "--exchange-type", "topic", "--routing-key", "user.created", "--mandatory", `"routed"`)
			if r := runKombu(t, "", nil, "publish", url, "--exchange", ex, "--exchange-type", "topic", "--routing-key", "order.created", "--mandatory", `"lost"`); r.code != exitFailure || !strings.Contains(r.stderr, "unroutable") {
				t.Errorf("mandatory publish matching no binding: exit %d, stderr %q", r.code, r.stderr)
			}
			mustKombu(t, "", "bind", url, q, ex, "--exchange-type", "topic", "--routing-key", "order.#")
			mustKombu(t, "", "publish", url, "--exchange", ex, "--exchange-type", "topic", "--routing-key", "order.created", "--mandatory", `"second"`)
			r = mustKombu(t, "", "consume", url, q, "--ack", "--count", "2", "--timeout", "10s")
			if !strings.Contains(r.stdout, `"payload":"routed"`) || !strings.Contains(r.stdout, `"payload":"second"`) {
				t.Errorf("consume of the bound queue: %q", r.stdout)
			}
			mustKombu(t, "", "unbind", url, q, ex, "--exchange-type", "topic", "--routing-key", "order.#")
			mustKombu(t, "", "unbind", url, q, ex, "--exchange-type", "topic", "--routing-key", "user.*")
			if r := runKombu(t, "", nil, "publish", url, "--exchange", ex, "--exchange-type", "topic", "--routing-key", "user.x", "--mandatory", `"after unbind"`); r.code != exitFailure {
				t.Errorf("publish after unbind: exit %d, stderr %q", r.code, r.stderr)
			}
			mustKombu(t, "", "declare", url, "queue", q) // a redis queue with no message and no binding is gone
			mustKombu(t, "", "publish", url, "--queue", q, `"keep"`)
			if r := runKombu(t, "", nil, "delete", url, "queue", q, "--if-empty"); r.code == 0 {
				t.Errorf("delete --if-empty of a queue holding a message succeeded: %q", r.stdout)
			}
			r = mustKombu(t, "", "delete", url, "queue", q)
			if !strings.Contains(r.stdout, "(1 messages)") {
				t.Errorf("delete said %q", r.stdout)
			}
			mustKombu(t, "", "delete", url, "exchange", ex)
		})
	}
}

func TestExchangeToExchangeBinding(t *testing.T) {
	url := testenv.ServerURL(t, testenv.AMQPURL)
	src, dst, q := uniqueName(t, "e2e-src"), uniqueName(t, "e2e-dst"), uniqueName(t, "e2e-q")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", url, "queue", q)
		runKombu(t, "", nil, "delete", url, "exchange", src)
		runKombu(t, "", nil, "delete", url, "exchange", dst)
	})
	mustKombu(t, "", "declare", url, "exchange", src, "--type", "fanout")
	mustKombu(t, "", "declare", url, "exchange", dst, "--type", "fanout")
	mustKombu(t, "", "declare", url, "queue", q, "--bind", dst)
	mustKombu(t, "", "bind", url, dst, src, "--exchange-to-exchange")
	mustKombu(t, "", "publish", url, "--exchange", src, "--mandatory", `"through two exchanges"`)
	if r := mustKombu(t, "", "get", url, q, "--ack"); !strings.Contains(r.stdout, "through two exchanges") {
		t.Errorf("get: %q", r.stdout)
	}
	if r := runKombu(t, "", nil, "bind", testenv.ServerURL(t, testenv.RedisURL), "a", "b", "--exchange-to-exchange"); r.code != exitFailure || !strings.Contains(r.stderr, "not supported") {
		t.Errorf("exchange-to-exchange on redis: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestPublishOptions: serializers, compression, properties, typed headers,
// --count and --rate, as a consumer sees them.
func TestPublishOptions(t *testing.T) {
	url := testenv.ServerURL(t, testenv.RedisURL)
	q := uniqueName(t, "opts")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q) })
	mustKombu(t, "", "publish", url, "--queue", q, "-s", "yaml", "a: [1, two]")
	mustKombu(t, "", "publish", url, "--queue", q, "-s", "msgpack", "-z", "bzip2", `{"m": 1.5}`)
	mustKombu(t, "", "publish", url, "--queue", q, "--content-type", "application/x-custom", "--content-encoding", "binary", "opaque")
	mustKombu(t, "", "publish", url, "--queue", q, "-s", "text", "--headers-json", `{"b":{"$bytes":"AQI="},"f":2.0}`,
		"--correlation-id", "c", "--reply-to", "r", "--type", "ty", "--app-id", "ap", "--expiration", "90s",
		"--delivery-mode", "1", "plain")
	r := mustKombu(t, "", "consume", url, q, "--ack", "--count", "4", "--timeout", "10s")
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 4 {
		t.Fatalf("%d lines: %q", len(lines), r.stdout)
	}
	recs := make([]record, 4)
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &recs[i]); err != nil {
			t.Fatal(err)
		}
	}
	if recs[0].ContentType != "application/x-yaml" || string(recs[0].Payload) != `{"a":[1,"two"]}` {
		t.Errorf("yaml: %s", lines[0])
	}
	if recs[1].ContentType != "application/x-msgpack" || string(recs[1].Payload) != `{"m":1.5}` ||
		!strings.Contains(string(recs[1].Headers), `"compression":"application/x-bz2"`) {
		t.Errorf("msgpack+bzip2: %s", lines[1])
	}
	if recs[2].ContentType != "application/x-custom" || recs[2].Body == nil || *recs[2].Body != "opaque" {
		t.Errorf("custom content type: %s", lines[2])
	}
	p := recs[3].Properties
	if p.CorrelationID != "c" || p.ReplyTo != "r" || p.Type != "ty" || p.AppID != "ap" || p.Expiration != "90000" ||
		p.DeliveryMode != 1 || string(recs[3].Payload) != `"plain"` {
		t.Errorf("properties: %s", lines[3])
	}
	// Header values normalised by the producer, as every kombu-go publish.
	if string(recs[3].Headers) != `{"b":"\u0001\u0002","f":2.0}` {
		t.Errorf("headers: %s", recs[3].Headers)
	}

	start := time.Now()
	r = mustKombu(t, "", "publish", url, "--queue", q, "--count", "20", "--rate", "50", `"paced"`)
	if el := time.Since(start); el < 350*time.Millisecond {
		t.Errorf("20 messages at 50/s took %v", el)
	}
	if !strings.Contains(r.stderr, "published 20 messages") {
		t.Errorf("publish --count said %q", r.stderr)
	}
	mustKombu(t, "", "publish", url, "--queue", q, "--count", "1000", `"batch"`)
	out := mustKombu(t, "", "inspect", url, q, "--json").stdout
	if !strings.Contains(out, `"messages": 1020`) {
		t.Errorf("inspect after 1020 publishes: %s", out)
	}
}

// TestInspectMasksThePassword: a working URL with a password is shown
// with "**" in both the table and the JSON.
func TestInspectMasksThePassword(t *testing.T) {
	url := testenv.ServerURL(t, testenv.AMQPURL) // amqp://guest:guest@...
	if !strings.Contains(url, ":guest@") {
		t.Skipf("the test server's URL has no password: %s", url)
	}
	q := uniqueName(t, "inspect")
	t.Cleanup(func() { runKombu(t, "", nil, "delete", url, "queue", q) })
	mustKombu(t, "", "declare", url, "queue", q)
	mustKombu(t, "", "publish", url, "--queue", q, "1")
	for _, args := range [][]string{{"inspect", url, q}, {"inspect", url, q, "--json"}} {
		out := mustKombu(t, "", args...).stdout
		if strings.Contains(out, ":guest@") || !strings.Contains(out, "guest:**@") {
			t.Errorf("%v: %q", args[2:], out)
		}
		if !strings.Contains(out, q) || !(strings.Contains(out, `"messages": 1,`) || regexp.MustCompile(q+`\s+1\s+0\s`).MatchString(out)) {
			t.Errorf("%v does not show the queue's one message: %q", args[2:], out)
		}
	}
}

// TestRefusedCredentialsExit1: a broker that answers but refuses the login
// is a failure (1), not an unreachable broker (3) worth retrying, and the
// wrong password is not printed.
func TestRefusedCredentialsExit1(t *testing.T) {
	url := testenv.ServerURL(t, testenv.AMQPURL)
	if !strings.Contains(url, ":guest@") {
		t.Skipf("the test server's URL has no password: %s", url)
	}
	r := runKombu(t, "", nil, "check", strings.Replace(url, ":guest@", ":Wr0ng-pw@", 1))
	if r.code != exitFailure || !strings.Contains(r.stderr, "access refused") || strings.Contains(r.stderr, "Wr0ng-pw") {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
}
