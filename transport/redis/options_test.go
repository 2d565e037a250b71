package redis

import (
	"crypto/tls"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
)

func mustParse(t *testing.T, raw string) (*Options, error) {
	t.Helper()
	u, err := transport.ParseURL(raw)
	if err != nil {
		return nil, err
	}
	return ParseURL(u)
}

func TestParseURLDefaults(t *testing.T) {
	o, err := mustParse(t, "redis://")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addrs[0] != "127.0.0.1:6379" || o.DB != 0 || o.TLS != nil || o.Sentinel {
		t.Errorf("%+v", o)
	}
	if o.VisibilityTimeout != time.Hour || o.FanoutPrefix != "/0." || !o.FanoutPatterns || o.UnackedKey != "unacked" ||
		o.UnackedIndexKey != "unacked_index" || o.UnackedMutexKey != "unacked_mutex" || o.UnackedMutexExpire != 300*time.Second ||
		o.HealthCheckInterval != 25*time.Second || len(o.PrioritySteps) != 4 || o.PrioritySteps[3] != 9 {
		t.Errorf("defaults %+v", o)
	}
}

func TestParseURL(t *testing.T) {
	o, err := mustParse(t, "redis://:s3cret@example.com:6380/5?visibility_timeout=30&polling_interval=0.2&fanout_prefix=true"+
		"&fanout_patterns=false&global_keyprefix=app:&priority_steps=0,5&socket_timeout=2&socket_connect_timeout=1.5"+
		"&max_connections=7&health_check_interval=0&unacked_restore_limit=100&binding_cache_ttl=0")
	if err != nil {
		t.Fatal(err)
	}
	want := Options{
		Addrs: []string{"example.com:6380"}, Password: "s3cret", DB: 5, VisibilityTimeout: 30 * time.Second,
		PollingInterval: 200 * time.Millisecond, FanoutPrefix: "/5.", GlobalKeyPrefix: "app:", SocketTimeout: 2 * time.Second,
		ConnectTimeout: 1500 * time.Millisecond, MaxConnections: 7, UnackedRestoreLimit: 100,
	}
	if o.Addrs[0] != want.Addrs[0] || o.Password != want.Password || o.DB != 5 || o.VisibilityTimeout != want.VisibilityTimeout ||
		o.PollingInterval != want.PollingInterval || o.FanoutPrefix != want.FanoutPrefix || o.FanoutPatterns ||
		o.GlobalKeyPrefix != "app:" || len(o.PrioritySteps) != 2 || o.SocketTimeout != want.SocketTimeout ||
		o.ConnectTimeout != want.ConnectTimeout || o.MaxConnections != 7 || o.HealthCheckInterval != 0 ||
		o.UnackedRestoreLimit != 100 || o.BindingCacheTTL != 0 {
		t.Errorf("%+v", o)
	}
	o, err = mustParse(t, "redis://user:pw@[::1]/?db=2&fanout_prefix=/{db}.custom.")
	if err != nil {
		t.Fatal(err)
	}
	if o.Addrs[0] != "[::1]:6379" || o.Username != "user" || o.DB != 2 || o.FanoutPrefix != "/2.custom." {
		t.Errorf("%+v", o)
	}
	o, _ = mustParse(t, "redis://h?fanout_prefix=false")
	if o.FanoutPrefix != "" {
		t.Errorf("fanout_prefix=false gave %q", o.FanoutPrefix)
	}
}

func TestParseURLSentinel(t *testing.T) {
	o, err := mustParse(t, "sentinel://:pw@10.0.0.1/1?master_name=mymaster&sentinel_password=sp")
	if err != nil {
		t.Fatal(err)
	}
	if !o.Sentinel || o.MasterName != "mymaster" || o.Addrs[0] != "10.0.0.1:26379" || o.DB != 1 || o.Password != "pw" || o.SentinelPassword != "sp" {
		t.Errorf("%+v", o)
	}
}

func TestParseURLTLS(t *testing.T) {
	o, err := mustParse(t, "rediss://example.com")
	if err != nil {
		t.Fatal(err)
	}
	if o.TLS == nil || o.TLS.InsecureSkipVerify || o.TLS.MinVersion != tls.VersionTLS12 || o.TLS.VerifyConnection != nil {
		t.Errorf("rediss:// must verify by default: %+v", o.TLS)
	}
	for _, raw := range []string{"rediss://h?ssl_cert_reqs=none", "rediss://h?ssl_cert_reqs=CERT_NONE", "rediss://h?insecure=true"} {
		o, err := mustParse(t, raw)
		if err != nil || !o.TLS.InsecureSkipVerify {
			t.Errorf("%s: %v %+v", raw, err, o)
		}
	}
	o, _ = mustParse(t, "rediss://h?ssl_check_hostname=false")
	if !o.TLS.InsecureSkipVerify || o.TLS.VerifyConnection == nil {
		t.Error("ssl_check_hostname=false must still verify the chain")
	}
	o, _ = mustParse(t, "redis://h?ssl=true")
	if o.TLS == nil || o.TLS.InsecureSkipVerify {
		t.Error("ssl=true must turn on verified TLS")
	}
}

