package transport

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/kombu-go/kombu/kombu/driver"
)

// FuzzParseURLs checks that ParseURLs never panics, that its errors are
// typed, and, for what it accepts, that Redact hides the password and
// parses back to the same scheme, host and port. It also puts the input
// in the password position of a URL and checks the password never shows
// in the error's URL or in Redact.
func FuzzParseURLs(f *testing.F) {
	for _, tc := range urlCases {
		if len(tc.in) <= 4096 {
			f.Add(tc.in)
		}
	}
	for _, s := range secrets {
		f.Add(s)
	}
	f.Add("p://*") // occurs in the masked "amqp://**@host/"
	f.Fuzz(func(t *testing.T, s string) {
		us, err := ParseURLs(s)
		if err != nil {
			checkFuzzError(t, s, err)
		}
		for _, u := range us {
			checkRedacted(t, u)
			checkQuery(t, u)
		}

		// s as the password of an otherwise valid URL.
		const head, tail = "amqp://user:", "@host/"
		in := head + s + tail
		us, err = ParseURLs(in)
		// The masked forms are "amqp://user:**@host/" and "amqp://**@host/";
		// a "password" that occurs in them, or holds the mask's '*', says
		// nothing.
		if len(s) < 4 || strings.Contains(s, "*") || strings.Contains(head+mask+tail, s) {
			return
		}
		if err != nil {
			checkFuzzError(t, in, err)
			var ue *URLError
			errors.As(err, &ue)
			if strings.Contains(ue.URL, s) {
				t.Fatalf("ParseURLs(%q): error URL %q contains the password", in, ue.URL)
			}
			if r, _ := utf8.DecodeRuneInString(s); r >= utf8.RuneSelf && r != '…' && strings.Contains(err.Error(), s) {
				t.Fatalf("ParseURLs(%q): error %q contains the password", in, err)
			}
		}
		for _, u := range us {
			if r := Redact(u); strings.Contains(r, s) {
				t.Fatalf("ParseURLs(%q): Redact = %q contains the password", in, r)
			}
		}
	})
}

func checkFuzzError(t *testing.T, in string, err error) {
	t.Helper()
	if !errors.Is(err, driver.ErrInvalidURL) {
		t.Fatalf("ParseURLs(%q): %v does not wrap ErrInvalidURL", in, err)
	}
	var ue *URLError
	if !errors.As(err, &ue) {
		t.Fatalf("ParseURLs(%q): %T is not a *URLError", in, err)
	}
	if len(err.Error()) > 2048 {
		t.Fatalf("ParseURLs(%q): error is %d bytes", in, len(err.Error()))
	}
}

// checkQuery reads every option of a URL that ParseURLs accepted with
// every reader: the query must be readable and errors typed.
func checkQuery(t *testing.T, u *url.URL) {
	t.Helper()
	q, err := NewQuery(u)
	if err != nil {
		t.Fatalf("NewQuery(%q) after ParseURL: %v", u.RawQuery, err)
	}
	for _, k := range q.keys {
		var (
			s  string
			b  bool
			n  int
			f  float64
			d  time.Duration
			ns []int
		)
		q.String(k, &s)
		q.Bool(k, &b)
		q.Int(k, &n)
		q.IntRange(k, &n, 0, 10)
		q.Float(k, &f)
		q.Duration(k, &d)
		q.IntList(k, &ns)
		if d < 0 {
			t.Fatalf("option %q: negative duration %v", k, d)
		}
	}
	if err := q.Err(); err != nil && !errors.Is(err, driver.ErrInvalidURL) {
		t.Fatalf("Query.Err: %v does not wrap ErrInvalidURL", err)
	}
	_ = fmt.Sprintf("%+v", q)
}

// checkRedacted checks Redact on a URL that ParseURLs accepted.
func checkRedacted(t *testing.T, u *url.URL) {
	t.Helper()
	r := Redact(u)
	if pw, ok := u.User.Password(); ok && len(pw) >= 4 && !strings.ContainsAny(pw, ":*@") {
		// The password may legitimately occur elsewhere in the URL.
		rest := *u
		rest.User = nil
		elsewhere := strings.Contains(Redact(&rest), pw) ||
			strings.Contains(url.User(u.User.Username()).String(), pw) ||
			strings.Contains(u.User.Username(), pw)
		if !elsewhere && strings.Contains(r, pw) {
			t.Fatalf("Redact = %q contains password %q", r, pw)
		}
	}
	v, err := ParseURL(r)
	if err != nil {
		t.Fatalf("ParseURL(Redact(u) = %q): %v", r, err)
	}
	if v.Scheme != u.Scheme || v.Hostname() != u.Hostname() || v.Port() != u.Port() {
		t.Fatalf("round trip of %q: got %q %q %q, want %q %q %q", r,
			v.Scheme, v.Hostname(), v.Port(), u.Scheme, u.Hostname(), u.Port())
	}
}

// FuzzRedact checks Redact on URLs built field by field (which need not
// be valid) and redactText on the text such a URL would have: neither may
// panic or show the password.
func FuzzRedact(f *testing.F) {
	f.Add("amqp", "guest", "s3cr3t-PW", "localhost:5672", "/", "heartbeat=30")
	f.Add("redis", "", "p@ss:w/rd%", "", "/0", "")
	f.Add("sqs", "AKID", "s3cr3t+KEY/", "", "", "region=eu-west-1&secret_key=x")
	f.Add("", "u", "pw;pw;pw", "[::1]:0", "v", "password=y&password=z")
	f.Add("amqp", "u:x", "s3cr3t#?/PW", "héllo", "/a%2Fb", "a=%zz")
	f.Add("memory", "u", "\x00\r\nNUL", "h:abc", "//", "=")
	f.Fuzz(func(t *testing.T, scheme, user, pw, host, path, query string) {
		u := &url.URL{Scheme: scheme, User: url.UserPassword(user, pw), Host: host, Path: path, RawQuery: query}
		r := Redact(u)
		if len(pw) >= 4 && !strings.ContainsAny(pw, ":*@") {
			rest := *u
			rest.User = nil
			elsewhere := strings.Contains(Redact(&rest), pw) ||
				strings.Contains(url.User(user).String(), pw) ||
				strings.Contains(strings.ReplaceAll(url.User(user).String(), ";", "%3B"), pw)
			if !elsewhere && strings.Contains(r, pw) {
				t.Fatalf("Redact(%#v) = %q contains the password", u, r)
			}
		}
		_ = Redact(&url.URL{Scheme: scheme, Opaque: user + ":" + pw + "@" + host})

		// The same parts as text, which need not parse.
		rest := host + path + query
		text := "amqp://" + user + ":" + pw + "@" + rest
		got := redactText(text)
		if strings.Contains(user, ":") || len(pw) < 4 || strings.ContainsAny(pw, ":*@/") ||
			strings.Contains(user, pw) || strings.Contains(rest, pw) {
			return
		}
		if strings.Contains(got, pw) {
			t.Fatalf("redactText(%q) = %q contains the password", text, got)
		}
		if _, err := ParseURLs(text); err != nil {
			var ue *URLError
			if !errors.As(err, &ue) || !errors.Is(err, driver.ErrInvalidURL) {
				t.Fatalf("ParseURLs(%q): untyped error %v", text, err)
			}
			if strings.Contains(ue.URL, pw) {
				t.Fatalf("ParseURLs(%q): error URL %q contains the password", text, ue.URL)
			}
		}
	})
}
