package main

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/internal/testenv"
)

// inspectedBindings runs inspect --json on one queue and returns its
// bindings as "exchange|routing key" (nil when the JSON says null) and the
// report's bindings note.
func inspectedBindings(t *testing.T, url, queue string) (bindings []string, note string) {
	t.Helper()
	var rep struct {
		Queues []struct {
			Name     string `json:"name"`
			Bindings *[]struct {
				Exchange   string          `json:"exchange"`
				RoutingKey string          `json:"routing_key"`
				Arguments  json.RawMessage `json:"arguments"`
			} `json:"bindings"`
		} `json:"queues"`
		BindingsNote string `json:"bindings_note"`
	}
	r := runKombu(t, "", nil, "inspect", url, queue, "--json")
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil || len(rep.Queues) != 1 {
		t.Fatalf("inspect --json: %v: %q (stderr %q)", err, r.stdout, r.stderr)
	}
	if rep.Queues[0].Bindings == nil {
		return nil, rep.BindingsNote
	}
	bindings = []string{}
	for _, b := range *rep.Queues[0].Bindings {
		bindings = append(bindings, b.Exchange+"|"+b.RoutingKey)
	}
	slices.Sort(bindings)
	return bindings, rep.BindingsNote
}

// TestInspectListsBindings: bindings made by other runs of the binary
// (other processes) are listed by inspect, in the table and in --json, on
// every transport whose server keeps binding tables; an unbind removes
// them. (memory:// lives in one process; beanstalk and sqs keep bindings
// in the process that made them, as Python kombu.)
func TestInspectListsBindings(t *testing.T) {
	shared := map[string]bool{"redis": true, "postgres": true, "sqlite": true, "mongodb": true, "couchdb": true}
	for _, row := range everyTransport {
		if !shared[row.scheme] {
			continue
		}
		t.Run(row.scheme, func(t *testing.T) {
			url := row.urlFor(t)
			ex, other, q := uniqueName(t, "bx"), uniqueName(t, "bx2"), uniqueName(t, "bq")
			t.Cleanup(func() {
				runKombu(t, "", nil, "delete", url, "queue", q)
				runKombu(t, "", nil, "delete", url, "exchange", ex)
				runKombu(t, "", nil, "delete", url, "exchange", other)
			})
			mustKombu(t, "", "declare", url, "queue", q, "--bind", ex, "--type", "topic", "--routing-key", "user.*")
			// A redis queue exists for kombu while it holds a message.
			mustKombu(t, "", "publish", url, "--queue", q, `"keep"`)
			mustKombu(t, "", "bind", url, q, other, "--exchange-type", "direct", "--routing-key", "orders")
			want := []string{ex + "|user.*", other + "|orders"}
			slices.Sort(want)
			got, note := inspectedBindings(t, url, q)
			if !slices.Equal(got, want) || note != "" {
				t.Errorf("bindings %q (note %q), want %q", got, note, want)
			}
			table := mustKombu(t, "", "inspect", url, q).stdout
			if !regexp.MustCompile(regexp.QuoteMeta(q)+`\s+1\s+0\s+2\s`).MatchString(table) ||
				!regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(q)+`\s+`+regexp.QuoteMeta(ex)+`\s+user\.\*\s+-$`).MatchString(table) {
				t.Errorf("table does not show the queue's 2 bindings:\n%s", table)
			}
			mustKombu(t, "", "unbind", url, q, ex, "--exchange-type", "topic", "--routing-key", "user.*")
			if got, _ := inspectedBindings(t, url, q); !slices.Equal(got, []string{other + "|orders"}) {
				t.Errorf("after unbind: bindings %q, want only %s|orders", got, other)
			}
		})
	}
}

// TestInspectBindingsOnAMQP: AMQP 0-9-1 cannot list bindings; inspect
// says so instead of showing none.
func TestInspectBindingsOnAMQP(t *testing.T) {
	url := testenv.ServerURL(t, testenv.AMQPURL)
	ex, q := uniqueName(t, "bx"), uniqueName(t, "bq")
	t.Cleanup(func() {
		runKombu(t, "", nil, "delete", url, "queue", q)
		runKombu(t, "", nil, "delete", url, "exchange", ex)
	})
	mustKombu(t, "", "declare", url, "queue", q, "--bind", ex, "--type", "topic", "--routing-key", "user.*")
	got, note := inspectedBindings(t, url, q)
	if got != nil || !strings.Contains(note, "not available over AMQP") {
		t.Errorf("amqp: bindings %q, note %q; want null and a note", got, note)
	}
	table := mustKombu(t, "", "inspect", url, q).stdout
	if !regexp.MustCompile(regexp.QuoteMeta(q)+`\s+0\s+0\s+n/a\s`).MatchString(table) || !strings.Contains(table, "bindings   not available over AMQP") {
		t.Errorf("amqp table does not say bindings are n/a:\n%s", table)
	}
}
