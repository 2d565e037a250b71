package mongodb

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func parse(t *testing.T, raw string) (*Options, error) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return ParseURL(u)
}

func TestParseURLDefaultsFollowPythonKombu(t *testing.T) {
	o, err := parse(t, "mongodb://")
	if err != nil {
		t.Fatal(err)
	}
	if o.Database != "kombu_default" || o.URI != "mongodb://127.0.0.1" || o.MessagesCollection != "messages" ||
		o.RoutingCollection != "messages.routing" || o.BroadcastCollection != "messages.broadcast" ||
		o.QueuesCollection != "messages.queues" || o.CappedQueueSize != 100000 || !o.CalcQueueSize || o.TTL ||
		o.VisibilityTimeout != DefaultVisibilityTimeout || o.TLS != nil {
		t.Fatalf("defaults: %+v", o)
	}
}

func TestParseURLSplitsKombuAndDriverOptions(t *testing.T) {
	o, err := parse(t, "mongodb+srv://u:p%40ss@cluster.example/jobs?replicaSet=rs0&ttl=yes&capped_queue_size=8192"+
		"&calc_queue_size=false&visibility_timeout=2.5&polling_interval=50ms&messages_collection=m&maxPoolSize=5&connect_timeout=3")
	if err != nil {
		t.Fatal(err)
	}
	if o.Database != "jobs" || !o.TTL || o.CappedQueueSize != 8192 || o.CalcQueueSize ||
		o.VisibilityTimeout != 2500*time.Millisecond || o.PollingInterval != 50*time.Millisecond ||
		o.MessagesCollection != "m" || o.ConnectTimeout != 3*time.Second {
		t.Fatalf("kombu options: %+v", o)
	}
	if o.URI != "mongodb+srv://u:p%40ss@cluster.example/jobs?maxPoolSize=5&replicaSet=rs0" {
		t.Fatalf("driver URI %q", o.URI)
	}
	o, err = parse(t, "mongodb://h/?default_database=other")
	if err != nil || o.Database != "other" {
		t.Fatalf("default_database: %+v %v", o, err)
	}
}

func TestParseURLRejectsBadInput(t *testing.T) {
	for _, raw := range []string{
		"redis://h/",
		"mongodb://h/db?nosuchoption=1",
		"mongodb://h/db?visibility_timeout=0.5",
		"mongodb://h/db?polling_interval=0",
		"mongodb://h/db?capped_queue_size=10",
		"mongodb://h/db?ttl=maybe",
		"mongodb://h/db?messages_collection=",
		"mongodb://h/db?default_database=",
		"mongodb://h/bad.name",
		"mongodb://h/" + strings.Repeat("d", 64),
		"mongodb://h/db?maxPoolSize=lots",
		"mongodb+srv://h:27017/db",
		"mongodb://h/db?ssl_cert_reqs=sometimes",
	} {
		_, err := parse(t, raw)
		if !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", raw, err)
		}
	}
}

func TestParseURLErrorsHideThePassword(t *testing.T) {
	_, err := parse(t, "mongodb://user:hunter2@h/db?maxPoolSize=lots")
	if err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("error %v shows the password", err)
	}
}

func TestParseURLTLS(t *testing.T) {
	o, err := parse(t, "mongodb://db.example/x?ssl=true&ssl_check_hostname=false")
	if err != nil || o.TLS == nil || o.TLS.VerifyConnection == nil {
		t.Fatalf("ssl options: %+v %v", o, err)
	}
	o, err = parse(t, "mongodb://db.example/x?tls=true")
	if err != nil || o.TLS != nil || !strings.Contains(o.URI, "tls=true") {
		t.Fatalf("the driver's tls option passes through: %+v %v", o, err)
	}
}
