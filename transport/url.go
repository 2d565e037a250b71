package transport

import (
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/kombu-go/kombu/kombu/driver"
)

// MaxURLLength is the longest input, in bytes, that ParseURLs accepts.
const MaxURLLength = 64 << 10

// maxElements caps the length of a failover list and maxOptions the
// number of query options of one URL, so that no input, however hostile,
// takes long to parse.
const (
	maxElements = 128
	maxOptions  = 256
)

// maxShown caps how much of a (redacted) URL an error message repeats.
const maxShown = 256

// URLError reports a URL that ParseURLs or ParseURL rejected. It wraps
// driver.ErrInvalidURL. None of its fields ever holds a password.
type URLError struct {
	// URL is the offending URL with its password masked, or "" when no
	// part of the input could be shown safely.
	URL string
	// Element is the 1-based position of the offending URL in a failover
	// list, or 0 when the input held a single URL.
	Element int
	// Reason says what is wrong, and how to fix it where that helps.
	Reason string
}

func (e *URLError) Error() string {
	var b strings.Builder
	b.WriteString("transport: invalid URL")
	if e.URL != "" {
		fmt.Fprintf(&b, " %q", truncate(e.URL, maxShown))
	}
	if e.Element > 0 {
		fmt.Fprintf(&b, " (failover element %d)", e.Element)
	}
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

// Unwrap makes errors.Is(err, driver.ErrInvalidURL) true.
func (e *URLError) Unwrap() error { return driver.ErrInvalidURL }

// ParseURLs parses one URL or a ';'-separated failover list, kombu style
// ("amqp://a;amqp://b"), into URLs in the same order. Spaces around each
// element are trimmed. Elements may have different schemes. Every element
// is validated as ParseURL describes; errors are *URLError values. A list
// holds at most 128 URLs.
func ParseURLs(s string) ([]*url.URL, error) {
	if len(s) > MaxURLLength {
		return nil, &URLError{Reason: fmt.Sprintf("%d bytes long, over the limit of %d", len(s), MaxURLLength)}
	}
	if reason := checkBytes(s); reason != "" {
		return nil, &URLError{URL: redactText(s), Reason: reason}
	}
	if n := strings.Count(s, ";") + 1; n > maxElements {
		return nil, &URLError{Reason: fmt.Sprintf("failover list of %d URLs, over the limit of %d", n, maxElements)}
	}
	parts := strings.Split(s, ";")
	multi := len(parts) > 1
	for i := range parts {
		parts[i] = strings.Trim(parts[i], " ")
	}
	position := func(i int) int {
		if multi {
			return i + 1
		}
		return 0
	}
	// Check every element's shape before parsing any: a ';' inside a
	// password splits it across two elements, and neither half may be
	// shown.
	for i, p := range parts {
		if p == "" {
			reason := "empty URL"
			if multi {
				reason = "empty element in failover list"
			}
			return nil, &URLError{Element: position(i), Reason: reason}
		}
		if !hasSchemePrefix(p) {
			e := &URLError{Element: position(i), Reason: "missing or invalid scheme: want scheme://host, e.g. amqp://localhost:5672"}
			if multi {
				e.Reason += "; a ';' in a password must be written %3B"
			} else {
				e.URL = redactText(p)
			}
			return nil, e
		}
	}
	out := make([]*url.URL, 0, len(parts))
	for i, p := range parts {
		u, err := parseOne(p)
		if err != nil {
			err.Element = position(i)
			return nil, err
		}
		out = append(out, u)
	}
	return out, nil
}

// ParseURL parses exactly one URL of the form
// scheme://[user[:password]@][host][:port][/path][?query]. The scheme is
// lowercased, the host (unicode or not) is kept as given, and the user
// name and password are %-decoded.
//
// Errors are *URLError values that wrap driver.ErrInvalidURL and never
// contain the password. ParseURL and ParseURLs reject:
//   - input longer than MaxURLLength;
//   - control bytes (NUL, CR, LF, TAB, DEL, ...) and invalid UTF-8;
//   - a missing or malformed scheme, or a missing "//";
//   - malformed %-escapes, and raw non-ASCII in the user name or password;
//   - a port that is empty, not decimal or not in 1..65535;
//   - unbalanced brackets, a ':' in a host that is not a bracketed IPv6
//     address, invalid characters in the host;
//   - an '@' after the host, which means a user name or password holding
//     an unescaped '/', '?' or '#';
//   - a fragment ('#');
//   - empty or duplicate query option names, or more than 256 options;
//   - (ParseURL only) a failover list.
func ParseURL(s string) (*url.URL, error) {
	us, err := ParseURLs(s)
	if err != nil {
		return nil, err
	}
	if len(us) != 1 {
		return nil, &URLError{Reason: fmt.Sprintf("want one URL, got a failover list of %d; a ';' in a password must be written %%3B", len(us))}
	}
	return us[0], nil
}

// VirtualHost returns the virtual host named by u's path, with kombu's
// rules: the first '/' is dropped and the rest is %-decoded, so "" and "/"
// give "" (the transport applies its default), "//" and "/%2f" give "/",
// "/foo" gives "foo" and "/a%2Fb" gives "a/b".
func VirtualHost(u *url.URL) string {
	if u == nil {
		return ""
	}
	p := strings.TrimPrefix(u.EscapedPath(), "/")
	if v, err := url.PathUnescape(p); err == nil {
		return v
	}
	return strings.TrimPrefix(u.Path, "/")
}

// Port returns u's port as a number, or def when u has none. ParseURL has
// already rejected invalid ports; for other URLs an invalid port also
// gives def.
func Port(u *url.URL, def int) int {
	if u == nil {
		return def
	}
	p, err := strconv.Atoi(u.Port())
	if err != nil || p < 1 || p > 65535 {
		return def
	}
	return p
}

// checkBytes rejects control bytes and invalid UTF-8.
func checkBytes(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == 0x7f {
			return fmt.Sprintf("control character %#02x at byte %d", c, i)
		}
	}
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	return ""
}

