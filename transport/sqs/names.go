package sqs

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// maxQueueNameLen is SQS's limit on queue names (".fifo" included).
const maxQueueNameLen = 80

const fifoSuffix = ".fifo"

// QueueName returns the SQS name of kombu queue name under prefix, with
// Python kombu's translation (entity_name): '.' becomes '-', every other
// punctuation character but '-' and '_' becomes '_', and a ".fifo" suffix
// is kept. Unlike kombu it also turns spaces, control and non-ASCII
// characters into '_' (SQS refuses them, so kombu's names with them never
// worked), and it shortens a name longer than SQS's 80 characters to its
// first characters plus a hash of the whole name, so that long AMQP names
// still get distinct queues. Names kombu can use on SQS translate exactly
// as kombu translates them.
func QueueName(prefix, name string) string {
	full := prefix + name
	base, fifo := full, ""
	if strings.HasSuffix(full, fifoSuffix) {
		base, fifo = full[:len(full)-len(fifoSuffix)], fifoSuffix
	}
	var b strings.Builder
	b.Grow(len(base) + len(fifo))
	for _, r := range base {
		switch {
		case r == '.':
			b.WriteByte('-')
		case r == '-' || r == '_' || r < 0x80 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'):
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	out := b.String()
	if len(out)+len(fifo) > maxQueueNameLen {
		sum := sha256.Sum256([]byte(full))
		tag := "-" + hex.EncodeToString(sum[:6])
		out = out[:maxQueueNameLen-len(fifo)-len(tag)] + tag
	}
	return out + fifo
}

// isFIFO reports whether kombu queue name is a FIFO queue.
func isFIFO(name string) bool { return strings.HasSuffix(name, fifoSuffix) }
