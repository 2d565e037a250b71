package faulttest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Header names that carry a message's run id and sequence number. The body
// carries both too ("RUN/SEQ"), so a message is recognised even where a
// transport or a bug drops headers, and a header that disagrees with the
// body marks the message as unexpected.
const (
	HeaderRun = "x-fault-run"
	HeaderSeq = "x-fault-seq"
)

// Ledger counts every message of one run by sequence number: publish calls
// and their outcome, deliveries with their redelivered flag, and acks (H3).
// It is safe for concurrent use.
type Ledger struct {
	run string
	n   int

	mu           sync.Mutex
	attempts     []int32 // publish calls per seq
	published    []bool  // a publish call returned nil: the broker has it
	ambiguous    []int32 // failed publish calls that may have stored it anyway
	delivered    []int32 // deliveries per seq
	redelivered  []int32 // deliveries flagged redelivered
	acked        []int32 // acks that returned nil
	unexpected   int
	unexpectedEx []string // a few examples, for the failure message
	errs         map[string]int
	firstErr     map[string]string // class -> the first error of that class

	nPublished   atomic.Int64 // seqs with a successful publish
	nDelivered   atomic.Int64 // seqs delivered at least once
	nAcked       atomic.Int64 // seqs acked at least once
	lastDelivery atomic.Int64 // unix nanoseconds
}

// NewLedger returns a ledger for messages 0..n-1 under a new random run id.
func NewLedger(n int) *Ledger {
	if n <= 0 {
		panic("faulttest: NewLedger needs n > 0")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &Ledger{
		run: hex.EncodeToString(b[:]), n: n,
		attempts: make([]int32, n), published: make([]bool, n), ambiguous: make([]int32, n),
		delivered: make([]int32, n), redelivered: make([]int32, n), acked: make([]int32, n),
		errs: map[string]int{}, firstErr: map[string]string{},
	}
}

// Run is the run id every message of this ledger carries.
func (l *Ledger) Run() string { return l.run }

// Total is the number of messages of the run.
func (l *Ledger) Total() int { return l.n }

// Body is the body of message seq: "RUN/SEQ".
func (l *Ledger) Body(seq int) []byte { return []byte(l.run + "/" + strconv.Itoa(seq)) }

// Headers are the headers of message seq.
func (l *Ledger) Headers(seq int) map[string]any {
	return map[string]any{HeaderRun: l.run, HeaderSeq: int64(seq)}
}

// Seq identifies a received message: ok only when the body names this run
// and a seq in range, and the headers, when present, agree with it.
func (l *Ledger) Seq(headers map[string]any, body []byte) (seq int, ok bool) {
	run, s, found := strings.Cut(string(body), "/")
	if !found || run != l.run {
		return 0, false
	}
	seq, err := strconv.Atoi(s)
	if err != nil || seq < 0 || seq >= l.n || strconv.Itoa(seq) != s {
		return 0, false
	}
	if hr, present := headers[HeaderRun]; present && hr != l.run {
		return 0, false
	}
	if hs, present := headers[HeaderSeq]; present {
		if v, isInt := headerInt(hs); !isInt || v != int64(seq) {
			return 0, false
		}
	}
	return seq, true
}

// headerInt reads an integer header as the transports return it: int64 over
// AMQP, a JSON number (float64) over the virtual transports.
func headerInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int8:
		return int64(x), true
	case int16:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case uint8:
		return int64(x), true
	case uint16:
		return int64(x), true
	case uint32:
		return int64(x), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		return n, err == nil
	}
	return 0, false
}

// ErrorClassifier names the class of an error for the tallies, and says
// whether the failed publish may still have reached the broker. Only a
// failure that proves the message never left (the connection was gone
// before it was written) is unambiguous.
type ErrorClassifier func(err error) (class string, ambiguous bool)

// DefaultClassifier treats every publish failure as ambiguous: without
// knowing the library's errors, none proves the message was not stored.
func DefaultClassifier(err error) (string, bool) {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "context", true
	}
	return "error", true
}

// Publish records the outcome of one publish call for seq: err == nil means
// the broker acknowledged it (a confirm, a command OK).
func (l *Ledger) Publish(seq int, err error, classify ErrorClassifier) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts[seq]++
	if err == nil {
		if !l.published[seq] {
			l.published[seq] = true
			l.nPublished.Add(1)
		}
		return
	}
	if classify == nil {
		classify = DefaultClassifier
	}
	class, amb := classify(err)
	l.countErr("publish: "+class, err)
	if amb {
		l.ambiguous[seq]++
	}
}

// Delivery records a delivery and returns its seq; ok is false for a message
// that is not of this run (counted as unexpected).
func (l *Ledger) Delivery(headers map[string]any, body []byte, redelivered bool) (seq int, ok bool) {
	l.lastDelivery.Store(time.Now().UnixNano())
	seq, ok = l.Seq(headers, body)
	l.mu.Lock()
	defer l.mu.Unlock()
	if !ok {
		l.unexpected++
		if len(l.unexpectedEx) < 5 {
			l.unexpectedEx = append(l.unexpectedEx, fmt.Sprintf("%.60q", body))
		}
		return 0, false
	}
	l.delivered[seq]++
	if l.delivered[seq] == 1 {
		l.nDelivered.Add(1)
	}
	if redelivered {
		l.redelivered[seq]++
	}
	return seq, true
}

