package transport

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"
)

// mask replaces secrets in everything this package prints, as kombu's
// as_uri does.
const mask = "**"

// Redact returns u as a string with its password replaced by "**", as
// kombu's as_uri(include_password=False) does, and with the values of
// query options whose names look like secrets (password, secret, token,
// key, ...) replaced by "**" too. A password that is present but empty
// is left empty. A host is kept as given, unicode included.
//
// Redact never panics; a nil u gives "". The result of Redact on a URL
// from ParseURL parses again to the same scheme, host and port.
func Redact(u *url.URL) string {
	if u == nil {
		return ""
	}
	if u.Opaque != "" {
		// Never produced by ParseURL, which wants scheme://; the opaque
		// part may still hold user:password@host, so cut it textually.
		return redactText(u.String())
	}
	var b strings.Builder
	if u.Scheme != "" {
		b.WriteString(u.Scheme)
		b.WriteByte(':')
	}
	b.WriteString("//")
	if u.User != nil {
		// net/url leaves ';' unescaped in user info, but ';' separates
		// failover URLs.
		b.WriteString(strings.ReplaceAll(url.User(u.User.Username()).String(), ";", "%3B"))
		if pw, ok := u.User.Password(); ok {
			b.WriteByte(':')
			if pw != "" {
				b.WriteString(mask)
			}
		}
		b.WriteByte('@')
	}
	b.WriteString(displayHost(u.Host))
	p := u.EscapedPath()
	if p != "" && p[0] != '/' {
		b.WriteByte('/')
	}
	b.WriteString(p)
	if u.RawQuery != "" || u.ForceQuery {
		b.WriteByte('?')
		b.WriteString(redactQuery(u.RawQuery))
	}
	if u.Fragment != "" {
		b.WriteByte('#')
		b.WriteString(u.EscapedFragment())
	}
	return b.String()
}

// displayHost returns h unescaped when that is unambiguous (so that a
// unicode host stays readable), else escaped as net/url does.
func displayHost(h string) string {
	if h == "" {
		return ""
	}
	plain := utf8.ValidString(h)
	for _, r := range h {
		if !plain {
			break
		}
		switch {
		case r >= utf8.RuneSelf:
			plain = r != utf8.RuneError && unicode.IsPrint(r) && !unicode.IsSpace(r)
		case 'a' <= r && r <= 'z', 'A' <= r && r <= 'Z', '0' <= r && r <= '9':
		case strings.ContainsRune("-._~!$&'()*+,=:[]", r):
		default:
			plain = false
		}
	}
	if plain {
		return h
	}
	return strings.TrimPrefix((&url.URL{Host: h}).String(), "//")
}

// redactQuery masks the values of secret-looking options in a raw query,
// keeping everything else byte for byte.
func redactQuery(raw string) string {
	if raw == "" {
		return raw
	}
	parts := strings.Split(raw, "&")
	changed := false
	for i, p := range parts {
		k, v, ok := strings.Cut(p, "=")
		if !ok || v == "" {
			continue
		}
		name, err := url.QueryUnescape(k)
		if err != nil {
			name = k
		}
		if isSecretKey(name) {
			parts[i] = k + "=" + mask
			changed = true
		}
	}
	if !changed {
		return raw
	}
	return strings.Join(parts, "&")
}

// isSecretKey reports whether an option named k probably holds a secret,
// so that its value must not be printed. File and path options (such as
// ssl_keyfile) name where a secret lives and are not secret themselves.
func isSecretKey(k string) bool {
	k = strings.ToLower(k)
	for _, w := range []string{"pass", "pwd", "secret", "token", "credential"} {
		if strings.Contains(k, w) {
			return true
		}
	}
	if strings.Contains(k, "key") {
		return !strings.Contains(k, "file") && !strings.Contains(k, "path")
	}
	return false
}

// redactText masks the password in text that may not parse as a URL at
// all, for use in error messages. It errs on the side of hiding too much:
//
//   - everything between "://" and the last '@' is user info; only a user
//     name before the first ':' survives, and only when it holds none of
//     "/?#" (else the whole user info is masked). Without "://", all of it
//     is masked.
//   - a "port" that is not a number (redis://:password, a forgotten '@')
//     is masked.
//   - secret-looking query values are masked.
func redactText(s string) string {
	start := 0
	hasScheme := false
	if i := strings.Index(s, "://"); i >= 0 {
		start, hasScheme = i+3, true
	}
	var b strings.Builder
	b.WriteString(s[:start])
	rest := s[start:]
	if at := strings.LastIndexByte(rest, '@'); at >= 0 {
		ui := rest[:at]
		switch {
		case !hasScheme || strings.ContainsAny(ui, "/?#"):
			b.WriteString(mask)
		default:
			if user, pw, ok := strings.Cut(ui, ":"); ok {
				b.WriteString(user)
				b.WriteByte(':')
				if pw != "" {
					b.WriteString(mask)
				}
			} else {
				b.WriteString(ui)
			}
		}
		b.WriteByte('@')
		rest = rest[at+1:]
	}
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	b.WriteString(maskBadPort(rest[:end]))
	rest = rest[end:]
	if q := strings.IndexByte(rest, '?'); q >= 0 {
		b.WriteString(rest[:q+1])
		rest = rest[q+1:]
		frag := ""
		if f := strings.IndexByte(rest, '#'); f >= 0 {
			rest, frag = rest[:f], rest[f:]
		}
		b.WriteString(redactQuery(rest))
		b.WriteString(frag)
	} else {
		b.WriteString(rest)
	}
	return b.String()
}

// maskBadPort masks the text after the last ':' of a host:port when it is
// not a number: it is then more likely a password than a port.
func maskBadPort(hostport string) string {
	i := strings.LastIndexByte(hostport, ':')
	if i < 0 || i < strings.LastIndexByte(hostport, ']') {
		return hostport
	}
	port := hostport[i+1:]
	if port == "" || allDigits(port) {
		return hostport
	}
	return hostport[:i+1] + mask
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
