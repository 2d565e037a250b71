package transport

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Distinctive passwords. No error text and no Redact output may contain
// any of them, in decoded or encoded form.
var secrets = []string{
	"s3cr3t-PW",
	"p@ss:w/rd%",
	"p%40ss%3Aw%2Frd%25",
	"s3cr3t+KEY/",
	"s3cr3t%2BKEY%2F",
}

// want describes a successfully parsed URL; zero fields are not checked
// except where noted.
type want struct {
	scheme   string
	host     string // u.Host, checked always
	hostname string
	port     int // Port(u, 0), checked always
	user     *string
	password *string // nil: no password set
	vhost    string  // VirtualHost(u), checked always
}

func str(s string) *string { return &s }

type urlCase struct {
	name  string
	in    string
	err   string // substring of the error text; "" means the input is valid
	urls  []want // for valid input, one per failover element
	extra []string
}

var big = "amqp://u:s3cr3t-PW@h/" + strings.Repeat("a", 1<<20)

func manyOptions(n int) string {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "k%d=%d&", i, i)
	}
	return b.String()
}

func exactly64K() string {
	const head = "amqp://h/"
	return head + strings.Repeat("v", MaxURLLength-len(head))
}

var urlCases = []urlCase{
	// Missing or malformed scheme.
	{name: "empty", in: "", err: "empty URL"},
	{name: "spaces only", in: "   ", err: "empty URL"},
	{name: "host:port without scheme", in: "localhost:5672", err: "missing or invalid scheme"},
	{name: "scheme-relative", in: "//host:5672", err: "missing or invalid scheme"},
	{name: "credentials without scheme", in: "guest:s3cr3t-PW@localhost", err: "missing or invalid scheme"},
	{name: "scheme without colon", in: "amqp//host", err: "missing or invalid scheme"},
	{name: "scheme starting with digit", in: "1amqp://host", err: "missing or invalid scheme"},
	{name: "underscore in scheme", in: "am_qp://host", err: "missing or invalid scheme"},
	{name: "single slash", in: "amqp:/vhost", err: "missing or invalid scheme"},
	{name: "scheme is lowercased", in: "AMQP://Host:5672", urls: []want{{scheme: "amqp", host: "Host:5672", port: 5672}}},
	{name: "memory with empty host", in: "memory://", urls: []want{{scheme: "memory"}}},

	// Ports.
	{name: "port 0", in: "amqp://host:0", err: "port 0 out of range"},
	{name: "port 99999", in: "amqp://host:99999", err: "port 99999 out of range"},
	{name: "port 65536", in: "amqp://host:65536/", err: "out of range"},
	{name: "port 65535", in: "amqp://host:65535/", urls: []want{{host: "host:65535", port: 65535}}},
	{name: "port abc", in: "amqp://host:abc", err: "port is not a decimal number"},
	{name: "port -1", in: "amqp://host:-1", err: "port is not a decimal number"},
	{name: "port +5", in: "amqp://host:+5", err: "port is not a decimal number"},
	{name: "empty port", in: "amqp://host:/", err: "empty port"},
	{name: "leading zeros", in: "amqp://host:0005672", urls: []want{{host: "host:0005672", port: 5672}}},
	{name: "huge port", in: "amqp://host:123456789012345678901234567890", err: "out of range"},
	{name: "port 0 with password", in: "amqp://u:s3cr3t-PW@host:0/", err: "out of range"},
	{name: "forgotten @ after password", in: "redis://:s3cr3t-PW", err: "end the user info with '@'"},

	// IPv6 and hosts.
	{name: "missing ]", in: "amqp://[::1", err: "missing ']'"},
	{name: "missing ] with port", in: "amqp://u:s3cr3t-PW@[::1:5672/", err: "missing ']'"},
	{name: "stray ]", in: "amqp://::1]/", err: "'[' or ']' in host"},
	{name: "text after ]", in: "amqp://[::1]x/", err: "unexpected text after ']'"},
	{name: "bad address in brackets", in: "amqp://[zz::1]/", err: "invalid IPv6"},
	{name: "IPv4 in brackets", in: "amqp://[1.2.3.4]/", err: "invalid IPv6"},
	{name: "unbracketed IPv6", in: "amqp://::1/", err: "':' in host"},
	{name: "colon in host", in: "amqp://a:b:5672/", err: "':' in host"},
	{name: "raw % in zone", in: "amqp://[fe80::1%eth0]/", err: "malformed %-escape"},
	{name: "IPv6 with port", in: "amqp://[::1]:5672/", urls: []want{{host: "[::1]:5672", hostname: "::1", port: 5672}}},
	{name: "IPv6 with zone", in: "amqp://[fe80::1%25eth0]:5672/", urls: []want{{hostname: "fe80::1%eth0", host: "[fe80::1%eth0]:5672", port: 5672}}},
	{name: "IPv6 port 0", in: "amqp://[::1]:0/", err: "out of range"},
	{name: "space in host", in: "amqp://ho st/", err: `invalid character ' ' in host`},
	{name: "quote in host", in: "amqp://u:s3cr3t-PW@ho\"st/", err: `invalid character '"' in host`},
	{name: "ASCII escape in host", in: "amqp://h%41st/", err: "malformed URL"},
	{name: "encoded unicode host", in: "amqp://h%C3%A9llo/", urls: []want{{host: "héllo"}}},
	{name: "unicode host", in: "amqp://héllo.example:5672/", urls: []want{{host: "héllo.example:5672", hostname: "héllo.example", port: 5672}}},
	{name: "unicode host, encoded unicode user", in: "amqp://%E7%94%A8%E6%88%B7:s3cr3t-PW@例子.测试/", urls: []want{{host: "例子.测试", user: str("用户"), password: str("s3cr3t-PW")}}},
	{name: "raw unicode password", in: "amqp://u:s3cr3t-PW-ü@host/", err: "must be %-encoded"},
	{name: "empty host with port", in: "amqp://:5672/", urls: []want{{host: ":5672", port: 5672}}},

	// User info.
	{name: "encoded @:/% in password", in: "amqp://user:p%40ss%3Aw%2Frd%25@host/", urls: []want{{host: "host", user: str("user"), password: str("p@ss:w/rd%")}}},
	{name: "raw @:/% in password", in: "amqp://user:p@ss:w/rd%@host/", err: "malformed %-escape"},
	{name: "raw @:/ in password", in: "amqp://user:p@ss:w/rd@host/", err: "'@' after the host"},
	{name: "raw / in password", in: "amqp://user:s3cr3t/PW@host/", err: "'@' after the host", extra: []string{"s3cr3t/PW", "PW@"}},
	{name: "digits then / in password", in: "amqp://user:12/s3cr3t-PW@host", err: "'@' after the host"},
	{name: "raw ? in password", in: "amqp://user:s3cr3t?-PW@host", err: "'@' after the host", extra: []string{"s3cr3t?-PW"}},
	{name: "raw # in password", in: "amqp://user:s3cr3t#-PW@host", err: "'@' after the host", extra: []string{"s3cr3t#-PW"}},
	{name: "raw @ in password", in: "amqp://user:s3cr3t@-PW@host", urls: []want{{host: "host", user: str("user"), password: str("s3cr3t@-PW")}}, extra: []string{"s3cr3t@-PW"}},
	{name: "raw ; in password", in: "amqp://user:s3cr3t;-PW@host", err: "written %3B", extra: []string{"s3cr3t", "-PW"}},
	{name: "bad escape in password", in: "amqp://user:s3cr3t-PW%zz@host", err: "malformed %-escape"},
	{name: "password after @ in path", in: "amqp://u:s3cr3t-PW@h?x=1@y", err: "'@' after the host"},
	{name: "user only", in: "amqp://guest@host", urls: []want{{host: "host", user: str("guest")}}},
	{name: "password only", in: "amqp://:s3cr3t-PW@host", urls: []want{{host: "host", user: str(""), password: str("s3cr3t-PW")}}},
	{name: "empty password", in: "amqp://guest:@host", urls: []want{{host: "host", user: str("guest"), password: str("")}}},
	{name: "password only no host", in: "redis://:s3cr3t-PW@", urls: []want{{scheme: "redis", user: str(""), password: str("s3cr3t-PW")}}},
	{name: "sqs secret key", in: "sqs://AKIDEXAMPLE:s3cr3t%2BKEY%2F@", urls: []want{{scheme: "sqs", user: str("AKIDEXAMPLE"), password: str("s3cr3t+KEY/")}}},
	{name: "fragment", in: "amqp://u:s3cr3t-PW@host#frag", err: "fragment"},
	{name: "empty fragment", in: "amqp://host/vhost#", err: "fragment"},

	// Virtual hosts.
	{name: "no path", in: "amqp://h", urls: []want{{host: "h", vhost: ""}}},
	{name: "slash", in: "amqp://h/", urls: []want{{host: "h", vhost: ""}}},
	{name: "double slash", in: "amqp://h//", urls: []want{{host: "h", vhost: "/"}}},
	{name: "%2f", in: "amqp://h/%2f", urls: []want{{host: "h", vhost: "/"}}},
	{name: "%2F", in: "amqp://h:5672/%2F", urls: []want{{host: "h:5672", port: 5672, vhost: "/"}}},
	{name: "named vhost", in: "amqp://h/foo", urls: []want{{host: "h", vhost: "foo"}}},
	{name: "encoded slash in vhost", in: "amqp://h/a%2Fb", urls: []want{{host: "h", vhost: "a/b"}}},
	{name: "redis db", in: "redis://h:6379/3", urls: []want{{host: "h:6379", port: 6379, vhost: "3"}}},

	// Query.
	{name: "duplicate key", in: "amqp://h/?a=1&a=2", err: `option "a": given more than once`},
	{name: "duplicate secret key", in: "amqp://u:s3cr3t-PW@h/?password=s3cr3t-PW&password=x", err: "given more than once"},
	{name: "duplicate after decoding", in: "amqp://h/?a%62=1&ab=2", err: "given more than once"},
	{name: "empty key", in: "amqp://h/?=1", err: "empty option name"},
	{name: "bad escape in query", in: "amqp://h/?a=%zz", err: "malformed %-escape"},
	{name: "query options", in: "amqp://h/?heartbeat=30&ssl=1&&", urls: []want{{host: "h"}}},

	{name: "too many options", in: "amqp://u:s3cr3t-PW@h/?" + manyOptions(257), err: `option "k256": more than 256 options`},
	{name: "256 options", in: "amqp://h/?" + manyOptions(256), urls: []want{{host: "h"}}},

	// Size and bytes.
	{name: "1 MiB", in: big, err: "over the limit of 65536"},
	{name: "exactly 64 KiB", in: exactly64K(), urls: []want{{host: "h", vhost: strings.Repeat("v", MaxURLLength-len("amqp://h/"))}}},
	{name: "64 KiB + 1", in: exactly64K() + "v", err: "over the limit"},
	{name: "NUL", in: "amqp://h/\x00", err: "control character 0x00"},
	{name: "CRLF injection", in: "amqp://u:s3cr3t-PW@h/\r\nX-Injected: 1", err: "control character 0x0d"},
	{name: "trailing LF", in: "amqp://h\n", err: "control character 0x0a"},
	{name: "NUL in password", in: "amqp://u:s3cr3t-PW\x00@h/", err: "control character"},
	{name: "tab", in: "amqp://h/\tx", err: "control character 0x09"},
	{name: "DEL", in: "amqp://h/\x7f", err: "control character 0x7f"},
	{name: "invalid UTF-8", in: "amqp://h/\xff", err: "not valid UTF-8"},

	// Failover lists.
	{name: "three elements", in: "amqp://a;amqp://b:5673;amqp://c/v", urls: []want{{host: "a"}, {host: "b:5673", port: 5673}, {host: "c", vhost: "v"}}},
	{name: "mixed schemes and spaces", in: " amqp://a:1 ; redis://:s3cr3t-PW@b:2 ;memory:// ", urls: []want{{scheme: "amqp", host: "a:1", port: 1}, {scheme: "redis", host: "b:2", port: 2, user: str(""), password: str("s3cr3t-PW")}, {scheme: "memory"}}},
	{name: "empty middle element", in: "amqp://a;;amqp://b", err: "empty element"},
	{name: "trailing semicolon", in: "amqp://a;", err: "empty element"},
	{name: "only semicolon", in: ";", err: "empty element"},
	{name: "element without scheme", in: "amqp://a;b:5672", err: "failover element 2"},
	{name: "bad second element", in: "amqp://u:s3cr3t-PW@h;amqp://u:s3cr3t-PW@h2:0", err: "(failover element 2): port 0"},
	{name: "128 elements", in: strings.Repeat("memory://;", 127) + "memory://", urls: slices.Repeat([]want{{}}, 128)},
	{name: "129 elements", in: strings.Repeat("memory://;", 128) + "memory://", err: "failover list of 129 URLs, over the limit of 128"},
	{name: "bad third element", in: "amqp://a;amqp://b;amqp://[::1", err: "(failover element 3): missing ']'"},
}

