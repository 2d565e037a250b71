package redis

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/kombu-go/kombu/kombu/driver"
)

// bindingKeyPrefix is kombu's fixed prefix of binding tables.
const bindingKeyPrefix = "_kombu.binding."

// ownKeyPrefix starts every key kombu-go adds to Python kombu's; queue
// names cannot start with it.
const ownKeyPrefix = "_kombu_go."

// poisonKeyPrefix starts the poison list of each queue: where the bytes
// found in a queue that are not a kombu message go (see Store.Quarantine).
const poisonKeyPrefix = ownKeyPrefix + "poison."

// keys computes every redis key and pub/sub channel name from the options,
// global_keyprefix included.
type keys struct {
	prefix       string // global_keyprefix
	steps        []int
	unacked      string
	unackedIndex string
	unackedMutex string
	unackedQueue string
	fanoutPrefix string
	fanoutRK     bool // fanout_patterns
}

func newKeys(o *Options) *keys {
	p := o.GlobalKeyPrefix
	return &keys{
		prefix:       p,
		steps:        o.PrioritySteps,
		unacked:      p + o.UnackedKey,
		unackedIndex: p + o.UnackedIndexKey,
		unackedMutex: p + o.UnackedMutexKey,
		unackedQueue: p + o.UnackedQueueKey(),
		fanoutPrefix: o.FanoutPrefix,
		fanoutRK:     o.FanoutPatterns,
	}
}

// step rounds a priority down to its step, as kombu's bisect does.
func (k *keys) step(priority uint8) int {
	p := int(priority)
	if p > 9 {
		p = 9
	}
	s := k.steps[0]
	for _, st := range k.steps {
		if st <= p {
			s = st
		}
	}
	return s
}

// list is the (prefixed) list of queue at priority step st.
func (k *keys) list(queue string, st int) string {
	if st == 0 {
		return k.prefix + queue
	}
	return k.prefix + queue + Sep + strconv.Itoa(st)
}

// lists returns queue's lists, base list first.
func (k *keys) lists(queue string) []string {
	out := make([]string, len(k.steps))
	for i, st := range k.steps {
		out[i] = k.list(queue, st)
	}
	return out
}

// pollOrder returns the lists of queues in kombu's BRPOP order: by
// priority step first, then by queue. owner[i] is the index in queues of
// the queue that keys[i] belongs to.
func (k *keys) pollOrder(queues []string) (keys []string, owner []int) {
	keys = make([]string, 0, len(queues)*len(k.steps))
	owner = make([]int, 0, cap(keys))
	for _, st := range k.steps {
		for i, q := range queues {
			keys = append(keys, k.list(q, st))
			owner = append(owner, i)
		}
	}
	return keys, owner
}

// poison is the (prefixed) poison list of queue.
func (k *keys) poison(queue string) string {
	return k.prefix + poisonKeyPrefix + queue
}

// binding is the (prefixed) binding-table set of exchange.
func (k *keys) binding(exchange string) string {
	return k.prefix + bindingKeyPrefix + exchange
}

// bindingMember is a member of a binding table, byte-identical to kombu's.
func bindingMember(routingKey, pattern, queue string) string {
	return routingKey + Sep + pattern + Sep + queue
}

// splitBindingMember splits a binding-table member as Python's
// str.split(sep) does; members that do not have three fields are not
// kombu's and are ignored.
func splitBindingMember(m string) (rk, pattern, queue string, ok bool) {
	f := strings.Split(m, Sep)
	if len(f) != 3 {
		return "", "", "", false
	}
	return f[0], f[1], f[2], true
}

// fanoutChannel is the PUBLISH channel of a fanout message.
func (k *keys) fanoutChannel(exchange, routingKey string) string {
	if routingKey != "" && k.fanoutRK {
		return k.prefix + k.fanoutPrefix + exchange + "/" + routingKey
	}
	return k.prefix + k.fanoutPrefix + exchange
}

// fanoutPatterns are the PSUBSCRIBE patterns of a fanout binding: every
// channel of the exchange, /{db}.<exchange> and, when routing keys are part
// of channel names (fanout_patterns), /{db}.<exchange>/*. So a fanout queue
// receives every message of its exchange whatever the routing and binding
// keys, as on AMQP. (Python kombu subscribes to the channel of the binding
// key alone, "#" read as "*", so that a queue bound with "" misses messages
// published with a routing key.) Every part is glob-escaped, so that an
// exchange or prefix with glob characters cannot match other channels.
func (k *keys) fanoutPatterns(exchange string) []string {
	base := globEscape(k.prefix + k.fanoutPrefix + exchange)
	if k.fanoutRK {
		return []string{base, base + "/*"}
	}
	return []string{base}
}

func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		switch r {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// reserved reports whether a queue name would collide with one of the
// transport's own keys.
func (k *keys) reserved(queue string) bool {
	full := k.prefix + queue
	switch full {
	case k.unacked, k.unackedIndex, k.unackedMutex, k.unackedQueue:
		return true
	}
	return strings.HasPrefix(queue, bindingKeyPrefix) || strings.HasPrefix(queue, ownKeyPrefix)
}

// Name kinds that validateName understands. Other kinds get the general
// checks only.
const (
	kindQueue    = "queue"
	kindExchange = "exchange"
)

// validateName rejects names that would break kombu's key and member
// parsing: the separator bytes anywhere, and queue names that are the
// transport's own keys.
func (k *keys) validateName(kind, name string) error {
	if strings.ContainsAny(name, "\x06\x16") {
		return fmt.Errorf("%w: redis: %s name %q contains kombu's separator bytes \\x06\\x16", driver.ErrInvalidArgument, kind, name)
	}
	if kind == kindQueue && k.reserved(name) {
		return fmt.Errorf("%w: redis: queue name %q is one of the transport's own keys", driver.ErrInvalidArgument, name)
	}
	return nil
}

// validateFanout rejects fanout exchanges that kombu's channel parsing or
// PSUBSCRIBE globbing would misread: "/" (kombu takes the exchange up to
// the first "/") and glob characters.
func validateFanout(exchange string) error {
	if strings.ContainsAny(exchange, `/*?[]\`) {
		return fmt.Errorf("%w: redis: fanout exchange name %q must not contain / or glob characters * ? [ ] \\", driver.ErrInvalidArgument, exchange)
	}
	if strings.ContainsAny(exchange, "\x06\x16") {
		return fmt.Errorf("%w: redis: fanout names must not contain kombu's separator bytes", driver.ErrInvalidArgument)
	}
	return nil
}
