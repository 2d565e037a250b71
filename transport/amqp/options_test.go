package amqp

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

func TestParseURLDefaults(t *testing.T) {
	for _, tc := range []struct {
		url   string
		host  string
		port  int
		vhost string
		tls   bool
	}{
		{"amqp://", "localhost", 5672, "/", false},
		{"amqp://h", "h", 5672, "/", false},
		{"amqp://h/", "h", 5672, "/", false},
		{"amqp://h//", "h", 5672, "/", false},
		{"amqp://h/%2F", "h", 5672, "/", false},
		{"amqp://h/app", "h", 5672, "app", false},
		{"amqp://h/a%2Fb", "h", 5672, "a/b", false},
		{"pyamqp://u:p@h:1234/v", "h", 1234, "v", false},
		{"amqps://h", "h", 5671, "/", true},
		{"amqp://h?ssl=true", "h", 5671, "/", true},
		{"amqp://[::1]:5673", "::1", 5673, "/", false},
	} {
		o, err := ParseURL(mustURL(t, tc.url))
		if err != nil {
			t.Fatalf("%s: %v", tc.url, err)
		}
		if o.Host != tc.host || o.Port != tc.port || o.VHost != tc.vhost || (o.TLS != nil) != tc.tls {
			t.Errorf("%s: got %s %d %q tls=%v", tc.url, o.Host, o.Port, o.VHost, o.TLS != nil)
		}
		if o.Heartbeat != 60*time.Second || o.ConnectTimeout != 5*time.Second || !o.ConfirmPublish ||
			o.ConfirmWindow != 100 || o.LoginMethod != "PLAIN" {
			t.Errorf("%s: defaults %+v", tc.url, o)
		}
		if o.TLS != nil && (o.TLS.InsecureSkipVerify || o.TLS.ServerName != tc.host || o.TLS.MinVersion < 0x0303) {
			t.Errorf("%s: TLS must verify the host name: %+v", tc.url, o.TLS)
		}
	}
	o, err := ParseURL(mustURL(t, "amqp://u:p@h/?heartbeat=5&connect_timeout=0.5&login_method=amqplain&channel_max=7&frame_max=8192&confirm_publish=0&confirm_timeout=2&confirm_window=10&locale=fr_FR"))
	if err != nil {
		t.Fatal(err)
	}
	if o.Heartbeat != 5*time.Second || o.ConnectTimeout != 500*time.Millisecond || o.LoginMethod != "AMQPLAIN" ||
		o.ChannelMax != 7 || o.FrameMax != 8192 || o.ConfirmPublish || o.ConfirmTimeout != 2*time.Second ||
		o.ConfirmWindow != 10 || o.Locale != "fr_FR" || o.Username != "u" || o.Password != "p" {
		t.Errorf("options %+v", o)
	}
	o, _ = ParseURL(mustURL(t, "amqps://h?insecure=true&ssl_server_hostname=other"))
	if !o.TLS.InsecureSkipVerify || o.TLS.ServerName != "other" {
		t.Errorf("tls %+v", o.TLS)
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, s := range []string{
		"amqp://u:s3cret@h/?bogus=1",
		"amqp://u:s3cret@h/?heartbeat=-1",
		"amqp://u:s3cret@h/?heartbeat=x",
		"amqp://u:s3cret@h/?heartbeat=70000",
		"amqp://u:s3cret@h/?login_method=CRAM",
		"amqp://u:s3cret@h/?frame_max=10",
		"amqp://u:s3cret@h/?channel_max=70000",
		"amqp://u:s3cret@h/?confirm_window=0",
		"amqp://u:s3cret@h/?ssl_ca_certs=/nonexistent",
		"amqp://u:s3cret@h/?ssl_certfile=/x",
		"amqp://u:s3cret@h/?login_method=EXTERNAL",
		"amqp://u:s3cret@h/?ssl_cert_reqs=MAYBE",
		"redis://u:s3cret@h/",
	} {
		u, err := transport.ParseURL(s)
		if err == nil {
			_, err = Transport.OpenConnector(u)
		}
		if !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: password in error %q", s, err)
		}
	}
}

func TestRegistered(t *testing.T) {
	for _, s := range []string{"amqp", "amqps", "pyamqp"} {
		tr, err := transport.Lookup(s)
		if err != nil {
			t.Fatal(err)
		}
		d := tr.(driver.Describer).Describe()
		if d.DefaultPort != 5672 || d.DefaultVHost != "/" || !d.Features.Confirms || !d.Features.ExchangeBinding {
			t.Errorf("describe %+v", d)
		}
	}
}

func TestTableConversion(t *testing.T) {
	tb, err := toTable(map[string]any{
		"i": 1, "i64": int64(math.MaxInt32) + 1, "neg": int64(math.MinInt32), "u8": uint8(200),
		"u64": uint64(1) << 40, "f32": float32(0.5), "strs": []string{"a"}, "m": map[string]int{"x": 1},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := amqp.Table{"i": int32(1), "i64": int64(math.MaxInt32) + 1, "neg": int32(math.MinInt32), "u8": int32(200),
		"u64": int64(1) << 40, "f32": float64(0.5), "strs": []any{"a"}, "m": amqp.Table{"x": int32(1)}}
	for k, v := range want {
		switch w := v.(type) {
		case []any:
			if g, _ := tb[k].([]any); len(g) != 1 || g[0] != w[0] {
				t.Errorf("%s = %#v", k, tb[k])
			}
		case amqp.Table:
			if g, _ := tb[k].(amqp.Table); g["x"] != w["x"] {
				t.Errorf("%s = %#v", k, tb[k])
			}
		default:
			if tb[k] != v {
				t.Errorf("%s = %#v (%T), want %#v", k, tb[k], tb[k], v)
			}
		}
	}
	if err := tb.Validate(); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []any{uint64(math.MaxUint64), struct{}{}, map[int]int{1: 1}, make(chan int)} {
		if _, err := toTable(map[string]any{"x": bad}); !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("%T: %v", bad, err)
		}
	}
}