func TestParseURLsTable(t *testing.T) {
	if n := len(urlCases); n < 45 {
		t.Fatalf("only %d cases", n)
	}
	for _, tc := range urlCases {
		t.Run(tc.name, func(t *testing.T) {
			us, err := ParseURLs(tc.in)
			leaks := append(append([]string{}, secrets...), tc.extra...)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("ParseURLs(%q) = %v, want an error containing %q", truncate(tc.in, 80), us, tc.err)
				}
				checkURLError(t, err, leaks)
				if !strings.Contains(err.Error(), tc.err) {
					t.Errorf("error %q does not contain %q", err, tc.err)
				}
				if _, err1 := ParseURL(tc.in); err1 == nil {
					t.Errorf("ParseURL accepted what ParseURLs rejects")
				} else {
					checkURLError(t, err1, leaks)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseURLs(%q): %v", truncate(tc.in, 80), err)
			}
			if len(us) != len(tc.urls) {
				t.Fatalf("got %d URLs, want %d", len(us), len(tc.urls))
			}
			for i, u := range us {
				checkWant(t, u, tc.urls[i])
				r := Redact(u)
				for _, s := range leaks {
					if strings.Contains(r, s) {
						t.Errorf("Redact = %q contains %q", r, s)
					}
				}
				v, err := ParseURL(r)
				if err != nil {
					t.Errorf("ParseURL(Redact(u) = %q): %v", r, err)
				} else if v.Scheme != u.Scheme || v.Host != u.Host {
					t.Errorf("round trip of %q: got %s %s, want %s %s", r, v.Scheme, v.Host, u.Scheme, u.Host)
				}
			}
			if len(us) == 1 {
				if _, err := ParseURL(tc.in); err != nil {
					t.Errorf("ParseURL: %v", err)
				}
			} else if _, err := ParseURL(tc.in); err == nil || !errors.Is(err, driver.ErrInvalidURL) {
				t.Errorf("ParseURL of a failover list: err = %v", err)
			}
		})
	}
}

