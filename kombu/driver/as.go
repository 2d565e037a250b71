package driver

// Aser is implemented by a Conn or Channel that lets users reach the client
// library beneath it (the escape hatch of gocloud.dev's As methods). As
// sets *target and returns true when target is a pointer to a type the
// transport documents (for example **amqp091.Channel); otherwise it leaves
// target alone and returns false. What it hands out stays owned by the
// transport: callers must not close it.
type Aser interface {
	As(target any) bool
}
