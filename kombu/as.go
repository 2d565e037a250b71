package kombu

import "github.com/kombu-go/kombu/kombu/driver"

// As reaches the client library beneath the connection: target must be a
// pointer to a type the transport documents (each transport's package doc
// lists them; for example **amqp091.Connection on amqp://, *redis.UniversalClient
// on redis://). As reports whether it set *target; it is false while the
// Connection is not connected and for types the transport does not offer.
// The value stays owned by the Connection: do not close it, and fetch it
// again after a reconnect.
func (c *Connection) As(target any) bool {
	c.mu.Lock()
	conn := c.conn
	c.mu.Unlock()
	a, ok := conn.(driver.Aser)
	return ok && a.As(target)
}

// As reaches the client library beneath the channel, as Connection.As
// does for the connection (for example **amqp091.Channel on amqp://). The
// value stays owned by the Channel: do not close it.
func (ch *Channel) As(target any) bool {
	a, ok := ch.drv.(driver.Aser)
	return ok && a.As(target)
}