func checkURLError(t *testing.T, err error, leaks []string) {
	t.Helper()
	if !errors.Is(err, driver.ErrInvalidURL) {
		t.Errorf("error %q does not wrap driver.ErrInvalidURL", err)
	}
	var ue *URLError
	if !errors.As(err, &ue) {
		t.Errorf("error %T is not a *URLError", err)
	}
	msg := err.Error()
	for _, s := range leaks {
		if strings.Contains(msg, s) || (ue != nil && strings.Contains(ue.URL, s)) {
			t.Errorf("error %q leaks %q", truncate(msg, 300), s)
		}
	}
	if len(msg) > 1024 {
		t.Errorf("error is %d bytes long", len(msg))
	}
}

func checkWant(t *testing.T, u *url.URL, w want) {
	t.Helper()
	if w.scheme != "" && u.Scheme != w.scheme {
		t.Errorf("scheme = %q, want %q", u.Scheme, w.scheme)
	}
	if u.Host != w.host {
		t.Errorf("host = %q, want %q", u.Host, w.host)
	}
	if w.hostname != "" && u.Hostname() != w.hostname {
		t.Errorf("hostname = %q, want %q", u.Hostname(), w.hostname)
	}
	if p := Port(u, 0); p != w.port {
		t.Errorf("Port = %d, want %d", p, w.port)
	}
	if v := VirtualHost(u); v != w.vhost {
		t.Errorf("VirtualHost = %q, want %q", truncate(v, 40), truncate(w.vhost, 40))
	}
	if w.user != nil {
		if u.User == nil {
			t.Fatalf("no user info, want user %q", *w.user)
		}
		if u.User.Username() != *w.user {
			t.Errorf("user = %q, want %q", u.User.Username(), *w.user)
		}
	}
	if u.User != nil {
		pw, ok := u.User.Password()
		switch {
		case w.password == nil && ok:
			t.Errorf("password set, want none")
		case w.password != nil && (!ok || pw != *w.password):
			t.Errorf("password = %q (set %v), want %q", pw, ok, *w.password)
		}
	} else if w.password != nil {
		t.Errorf("no user info, want a password")
	}
}