// Ack records the outcome of acking a delivery of seq.
func (l *Ledger) Ack(seq int, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.countErr("ack: error", err)
		return
	}
	l.acked[seq]++
	if l.acked[seq] == 1 {
		l.nAcked.Add(1)
	}
}

// Error tallies an error seen outside publish and ack (receive, reconnect).
func (l *Ledger) Error(where string, err error) {
	if err == nil {
		return
	}
	l.mu.Lock()
	l.countErr(where, err)
	l.mu.Unlock()
}

// countErr tallies err under class; called with l.mu held.
func (l *Ledger) countErr(class string, err error) {
	l.errs[class]++
	if _, seen := l.firstErr[class]; !seen {
		l.firstErr[class] = err.Error()
	}
}

// Published counts the messages a publish call succeeded for.
func (l *Ledger) Published() int64 { return l.nPublished.Load() }

// Delivered counts the messages delivered at least once.
func (l *Ledger) Delivered() int64 { return l.nDelivered.Load() }

// Acked counts the messages acked at least once.
func (l *Ledger) Acked() int64 { return l.nAcked.Load() }

// Missing counts the messages published but not delivered yet.
func (l *Ledger) Missing() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for seq, p := range l.published {
		if p && l.delivered[seq] == 0 {
			n++
		}
	}
	return n
}

// LastDelivery is the time of the latest delivery (zero before the first).
func (l *Ledger) LastDelivery() time.Time {
	ns := l.lastDelivery.Load()
	if ns == 0 {
		return time.Time{}
	}
	return time.Unix(0, ns)
}

// Result is the Jepsen-style total-queue check of a run.
type Result struct {
	Total      int // messages of the run
	Attempts   int // publish calls
	Published  int // messages a publish call succeeded for
	Ambiguous  int // failed publish calls that may have stored the message
	Delivered  int // messages delivered at least once
	Acked      int // messages acked at least once
	Lost       int // published, never delivered
	Unexpected int // deliveries of messages this run never published
	// Duplicated counts deliveries beyond the first. A duplicate is
	// explained when it is flagged redelivered or follows an ambiguous
	// publish (the retry stored a second copy); Unexplained counts the rest.
	Duplicated  int
	Unexplained int
	// Recovered counts messages whose every publish call failed but which
	// were delivered anyway (the broker had them: an ambiguous failure).
	Recovered int
	// NeverSent counts messages never published successfully nor delivered
	// (the test gave up on them; not a loss, but reported).
	NeverSent        int
	LostSeqs         []int             // up to 20
	Errors           map[string]int    // error tallies by class
	FirstErrors      map[string]string // the first error of each class, for the log
	UnexpectedBodies []string          // up to 5 bodies of unexpected deliveries
}

// Check compares what was published with what was delivered. Call it after
// the drain, when nothing is in flight.
func (l *Ledger) Check() Result {
	l.mu.Lock()
	defer l.mu.Unlock()
	r := Result{Total: l.n, Unexpected: l.unexpected, Errors: map[string]int{}, FirstErrors: map[string]string{}}
	for k, v := range l.errs {
		r.Errors[k] = v
		r.FirstErrors[k] = l.firstErr[k]
	}
	r.UnexpectedBodies = append(r.UnexpectedBodies, l.unexpectedEx...)
	for seq := range l.n {
		d := int(l.delivered[seq])
		r.Attempts += int(l.attempts[seq])
		r.Ambiguous += int(l.ambiguous[seq])
		if l.published[seq] {
			r.Published++
		}
		if d > 0 {
			r.Delivered++
		}
		if l.acked[seq] > 0 {
			r.Acked++
		}
		switch {
		case l.published[seq] && d == 0:
			r.Lost++
			if len(r.LostSeqs) < 20 {
				r.LostSeqs = append(r.LostSeqs, seq)
			}
		case !l.published[seq] && d > 0:
			r.Recovered++
		case !l.published[seq] && d == 0:
			r.NeverSent++
		}
		if d > 1 {
			r.Duplicated += d - 1
			// Deliveries without the redelivered flag are fresh copies:
			// one is the original, each further one needs an ambiguous
			// publish to explain it.
			fresh := d - int(l.redelivered[seq])
			if extra := fresh - 1 - int(l.ambiguous[seq]); extra > 0 {
				r.Unexplained += extra
			}
		}
	}
	return r
}

// OK is the pass criterion shared by every fault test: nothing lost, nothing
// unexpected.
func (r Result) OK() bool { return r.Lost == 0 && r.Unexpected == 0 }

// String is the one-line figure of the run.
func (r Result) String() string {
	return fmt.Sprintf("published %d/%d (%d calls, %d ambiguous), delivered %d, lost %d, dup %d (unexplained %d), unexpected %d, recovered %d",
		r.Published, r.Total, r.Attempts, r.Ambiguous, r.Delivered, r.Lost, r.Duplicated, r.Unexplained, r.Unexpected, r.Recovered)
}

// ErrorTally formats the error tallies, sorted by class.
func (r Result) ErrorTally() string {
	if len(r.Errors) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, r.Errors[k])
	}
	return strings.Join(parts, ", ")
}