// hasSchemePrefix reports whether p starts with a valid scheme and "://".
func hasSchemePrefix(p string) bool {
	i := strings.IndexByte(p, ':')
	return i > 0 && validScheme(p[:i]) && strings.HasPrefix(p[i:], "://")
}

// parseOne parses one element that has passed checkBytes and
// hasSchemePrefix. Its own checks run before net/url's so that the
// reasons are precise; net/url's error text is never used, as it repeats
// the input, password included.
func parseOne(p string) (*url.URL, *URLError) {
	fail := func(format string, args ...any) (*url.URL, *URLError) {
		return nil, &URLError{URL: redactText(p), Reason: fmt.Sprintf(format, args...)}
	}
	if !validEscapes(p) {
		return fail("malformed %%-escape: a literal '%%' must be written %%25")
	}
	rest := p[strings.Index(p, "://")+3:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	authority, tail := rest[:end], rest[end:]
	if strings.Contains(tail, "@") {
		return fail("'@' after the host: in a user name or password write '/' as %%2F, '?' as %%3F, '#' as %%23; elsewhere write '@' as %%40")
	}
	if strings.Contains(tail, "#") {
		return fail("fragment ('#') not allowed: write '#' as %%23")
	}
	hostport := authority
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		hostport = authority[at+1:]
		if !isASCII(authority[:at]) {
			return fail("non-ASCII characters in a user name or password must be %%-encoded (as UTF-8)")
		}
	}
	if reason := checkHostPort(hostport); reason != "" {
		return fail("%s", reason)
	}
	u, err := url.Parse(p)
	if err != nil || u.Opaque != "" {
		return fail("malformed URL: in a user name or password write '@' as %%40, ':' as %%3A, '/' as %%2F, '%%' as %%25")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if _, err := parseQuery(u.RawQuery); err != nil {
		return fail("option %q: %s", truncate(err.Key, maxValueShown), err.Reason)
	}
	return u, nil
}

// checkHostPort validates host[:port] (the authority after any user
// info), returning a reason or "".
func checkHostPort(hp string) string {
	host, port, hasPort := hp, "", false
	if strings.HasPrefix(hp, "[") {
		j := strings.IndexByte(hp, ']')
		if j < 0 {
			return "missing ']' after IPv6 address"
		}
		addr, after := hp[1:j], hp[j+1:]
		if reason := checkIPv6(addr); reason != "" {
			return reason
		}
		host = hp[:j+1]
		switch {
		case after == "":
		case after[0] == ':':
			port, hasPort = after[1:], true
		default:
			return "unexpected text after ']': want [ipv6]:port"
		}
		if strings.ContainsAny(after, "[]") {
			return "unbalanced '[' or ']' in host"
		}
	} else {
		if strings.ContainsAny(hp, "[]") {
			return "'[' or ']' in host: write an IPv6 address as [::1] or [::1]:5672"
		}
		if i := strings.LastIndexByte(hp, ':'); i >= 0 {
			host, port, hasPort = hp[:i], hp[i+1:], true
		}
		if strings.Contains(host, ":") {
			return "':' in host: write an IPv6 address in brackets, e.g. [::1]:5672"
		}
		for i := 0; i < len(host); i++ {
			if c := host[i]; c < utf8.RuneSelf && !isHostByte(c) {
				return fmt.Sprintf("invalid character %q in host", c)
			}
		}
	}
	if !hasPort {
		return ""
	}
	switch {
	case port == "":
		return "empty port after ':'"
	case !allDigits(port):
		// Not repeated: a forgotten '@' (redis://:password) puts the
		// password here.
		return "port is not a decimal number (if it is a password, end the user info with '@', e.g. redis://:password@host)"
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 1 || n > 65535 {
		return fmt.Sprintf("port %s out of range 1..65535", truncate(port, 16))
	}
	return ""
}

// checkIPv6 validates the text between brackets, zone included.
func checkIPv6(s string) string {
	ip, zone, hasZone := strings.Cut(s, "%25")
	if hasZone && zone == "" {
		return "empty IPv6 zone"
	}
	if strings.Contains(ip, "%") {
		return "IPv6 zone must be written %25zone, e.g. [fe80::1%25eth0]"
	}
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return "invalid IPv6 address in brackets"
	}
	return ""
}

// validEscapes reports whether every '%' starts a %XX escape.
func validEscapes(s string) bool {
	for {
		i := strings.IndexByte(s, '%')
		if i < 0 {
			return true
		}
		if i+2 >= len(s) || !isHex(s[i+1]) || !isHex(s[i+2]) {
			return false
		}
		s = s[i+3:]
	}
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// isHostByte reports whether an ASCII byte may appear in a host name
// (RFC 3986 unreserved, sub-delims and '%').
func isHostByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' ||
		strings.IndexByte("-._~!$&'()*+,;=%", c) >= 0
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// truncate shortens s to at most n bytes (on a rune boundary), marking
// the cut with "…".
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