func TestParseURLErrors(t *testing.T) {
	for _, raw := range []string{
		"amqp://h",
		"redis://h/abc",
		"redis://h/-1",
		"redis://h/01",
		"redis://h/1?db=2",
		"redis://h?nope=1",
		"redis://h?visibility_timeout=abc",
		"redis://h?visibility_timeout=0.5",
		"redis://h?polling_interval=0",
		"redis://h?priority_steps=3,6",
		"redis://h?priority_steps=0,6,3",
		"redis://h?priority_steps=0,10",
		"redis://h?max_connections=0",
		"redis://h?unacked_key=",
		"redis://h?master_name=x",
		"sentinel://h",
		"redis://h?ssl_ca_certs=/x",
		"rediss://h?ssl=false",
		"rediss://h?ssl_cert_reqs=maybe",
		"rediss://h?ssl_ca_certs=/nonexistent/ca.pem",
		"rediss://h?ssl_certfile=/x",
		"redis://h?fanout_patterns=perhaps",
	} {
		u, err := transport.ParseURL(raw)
		if err == nil {
			_, err = ParseURL(u)
		}
		if err == nil || !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v, want an ErrInvalidURL", raw, err)
		}
	}
}

func TestParseURLErrorsHidePassword(t *testing.T) {
	for _, raw := range []string{
		"redis://:p%40ss%3Aw%2Frd%25@h/notanumber",
		"redis://user:p%40ss%3Aw%2Frd%25@h?bogus=1",
		"sentinel://:p%40ss%3Aw%2Frd%25@h",
		"redis://:p%40ss%3Aw%2Frd%25@h?ssl_ca_certs=/x",
		"rediss://:p%40ss%3Aw%2Frd%25@h?ssl_ca_certs=/nonexistent",
	} {
		_, err := mustParse(t, raw)
		if err == nil {
			t.Errorf("%s: no error", raw)
			continue
		}
		if strings.Contains(err.Error(), "p@ss") || strings.Contains(err.Error(), "w/rd") {
			t.Errorf("%s: error shows the password: %v", raw, err)
		}
	}
}

func TestPriorityStep(t *testing.T) {
	o, _ := mustParse(t, "redis://")
	k := newKeys(o)
	for p, want := range []int{0, 0, 0, 3, 3, 3, 6, 6, 6, 9, 9} {
		if got := k.step(uint8(p)); got != want {
			t.Errorf("step(%d) = %d, want %d", p, got, want)
		}
	}
	if k.list("q", 0) != "q" || k.list("q", 6) != "q\x06\x166" {
		t.Error("list names")
	}
	keys, owner := k.pollOrder([]string{"a", "b"})
	want := []string{"a", "b", "a\x06\x163", "b\x06\x163", "a\x06\x166", "b\x06\x166", "a\x06\x169", "b\x06\x169"}
	if strings.Join(keys, ",") != strings.Join(want, ",") || owner[1] != 1 || owner[2] != 0 {
		t.Errorf("pollOrder %q %v", keys, owner)
	}
	o, _ = mustParse(t, "redis://?priority_steps=0,1,2,3,4,5,6,7,8,9&global_keyprefix=p:")
	k = newKeys(o)
	if k.step(7) != 7 || k.list("q", 7) != "p:q\x06\x167" || k.binding("ex") != "p:_kombu.binding.ex" || k.unacked != "p:unacked" {
		t.Error("custom steps / prefix")
	}
}

func TestTopicMatchLikeKombu(t *testing.T) {
	for _, tc := range []struct {
		key, rk string
		ok      bool
	}{
		{"wirefmt.*.info", "wirefmt.a.info", true},
		{"wirefmt.*.info", "wirefmt.a.b.info", true}, // kombu's * may span dots
		{"wirefmt.*.info", "wirefmt..info", false},
		{"wirefmt.#", "wirefmt.x.y", true},
		{"wirefmt.#", "wirefmt", false}, // kombu needs the dot
		{"#", "", true},
		{"#", "anything.at.all", true},
		{"a-b.*.c_d", "a-b.x.c_d", true},
		{"a*", "aaa", true}, // a word read as a regex
		{"x y.é.#", "x y.é.z", true},
		{"a.b", "a.b", true},
		{"a.b", "aXb", false},
		{"*a", "ba", false}, // invalid regex in Python too
	} {
		if got := topicMatch(tc.key, tc.rk); got != tc.ok {
			t.Errorf("topicMatch(%q, %q) = %v", tc.key, tc.rk, got)
		}
	}
}
