// Package routing implements AMQP exchange routing for the virtual
// transports (today redis and memory): given an exchange type and its
// bindings, which queues a publish goes to. It also holds the name checks
// that make the virtual transports accept and refuse the same names as
// RabbitMQ. It runs on every publish, so matching does not allocate.
//
// # Topic matching: AMQP, not kombu's regex
//
// Python kombu's virtual transports turn a topic binding key into a regular
// expression ('*' becomes `.*?[^\.]`, '#' becomes `.*?`) and route with
// re.match. That only approximates AMQP topic semantics:
//
//   - kombu's '*' matches one or more characters that may include dots, so
//     "a.*.c" matches "a.b.x.c"; in AMQP '*' is exactly one word.
//   - kombu's "a.#" requires the dot, so it does not match "a"; in AMQP '#'
//     matches zero or more words, so it does.
//   - kombu reads a word such as "a*" as a regex ("a" repeated); in AMQP '*'
//     and '#' are wildcards only as whole words, so "a*" is a literal word.
//
// This package matches as RabbitMQ does (TopicMatch, Topic): words are
// separated by '.', empty words are words ("a..b" has three), the empty
// key has no words, '*' matches exactly one word and '#' zero or more.
// kombu-go offers the same Go API over AMQP and over the virtual
// transports, and an application must not route differently when it
// switches from amqp:// to redis://; RabbitMQ's behaviour is also the one
// documented and tested across AMQP clients, while kombu's differs only
// where it is arguably a bug.
//
// Interoperability is kept where it is visible on the wire: when a binding
// is stored (the redis binding set, §3.4 of the wire format), the pattern
// field must be kombu's regex byte for byte so that Python can find and
// delete it, and KombuTopicPattern produces it. A Python producer that
// publishes to the same exchange still routes with its regex, so the two
// languages disagree only on the keys listed above.
//
// # Headers matching
//
// HeadersMatch follows RabbitMQ 3.10+: x-match "all" (default), "any",
// "all-with-x" and "any-with-x"; a nil binding value tests presence only;
// values compare across Go numeric types and between string and []byte.
//
// # Router
//
// Router routes direct, topic, fanout and headers exchanges, returns each
// queue once in the order of its first matching binding, and caches
// compiled topic binding keys. RouteAppend lets a caller reuse a slice.
package routing
