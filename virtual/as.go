package virtual

import "github.com/kombu-go/kombu/kombu/driver"

var (
	_ driver.Aser = (*Conn)(nil)
	_ driver.Aser = (*Channel)(nil)
)

// As hands target to the Store when it implements driver.Aser: a virtual
// transport's escape hatch is its Store's client.
func (c *Conn) As(target any) bool {
	a, ok := c.store.(driver.Aser)
	return ok && a.As(target)
}

// As hands target to the Store, as Conn.As does.
func (ch *Channel) As(target any) bool {
	a, ok := ch.store.(driver.Aser)
	return ok && a.As(target)
}
