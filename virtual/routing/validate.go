package routing

import (
	"fmt"
	"strings"

	"github.com/kombu-go/kombu/kombu/driver"
)

// reservedPrefix starts the names only the broker may create.
const reservedPrefix = "amq."

// ValidateExchangeDeclare checks the name of an exchange that a declaration
// is about to create. Besides driver.ValidateName, it refuses what RabbitMQ
// refuses with 403 ACCESS_REFUSED, returning an error that wraps
// driver.ErrAccessRefused: the default exchange "" and names that start
// with "amq.".
//
// As in RabbitMQ, the reserved-name check applies only to creation: call it
// when the exchange does not exist yet and the declaration is not passive.
// Redeclaring an existing exchange (the predeclared amq.direct and friends
// included) and publishing to or binding to amq.* exchanges need only
// driver.ValidateName.
func ValidateExchangeDeclare(name string) error {
	if err := driver.ValidateName("exchange", name); err != nil {
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
// about to create: driver.ValidateName, and names that start with "amq." are
// refused with an error wrapping driver.ErrAccessRefused (RabbitMQ 403).
// The empty name is valid: the server generates one. As with
// ValidateExchangeDeclare, passive declarations and existing queues skip
// the reserved-prefix check.
func ValidateQueueDeclare(name string) error {
	if err := driver.ValidateName("queue", name); err != nil {
		return err
	}
	if strings.HasPrefix(name, reservedPrefix) {
		return fmt.Errorf("%w: queue name %s contains reserved prefix 'amq.*'",
			driver.ErrAccessRefused, quoteName(name))
	}
	return nil
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
