package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

// portableDump holds messages every persistent transport must carry
// byte-exact: bodies that are not UTF-8, empty or large, every property,
// and header values of every type JSON lines distinguish.
var portableDump = []string{
	`{"queue":"Q","exchange":"","routing_key":"Q","content_type":"application/data","content_encoding":"binary","properties":{"delivery_mode":2,"correlation_id":"c-1","reply_to":"replies","message_id":"m-1","type":"t","user_id":"guest","app_id":"app"},"headers":{"big":9007199254740993,"f":0.1,"list":[1,"two",3.5,null,true],"neg":-5,"nested":{"a":{"b":[{"c":1}]}},"none":null,"text":"héllo ☃","whole":3.0,"yes":true},"body_base64":"AAEC//79a29tYnU="}`,
	`{"queue":"Q","exchange":"","routing_key":"Q","content_type":"text/plain","content_encoding":"utf-8","properties":{"delivery_mode":1},"body":""}`,
	`{"queue":"Q","exchange":"","routing_key":"Q","content_type":"application/json","content_encoding":"utf-8","properties":{"delivery_mode":2},"headers":{"$top":"a header named $top","escaped":{"$table":{"$bytes":"not bytes"}}},"body":"{\"a\": [1, 2.0, \"x\"]}"}`,
	`{"queue":"Q","exchange":"","routing_key":"Q","properties":{"delivery_mode":2},"body":"no content type"}`,
}

// amqpDump adds the header types only AMQP tables carry: bytes, times and
// decimals, and a timestamp (whole seconds, as AMQP keeps it).
var amqpDump = []string{
	`{"queue":"Q","exchange":"","routing_key":"Q","content_type":"application/data","content_encoding":"binary","properties":{"delivery_mode":2,"expiration":"600000","timestamp":"2026-01-02T03:04:05Z"},"headers":{"b":{"$bytes":"AP8="},"d":{"$decimal":{"scale":2,"value":12345}},"t":{"$time":"2026-01-02T03:04:05Z"}},"body_base64":"//8="}`,
}

// bigBody is a 1 MiB text body, or the largest the scheme's transport
// takes (Features.MaxBodySize: SQS's limit) when that is less.
func bigBody(t *testing.T, scheme string) string {
	t.Helper()
	size := 1 << 20
	tr, err := transport.Lookup(scheme)
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := tr.(driver.Describer); ok {
		if m := d.Describe().Features.MaxBodySize; m > 0 && int(m) < size {
			size = int(m)
		}
	}
	b, _ := json.Marshal(strings.Repeat("0123456789abcdef", size/16))
	return `{"queue":"Q","exchange":"","routing_key":"Q","content_type":"text/plain","content_encoding":"utf-8","properties":{"delivery_mode":2},"body":` + string(b) + `}`
}

// canonical rewrites a dump line for comparison: where it was taken from
// (queue, redelivered) aside, it must be identical.
func canonical(t *testing.T, line string) string {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatalf("%v: %.200s", err, line)
	}
	m, err := r.message()
	if err != nil {
		t.Fatal(err)
	}
	back, err := messageRecord(&m)
	if err != nil {
		t.Fatal(err)
	}
	back.Exchange, back.RoutingKey = r.Exchange, r.RoutingKey
	out, _ := json.Marshal(back)
	return string(out)
}

