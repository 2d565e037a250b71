package couchdb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		raw              string
		server, db, user string
		visibility, poll time.Duration
		tls              bool
	}{
		{"couchdb://", "http://127.0.0.1:5984", DefaultDatabase, "", time.Hour, time.Second, false},
		{"couchdb://u:p@h:1234/db_1", "http://h:1234", "db_1", "u", time.Hour, time.Second, false},
		{"couchdbs://h/x", "https://h:5984", "x", "", time.Hour, time.Second, true},
		{"couchdb://h/x?ssl=true", "https://h:5984", "x", "", time.Hour, time.Second, true},
		{"couchdb://h/a%2Fb?visibility_timeout=30&polling_interval=0.25", "http://h:5984", "a/b", "", 30 * time.Second, 250 * time.Millisecond, false},
		{"couchdb://[::1]:5985/", "http://[::1]:5985", DefaultDatabase, "", time.Hour, time.Second, false},
	}
	for _, c := range cases {
		u, err := url.Parse(c.raw)
		if err != nil {
			t.Fatal(err)
		}
		o, err := ParseURL(u)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if o.Server != c.server || o.Database != c.db || o.Username != c.user || o.VisibilityTimeout != c.visibility ||
			o.PollingInterval != c.poll || (o.TLS != nil) != c.tls {
			t.Errorf("%s: got %+v", c.raw, o)
		}
	}
}

func TestParseURLRefuses(t *testing.T) {
	for _, raw := range []string{
		"http://h/db",
		"couchdb://h/Upper",
		"couchdb://h/1db",
		"couchdb://h/db?visibility_timeout=0.5",
		"couchdb://h/db?polling_interval=0",
		"couchdb://h/db?nope=1",
		"couchdbs://h/db?ssl=false",
		"couchdb://h:99999/db",
	} {
		u, err := url.Parse(raw)
		if err != nil {
			continue // refused earlier, as it should be
		}
		if _, err := ParseURL(u); !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", raw, err)
		}
	}
	u, _ := url.Parse("couchdb://user:hunter2@h/Bad")
	if _, err := ParseURL(u); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %v must exist and not show the password", err)
	}
}

// Names become ids safely: ':' and other bytes are escaped, so the queue of
// a message id reads back, whatever the name.
func TestMessageIDNamesItsQueue(t *testing.T) {
	ids := newIDClock()
	for _, q := range []string{"plain", "a:b", "üñî cödé", "100%", "x:y:z%3A", strings.Repeat("q", 200)} {
		id := ids.next(q, 5)
		got, ok := queueOfMessageID(id)
		if !ok || got != q {
			t.Errorf("queue of %q = %q, %v; want %q", id, got, ok, q)
		}
		if !strings.HasPrefix(id, messageIDPrefix(q)) {
			t.Errorf("id %q does not start with its queue prefix", id)
		}
	}
	a, b := ids.next("q", 0), ids.next("q", 0)
	if a >= b {
		t.Errorf("ids do not grow: %q then %q", a, b)
	}
	if high := ids.next("q", 9); high >= a {
		t.Errorf("a priority 9 id %q does not sort before the priority 0 ids %q", high, a)
	}
	if _, ok := queueOfMessageID("q:name"); ok {
		t.Error("a queue record id read as a message id")
	}
}
