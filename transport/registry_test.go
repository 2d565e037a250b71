package transport

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

type fakeTransport struct{ name string }

func (fakeTransport) OpenConnector(*url.URL) (driver.Connector, error) {
	return nil, driver.ErrNotSupported
}

func mustPanic(t *testing.T, want string, f func()) {
	t.Helper()
	defer func() {
		t.Helper()
		r := recover()
		if r == nil {
			t.Fatalf("no panic, want one containing %q", want)
		}
		if s := fmt.Sprint(r); !strings.Contains(s, want) {
			t.Fatalf("panic %q does not contain %q", s, want)
		}
	}()
	f()
}

func TestRegisterPanics(t *testing.T) {
	r := NewRegistry()
	r.Register("memory", fakeTransport{})
	mustPanic(t, "nil transport", func() { r.Register("amqp", nil) })
	mustPanic(t, "empty scheme", func() { r.Register("", fakeTransport{}) })
	mustPanic(t, "twice", func() { r.Register("memory", fakeTransport{}) })
	mustPanic(t, "twice", func() { r.Register("MEMORY", fakeTransport{}) })
	mustPanic(t, "invalid scheme", func() { r.Register("redis://", fakeTransport{}) })
	mustPanic(t, "invalid scheme", func() { r.Register("1x", fakeTransport{}) })
	if got := r.Schemes(); !slices.Equal(got, []string{"memory"}) {
		t.Fatalf("Schemes after failed registrations = %v", got)
	}
}

func TestRegisterLowercases(t *testing.T) {
	r := NewRegistry()
	want := fakeTransport{name: "redis"}
	r.Register("ReDiS", want)
	for _, s := range []string{"redis", "REDIS", "Redis"} {
		got, err := r.Lookup(s)
		if err != nil {
			t.Fatalf("Lookup(%q): %v", s, err)
		}
		if got != want {
			t.Fatalf("Lookup(%q) = %v", s, got)
		}
	}
	if got := r.Schemes(); !slices.Equal(got, []string{"redis"}) {
		t.Fatalf("Schemes = %v", got)
	}
}

func TestZeroRegistry(t *testing.T) {
	var r Registry
	if _, err := r.Lookup("amqp"); !errors.Is(err, driver.ErrInvalidURL) {
		t.Fatalf("err = %v", err)
	}
	r.Register("amqp", fakeTransport{})
	if _, err := r.Lookup("amqp"); err != nil {
		t.Fatal(err)
	}
}

func TestLookupUnknown(t *testing.T) {
	r := NewRegistry()
	r.Register("memory", fakeTransport{})
	r.Register("amqp", fakeTransport{})
	for _, tc := range []struct{ scheme, want string }{
		{"redis", `transport: unknown scheme "redis" (forgotten import of "github.com/kombu-go/kombu/transport/redis"?); available: amqp, memory`},
		{"REDISS", `transport: unknown scheme "rediss" (forgotten import of "github.com/kombu-go/kombu/transport/redis"?); available: amqp, memory`},
		{"sentinel", `(forgotten import of "github.com/kombu-go/kombu/transport/redis"?)`},
		{"pyamqp", `(forgotten import of "github.com/kombu-go/kombu/transport/amqp"?)`},
		{"amqps", `(forgotten import of "github.com/kombu-go/kombu/transport/amqp"?)`},
		{"sqs", `transport: unknown scheme "sqs" (kombu-go has no transport for it yet); available: amqp, memory`},
		{"mongodb+srv", `(kombu-go has no transport for it yet)`},
		{"mongodb", `(kombu-go has no transport for it yet)`},
		{"kafka", `transport: unknown scheme "kafka" (no transport registered for it); available: amqp, memory`},
		{"", `transport: empty scheme; available: amqp, memory`},
	} {
		tr, err := r.Lookup(tc.scheme)
		if tr != nil || err == nil {
			t.Fatalf("Lookup(%q) = %v, %v", tc.scheme, tr, err)
		}
		if !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("Lookup(%q): %v does not wrap ErrInvalidURL", tc.scheme, err)
		}
		var ue *UnknownSchemeError
		if !errors.As(err, &ue) || !slices.Equal(ue.Available, []string{"amqp", "memory"}) {
			t.Errorf("Lookup(%q): %#v", tc.scheme, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Lookup(%q) = %q, want it to contain %q", tc.scheme, err, tc.want)
		}
	}
	// The memory package is named even when nothing at all is registered.
	_, err := NewRegistry().Lookup("memory")
	want := `transport: unknown scheme "memory" (forgotten import of "github.com/kombu-go/kombu/transport/memory"?); available: none`
	if err == nil || err.Error() != want {
		t.Errorf("err = %v, want %s", err, want)
	}
}

func TestSchemesSorted(t *testing.T) {
	r := NewRegistry()
	for _, s := range []string{"sqs", "amqp", "redis", "Memory", "amqps", "mongodb+srv", "mongodb"} {
		r.Register(s, fakeTransport{name: s})
	}
	want := []string{"amqp", "amqps", "memory", "mongodb", "mongodb+srv", "redis", "sqs"}
	got := r.Schemes()
	if !slices.Equal(got, want) {
		t.Fatalf("Schemes = %v, want %v", got, want)
	}
	got[0] = "mutated"
	if r.Schemes()[0] != "amqp" {
		t.Fatal("Schemes returned the registry's own slice")
	}
	if s := NewRegistry().Schemes(); s == nil || len(s) != 0 {
		t.Fatalf("empty Schemes = %#v", s)
	}
}

func TestDefaultRegistry(t *testing.T) {
	// Use a scheme no real transport takes, since Default is global.
	const scheme = "x-transport-test"
	want := fakeTransport{name: scheme}
	Register(scheme, want)
	got, err := Lookup(strings.ToUpper(scheme))
	if err != nil || got != want {
		t.Fatalf("Lookup = %v, %v", got, err)
	}
	if !slices.Contains(Schemes(), scheme) {
		t.Fatalf("Schemes = %v", Schemes())
	}
	mustPanic(t, "twice", func() { Register(scheme, want) })
}

func TestConcurrentLookup(t *testing.T) {
	r := NewRegistry()
	r.Register("memory", fakeTransport{name: "memory"})
	var wg sync.WaitGroup
	for g := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g%4 == 0 && i%50 == 0 {
					r.Register(fmt.Sprintf("s%d-%d", g, i), fakeTransport{})
				}
				if _, err := r.Lookup("memory"); err != nil {
					t.Error(err)
					return
				}
				if _, err := r.Lookup("nope"); err == nil {
					t.Error("Lookup(nope) succeeded")
					return
				}
				_ = r.Schemes()
			}
		}()
	}
	wg.Wait()
	if n := len(r.Schemes()); n != 1+4*4 {
		t.Fatalf("%d schemes", n)
	}
}