func TestParseURLNeverPanics(t *testing.T) {
	// Truncations of every case at every length are malformed in many
	// different ways; none may panic and every error must be typed.
	for _, tc := range urlCases {
		if len(tc.in) > 200 {
			continue
		}
		for i := 0; i <= len(tc.in); i++ {
			_, err := ParseURLs(tc.in[:i])
			if err != nil {
				if !errors.Is(err, driver.ErrInvalidURL) {
					t.Fatalf("ParseURLs(%q): %v does not wrap ErrInvalidURL", tc.in[:i], err)
				}
				for _, s := range secrets {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("ParseURLs(%q): error %q leaks %q", tc.in[:i], err, s)
					}
				}
			}
		}
	}
}

func TestParseURLRejectsList(t *testing.T) {
	_, err := ParseURL("amqp://a;amqp://b")
	if err == nil || !strings.Contains(err.Error(), "failover list of 2") {
		t.Fatalf("err = %v", err)
	}
}

func TestUnknownTransportURL(t *testing.T) {
	// A well-formed URL whose scheme has no transport fails at Lookup.
	u, err := ParseURL("kafka://u:s3cr3t-PW@broker:9092")
	if err != nil {
		t.Fatal(err)
	}
	r := NewRegistry()
	r.Register("memory", fakeTransport{})
	_, err = r.Lookup(u.Scheme)
	if !errors.Is(err, driver.ErrInvalidURL) {
		t.Fatalf("err = %v", err)
	}
	if strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err leaks the password: %v", err)
	}
}