func TestDumpLoadByteExact(t *testing.T) {
	for _, row := range everyTransport {
		if row.scheme == "memory" {
			continue // its queues die with each process; `check` covers it in one
		}
		t.Run(row.scheme, func(t *testing.T) {
			url := row.urlFor(t)
			src, dst := uniqueName(t, "dump-src"), uniqueName(t, "dump-dst")
			t.Cleanup(func() {
				runKombu(t, "", nil, "delete", url, "queue", src)
				runKombu(t, "", nil, "delete", url, "queue", dst)
			})
			lines := append(append([]string{}, portableDump...), bigBody(t, row.scheme))
			if row.scheme == "amqp" {
				lines = append(lines, amqpDump...)
			}
			dir := t.TempDir()
			in := filepath.Join(dir, "in.jsonl")
			var b bytes.Buffer
			for _, l := range lines {
				b.WriteString(strings.ReplaceAll(l, `"Q"`, `"`+src+`"`) + "\n")
			}
			if err := os.WriteFile(in, b.Bytes(), 0o600); err != nil {
				t.Fatal(err)
			}
			// Load into src (the queue each line names), dump it keeping
			// the messages, move them to dst by dump --remove + load
			// --queue, and dump dst: every dump equals the input.
			mustKombu(t, "", "load", in, url)
			kept := filepath.Join(dir, "kept.jsonl")
			mustKombu(t, "", "dump", url, src, kept, "--timeout", "500ms")
			removed := filepath.Join(dir, "removed.jsonl")
			mustKombu(t, "", "dump", url, src, removed, "--remove", "--timeout", "500ms")
			mustKombu(t, "", "load", removed, url, "--queue", dst)
			final := mustKombu(t, "", "dump", url, dst, "-", "--remove", "--timeout", "500ms").stdout
			if r := runKombu(t, "", nil, "get", url, src); r.code != exitEmpty && r.code != exitNotFound {
				t.Errorf("dump --remove left messages in %s: exit %d", src, r.code)
			}
			// The first dump saw messages no one had touched: it must
			// repeat the input to the byte.
			if got := strings.ReplaceAll(readFile(t, kept), `"`+src+`"`, `"Q"`); got != strings.Join(lines, "\n")+"\n" {
				t.Errorf("dump differs from the loaded file:\n got %.2000s\nwant %.2000s", got, strings.Join(lines, "\n"))
			}
			// Later dumps see messages the first handed back, marked as
			// such (withoutRedelivered), and in an order that depends on the
			// transport (an SQS standard queue keeps none): each message
			// must come back unchanged, in any order.
			var want []string
			for _, l := range lines {
				want = append(want, canonical(t, strings.ReplaceAll(l, `"Q"`, `""`)))
			}
			slices.Sort(want)
			for name, got := range map[string]string{"dump --remove": readFile(t, removed), "reloaded dump": final} {
				gotLines := strings.Split(strings.TrimRight(got, "\n"), "\n")
				var have []string
				for _, l := range gotLines {
					have = append(have, withoutRedelivered(t, strings.ReplaceAll(strings.ReplaceAll(l, `"`+src+`"`, `""`), `"`+dst+`"`, `""`)))
				}
				slices.Sort(have)
				if len(have) != len(want) {
					t.Errorf("%s: %d lines, want %d", name, len(have), len(want))
					continue
				}
				for i := range want {
					if have[i] != want[i] {
						t.Errorf("%s: message changed:\n got %.600s\nwant %.600s", name, have[i], want[i])
					}
				}
			}
		})
	}
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// withoutRedelivered drops the header redelivered=true that redis (as
// Python kombu) adds to a message its consumer hands back, as the dump
// that keeps the queue does.
func withoutRedelivered(t *testing.T, line string) string {
	t.Helper()
	var r record
	if err := json.Unmarshal([]byte(line), &r); err != nil {
		t.Fatal(err)
	}
	m, err := r.message()
	if err != nil {
		t.Fatal(err)
	}
	// Marks of a hand-back: redis's header, and the delivery count that
	// brokers counting deliveries (sqs, beanstalk) add.
	if m.Headers["redelivered"] == true {
		delete(m.Headers, "redelivered")
	}
	delete(m.Headers, "x-delivery-count")
	if len(m.Headers) == 0 {
		m.Headers = nil
	}
	back, err := messageRecord(&m)
	if err != nil {
		t.Fatal(err)
	}
	back.Exchange, back.RoutingKey = r.Exchange, r.RoutingKey
	out, _ := json.Marshal(back)
	return string(out)
}
