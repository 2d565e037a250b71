package transport

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/kombu-go/kombu/kombu/driver"
)

// Registry maps URL schemes to transports. The zero value is an empty
// registry ready to use, and a Registry is safe for concurrent use.
type Registry struct {
	mu sync.RWMutex
	m  map[string]driver.Transport
}

// NewRegistry returns an empty registry. Tests use one to stay isolated
// from the transports registered in Default.
func NewRegistry() *Registry { return &Registry{} }

// Default is the registry that transport packages add themselves to in
// their init functions, and that Register, Lookup and Schemes use.
var Default = NewRegistry()

// Register makes t available for URLs with the given scheme, which is
// lowercased first. It panics if t is nil, if the scheme is empty or not
// valid URL scheme syntax, or if the scheme is already registered: these
// are programming errors, found when the program starts.
func (r *Registry) Register(scheme string, t driver.Transport) {
	if t == nil {
		panic("transport: Register of a nil transport for scheme " + fmt.Sprintf("%q", scheme))
	}
	if scheme == "" {
		panic("transport: Register with an empty scheme")
	}
	s := strings.ToLower(scheme)
	if !validScheme(s) {
		panic(fmt.Sprintf("transport: Register with invalid scheme %q (want a letter followed by letters, digits, '+', '-' or '.')", scheme))
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[s]; dup {
		panic(fmt.Sprintf("transport: Register called twice for scheme %q", s))
	}
	if r.m == nil {
		r.m = make(map[string]driver.Transport)
	}
	r.m[s] = t
}

// Lookup returns the transport registered for scheme (case-insensitive).
// An unknown scheme gives an *UnknownSchemeError, which wraps
// driver.ErrInvalidURL and names the package that is probably not
// imported.
func (r *Registry) Lookup(scheme string) (driver.Transport, error) {
	s := strings.ToLower(scheme)
	r.mu.RLock()
	t, ok := r.m[s]
	r.mu.RUnlock()
	if ok {
		return t, nil
	}
	return nil, &UnknownSchemeError{Scheme: s, Available: r.Schemes()}
}

// Schemes returns the registered schemes, sorted.
func (r *Registry) Schemes() []string {
	r.mu.RLock()
	out := make([]string, 0, len(r.m))
	for s := range r.m {
		out = append(out, s)
	}
	r.mu.RUnlock()
	sort.Strings(out)
	return out
}

// Register registers t for scheme in Default. See Registry.Register.
func Register(scheme string, t driver.Transport) { Default.Register(scheme, t) }

// Lookup looks scheme up in Default. See Registry.Lookup.
func Lookup(scheme string) (driver.Transport, error) { return Default.Lookup(scheme) }

// Schemes returns the schemes registered in Default, sorted.
func Schemes() []string { return Default.Schemes() }

// UnknownSchemeError is returned by Lookup for a scheme that no transport
// registered. It wraps driver.ErrInvalidURL.
type UnknownSchemeError struct {
	Scheme    string   // lowercased
	Available []string // the registered schemes, sorted
}

// modulePath is the import path prefix of the transports in this module.
const modulePath = "github.com/kombu-go/kombu/transport/"

// knownPackages maps the schemes of this module's transports to their
// package, so that a missing blank import can be named.
var knownPackages = map[string]string{
	"amqp":     "amqp",
	"amqps":    "amqp",
	"pyamqp":   "amqp",
	"redis":    "redis",
	"rediss":   "redis",
	"sentinel": "redis",
	"memory":   "memory",
}

// plannedSchemes are Python kombu schemes that kombu-go has no transport
// for yet; their error says so instead of naming a package that does not
// exist.
var plannedSchemes = map[string]bool{"sqs": true, "mongodb": true, "mongodb+srv": true}

func (e *UnknownSchemeError) Error() string {
	var b strings.Builder
	if e.Scheme == "" {
		b.WriteString("transport: empty scheme")
	} else {
		fmt.Fprintf(&b, "transport: unknown scheme %q", e.Scheme)
		if pkg, ok := knownPackages[e.Scheme]; ok {
			fmt.Fprintf(&b, " (forgotten import of %q?)", modulePath+pkg)
		} else if plannedSchemes[e.Scheme] {
			b.WriteString(" (kombu-go has no transport for it yet)")
		} else {
			b.WriteString(" (no transport registered for it)")
		}
	}
	b.WriteString("; available: ")
	if len(e.Available) == 0 {
		b.WriteString("none")
	} else {
		b.WriteString(strings.Join(e.Available, ", "))
	}
	return b.String()
}

// Unwrap makes errors.Is(err, driver.ErrInvalidURL) true.
func (e *UnknownSchemeError) Unwrap() error { return driver.ErrInvalidURL }

// validScheme reports whether s is RFC 3986 scheme syntax.
func validScheme(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}
