package couchdb

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"strings"
	"sync"
	"time"
)

// Document kinds, the value of every kombu document's "kombu" field.
const (
	kindMessage     = "message"
	kindQueue       = "queue"
	kindBinding     = "binding"
	kindQuarantined = "quarantined"
)

// Document id prefixes: the id says what a document is and, for messages,
// which queue it belongs to, so that the _changes feed (ids only) tells
// which queues to wake. A message id is "m:QUEUE:D:TIME" with D = 9 minus
// the priority: _all_docs over "m:QUEUE:" lists a queue highest priority
// first, then in publish order, with no view to maintain.
const (
	messagePrefix = "m:"
	queuePrefix   = "q:"
	bindingPrefix = "b:"
)

// messageDoc is a message as stored. payload is kombu's JSON envelope as
// a string, under the field names Python kombu 3's couchdb transport used
// (queue, payload); the other fields are this transport's.
type messageDoc struct {
	ID       string `json:"_id"`
	Rev      string `json:"_rev,omitempty"`
	Kind     string `json:"kombu"`
	Queue    string `json:"queue"`
	Priority int    `json:"priority"`
	// Payload is kept raw: a document written by someone else may hold
	// anything there, and the consumer must see it to report it.
	Payload json.RawMessage `json:"payload"`
	// Expires is the end of the message's TTL in unix ms (0: never).
	Expires int64 `json:"expires,omitempty"`
	// Lease is the end of the current claim in unix ms (0: ready).
	Lease int64 `json:"lease"`
	// Owner names the store holding the claim (diagnostics only).
	Owner       string `json:"owner,omitempty"`
	Redelivered bool   `json:"redelivered,omitempty"`
	// Quarantine fields, set when an undecodable message is set aside.
	QuarantinedAt int64  `json:"quarantined_at,omitempty"`
	Reason        string `json:"reason,omitempty"`
}

type queueDoc struct {
	ID    string `json:"_id"`
	Kind  string `json:"kombu"`
	Queue string `json:"queue"`
}

type bindingDoc struct {
	ID         string `json:"_id"`
	Rev        string `json:"_rev,omitempty"`
	Kind       string `json:"kombu"`
	Exchange   string `json:"exchange"`
	RoutingKey string `json:"routing_key"`
	Pattern    string `json:"pattern"`
	Queue      string `json:"queue"`
}

// escapeName makes a queue or exchange name safe inside an id: bytes
// other than [A-Za-z0-9._-] become %XX, so ':' separates fields
// unambiguously and ids stay readable for ordinary names.
func escapeName(name string) string {
	const hexdigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexdigits[c>>4])
		b.WriteByte(hexdigits[c&15])
	}
	return b.String()
}

func unescapeName(s string) (string, bool) {
	if !strings.Contains(s, "%") {
		return s, true
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			out = append(out, s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", false
		}
		v, err := hex.DecodeString(s[i+1 : i+3])
		if err != nil {
			return "", false
		}
		out = append(out, v[0])
		i += 2
	}
	return string(out), true
}

func queueDocID(queue string) string { return queuePrefix + escapeName(queue) }

// messageIDPrefix starts the id of every message of queue.
func messageIDPrefix(queue string) string { return messagePrefix + escapeName(queue) + ":" }

func bindingIDPrefix(exchange string) string { return bindingPrefix + escapeName(exchange) + ":" }

func bindingDocID(exchange, routingKey, pattern, queue string) string {
	h := sha1.Sum([]byte(routingKey + "\x00" + pattern + "\x00" + queue))
	return bindingIDPrefix(exchange) + hex.EncodeToString(h[:])
}

// queueOfMessageID returns the queue of a message id, for the _changes
// feed.
func queueOfMessageID(id string) (string, bool) {
	rest, ok := strings.CutPrefix(id, messagePrefix)
	if !ok {
		return "", false
	}
	for range 2 { // the time, then the priority digit
		i := strings.LastIndexByte(rest, ':')
		if i < 0 {
			return "", false
		}
		rest = rest[:i]
	}
	return unescapeName(rest)
}

// idClock hands out increasing message-id suffixes: unix ns, bumped past
// the last one so that one process's messages never tie, then a random
// suffix per process so that two processes never collide.
type idClock struct {
	mu   sync.Mutex
	last int64
	tail string
}

func newIDClock() *idClock {
	var b [4]byte
	// Random per store: two stores stamping the same nanosecond differ.
	_, _ = rand.Read(b[:])
	return &idClock{tail: hex.EncodeToString(b[:])}
}

// next returns the id of a new message of queue at priority (0-9, higher
// first). Ids of one queue and priority sort in the order next was called
// (then by time across processes).
func (c *idClock) next(queue string, priority int) string {
	c.mu.Lock()
	n := time.Now().UnixNano()
	if n <= c.last {
		n = c.last + 1
	}
	c.last = n
	c.mu.Unlock()
	var ts [8]byte
	for i := range ts {
		ts[7-i] = byte(n >> (8 * i))
	}
	priority = max(0, min(priority, 9))
	return messageIDPrefix(queue) + string(rune('9'-priority)) + ":" + hex.EncodeToString(ts[:]) + c.tail
}
