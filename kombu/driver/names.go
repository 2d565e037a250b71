package driver

import (
	"fmt"
	"unicode/utf8"
)

// MaxNameLen is the longest exchange name, queue name, routing key or
// consumer tag AMQP 0-9-1 can carry: a short string has a one-byte length.
const MaxNameLen = 255

// ValidateName is the one rule for the names kombu sends, on every
// transport: at most MaxNameLen bytes of valid UTF-8. RabbitMQ answers a
// name that breaks it by closing the whole connection (501 FRAME_ERROR),
// so every transport calls ValidateName before any I/O, for every queue
// name, exchange name, routing key and consumer tag it is given, and
// returns its error as is. kind ("queue", "exchange", "routing key",
// "consumer tag") only labels the error. The empty string is valid: it
// names the default exchange, asks for a server-named queue or a
// generated consumer tag, or is an empty routing key. Transports may
// refuse more (the redis transport refuses its separator bytes); errors
// wrap ErrInvalidArgument.
func ValidateName(kind, name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s %s is %d bytes long; AMQP allows at most %d",
			ErrInvalidArgument, nameLabel(kind), quoteName(name), len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s %s is not valid UTF-8",
			ErrInvalidArgument, nameLabel(kind), quoteName(name))
	}
	return nil
}

// nameLabel turns a kind into the subject of an error message.
func nameLabel(kind string) string {
	switch kind {
	case "":
		return "name"
	case "routing key", "consumer tag":
		return kind
	}
	return kind + " name"
}

// quoteName quotes name for an error message, cut to 64 bytes so that an
// oversized name does not flood logs.
func quoteName(name string) string {
	const max = 64
	if len(name) <= max {
		return fmt.Sprintf("%q", name)
	}
	return fmt.Sprintf("%q...", name[:max])
}
