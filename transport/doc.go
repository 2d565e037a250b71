// Package transport finds the transport for a URL and parses URLs and
// their query options the same way for every transport.
//
// It holds the registry that maps URL schemes to driver.Transport values,
// the URL parser that package kombu and every transport use, and Query,
// which turns query options into typed values and reports unknown and
// invalid ones. It imports no transport.
//
// # URLs
//
// A URL has kombu's form:
//
//	scheme://[user[:password]@][host][:port][/path][?option=value&...]
//
// ParseURLs also takes a failover list, URLs separated by ';' as in
// kombu ("amqp://a;amqp://b"), and returns them in order; the elements
// may have different schemes. ParseURL takes exactly one URL.
//
// Reserved characters in a user name or password are %-encoded: the
// password p@ss:w/rd% is written p%40ss%3Aw%2Frd%25, and a ';' is written
// %3B. Host names are kept as given, unicode included; IPv6 addresses
// are written in brackets ([::1]:5672, [fe80::1%25eth0]).
//
// The path names the virtual host (or the database, for redis), with
// kombu's rules, which VirtualHost applies: "/" means the transport's
// default, "//" and "/%2f" mean "/", and "/a%2Fb" means "a/b". Port
// returns the port as a number, or a default.
//
// Invalid URLs give a *URLError, which wraps driver.ErrInvalidURL and
// never contains the password: the input is masked textually before any
// part of it goes into an error, even when it cannot be parsed at all.
// Redact formats a URL for logs, with the password (and the values of
// options that look like secrets) replaced by "**", as kombu's as_uri
// does.
//
// A transport's OpenConnector reads its options with Query:
//
//	q, err := transport.NewQuery(u)
//	if err != nil {
//		return nil, err
//	}
//	q.SetTransport("redis")
//	heartbeat := 60 * time.Second // the default
//	q.Duration("heartbeat", &heartbeat)
//	if err := q.Err(); err != nil { // invalid values, then unknown options
//		return nil, err
//	}
//
// Durations are seconds as in kombu ("30", "0.5") or Go durations
// ("1m30s").
//
// # Registering a transport
//
// A transport package registers itself for its schemes in an init
// function, the way database/sql drivers do:
//
//	func init() {
//		transport.Register("redis", Transport)
//		transport.Register("rediss", Transport)
//	}
//
// and a program selects it with a blank import:
//
//	import _ "github.com/kombu-go/kombu/transport/redis"
//
// Register panics on a nil transport and on an empty, invalid or
// duplicate scheme. Lookup finds the transport for a scheme; when none is
// registered, its error names the package whose import is probably
// missing and lists the schemes that are registered. Default is the
// registry that Register and Lookup use; tests may use their own from
// NewRegistry.
package transport