func TestRedact(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amqp://guest:guest@localhost:5672//", "amqp://guest:**@localhost:5672//"},
		{"amqp://user:p%40ss%3Aw%2Frd%25@host/", "amqp://user:**@host/"},
		{"amqp://guest@host", "amqp://guest@host"},
		{"amqp://guest:@host", "amqp://guest:@host"},
		{"redis://:s3cr3t-PW@", "redis://:**@"},
		{"memory://", "memory://"},
		{"amqp://héllo.example:5672/", "amqp://héllo.example:5672/"},
		{"amqp://[fe80::1%25eth0]:5672/", "amqp://[fe80::1%25eth0]:5672/"},
		{"amqp://h/%2f", "amqp://h/%2f"},
		{"amqp://us%3Ber:x@h", "amqp://us%3Ber:**@h"},
		{"sqs://AKID:s3cr3t%2BKEY%2F@/?region=eu-west-1&secret_key=s3cr3t-PW&ssl_keyfile=/k.pem", "sqs://AKID:**@/?region=eu-west-1&secret_key=**&ssl_keyfile=/k.pem"},
	} {
		u, err := ParseURL(tc.in)
		if err != nil {
			t.Fatalf("%s: %v", tc.in, err)
		}
		if got := Redact(u); got != tc.want {
			t.Errorf("Redact(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
	if got := Redact(nil); got != "" {
		t.Errorf("Redact(nil) = %q", got)
	}
	// URLs built by hand, opaque ones included, never panic or leak.
	for _, u := range []*url.URL{
		{},
		{Scheme: "amqp", Opaque: "user:s3cr3t-PW@host"},
		{Scheme: "amqp", User: url.UserPassword("u", "s3cr3t-PW"), Host: "h", Path: "v"},
		{User: url.UserPassword("", "s3cr3t-PW")},
		{Scheme: "x", Host: "a b\x00c", Path: "/\x01", RawQuery: "token=s3cr3t-PW", ForceQuery: true, Fragment: "f"},
	} {
		got := Redact(u)
		if strings.Contains(got, "s3cr3t") {
			t.Errorf("Redact(%#v) = %q leaks", u, got)
		}
	}
}

func TestRedactText(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"amqp://u:s3cr3t-PW@h:0", "amqp://u:**@h:0"},
		{"amqp://u:s3/cr3t@h", "amqp://**@h"},
		{"amqp://u:a@b@h", "amqp://u:**@h"},
		{"amqp://u@h", "amqp://u@h"},
		{"amqp://u:@h", "amqp://u:@h"},
		{"guest:s3cr3t@localhost", "**@localhost"},
		{"redis://:s3cr3t-PW", "redis://:**"},
		{"redis://h:6379", "redis://h:6379"},
		{"amqp://[::1]:abc", "amqp://[::1]:**"},
		{"amqp://h/?password=x&a=1#f", "amqp://h/?password=**&a=1#f"},
		{"", ""},
		{"@", "**@"},
		{"://@:", "://@:"},
	} {
		if got := redactText(tc.in); got != tc.want {
			t.Errorf("redactText(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestVirtualHostAndPort(t *testing.T) {
	if VirtualHost(nil) != "" || Port(nil, 7) != 7 {
		t.Fatal("nil URL")
	}
	u := &url.URL{Scheme: "amqp", Host: "h:notaport"}
	if p := Port(u, 5672); p != 5672 {
		t.Errorf("Port of invalid port = %d", p)
	}
	u = &url.URL{Scheme: "amqp", Host: "h"}
	if p := Port(u, 5672); p != 5672 {
		t.Errorf("Port default = %d", p)
	}
}

func TestIsSecretKey(t *testing.T) {
	for k, want := range map[string]bool{
		"password": true, "sasl_password": true, "Passwd": true, "secret_key": true,
		"access_token": true, "key": true, "api-key": true, "credentials": true,
		"ssl_keyfile": false, "key_path": false, "heartbeat": false, "region": false,
	} {
		if got := isSecretKey(k); got != want {
			t.Errorf("isSecretKey(%q) = %v", k, got)
		}
	}
}

func BenchmarkParseURL(b *testing.B) {
	const s = "amqp://user:p%40ss%3Aw%2Frd%25@rabbit.example.com:5672/%2f?heartbeat=30&connect_timeout=4.5&ssl=true"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseURL(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseURLsFailover(b *testing.B) {
	const s = "amqp://u:pw@a:5672//;amqp://u:pw@b:5672//;amqp://u:pw@[::1]:5672//"
	for b.Loop() {
		if _, err := ParseURLs(s); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseURL1MiB(b *testing.B) {
	for b.Loop() {
		if _, err := ParseURL(big); err == nil {
			b.Fatal("accepted")
		}
	}
}

// Hostile inputs at the size limit must still parse quickly.
func BenchmarkParseURLWorstCase(b *testing.B) {
	var q strings.Builder
	q.WriteString("amqp://h/?")
	for i := 0; q.Len() < MaxURLLength-16; i++ {
		fmt.Fprintf(&q, "k%d=&", i)
	}
	for _, bc := range []struct{ name, in string }{
		{"options", q.String()},
		{"semicolons", "amqp://h" + strings.Repeat(";amqp://h", (MaxURLLength-10)/9)},
		{"escapes", "amqp://h/" + strings.Repeat("%41", (MaxURLLength-10)/3)},
		{"at-signs", "amqp://" + strings.Repeat("u:p@", (MaxURLLength-10)/4) + "h"},
		{"128 elements", strings.Repeat("amqp://u:p@h:5672//;", 127) + "amqp://h"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				_, _ = ParseURLs(bc.in)
			}
		})
	}
}
