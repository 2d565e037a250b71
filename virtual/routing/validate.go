package routing

import (
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/kombu-go/kombu/kombu/driver"
)

// MaxNameLen is the longest exchange name, queue name or routing key AMQP
// 0-9-1 can carry: a short string has a one-byte length.
const MaxNameLen = 255

// reservedPrefix starts the names only the broker may create.
const reservedPrefix = "amq."

// ValidateName checks an exchange name, queue name or routing key (kind is
// "exchange", "queue" or "routing key" and only labels the error): at most
// 255 bytes and valid UTF-8. The empty string is valid: it names the
// default exchange, asks for a server-named queue, or is an empty routing
// key. Errors wrap driver.ErrInvalidArgument.
func ValidateName(kind, name string) error {
	if len(name) > MaxNameLen {
		return fmt.Errorf("%w: %s %s is %d bytes long; AMQP allows at most %d",
			driver.ErrInvalidArgument, label(kind), quoteName(name), len(name), MaxNameLen)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w: %s %s is not valid UTF-8",
			driver.ErrInvalidArgument, label(kind), quoteName(name))
	}
	return nil
}

// ValidateExchangeDeclare checks the name of an exchange that a declaration
// is about to create. Besides ValidateName, it refuses what RabbitMQ
// refuses with 403 ACCESS_REFUSED, returning an error that wraps
// driver.ErrAccessRefused: the default exchange "" and names that start
// with "amq.".
//
// As in RabbitMQ, the reserved-name check applies only to creation: call it
// when the exchange does not exist yet and the declaration is not passive.
// Redeclaring an existing exchange (the predeclared amq.direct and friends
// included) and publishing to or binding to amq.* exchanges need only
// ValidateName.
func ValidateExchangeDeclare(name string) error {
	if err := ValidateName("exchange", name); err != nil {
		return err
	}
	if name == "" {
		return fmt.Errorf("%w: operation not permitted on the default exchange", driver.ErrAccessRefused)
	}
	if strings.HasPrefix(name, reservedPrefix) {
		return fmt.Errorf("%w: exchange name %s contains reserved prefix 'amq.*'",
			driver.ErrAccessRefused, quoteName(name))
	}
	return nil
}

// ValidateQueueDeclare checks the name of a queue that a declaration is
// about to create: ValidateName, and names that start with "amq." are
// refused with an error wrapping driver.ErrAccessRefused (RabbitMQ 403).
// The empty name is valid: the server generates one. As with
// ValidateExchangeDeclare, passive declarations and existing queues skip
// the reserved-prefix check.
func ValidateQueueDeclare(name string) error {
	if err := ValidateName("queue", name); err != nil {
		return err
	}
	if strings.HasPrefix(name, reservedPrefix) {
		return fmt.Errorf("%w: queue name %s contains reserved prefix 'amq.*'",
			driver.ErrAccessRefused, quoteName(name))
	}
	return nil
}

// label turns a kind into the subject of an error message.
func label(kind string) string {
	switch kind {
	case "":
		return "name"
	case "routing key":
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
