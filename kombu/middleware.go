package kombu

// Middleware wraps a Handler with behaviour of its own (recovery,
// timeouts, retries, tracing...), in the style of net/http middleware.
// Package kombu/middleware has the standard set.
type Middleware func(Handler) Handler

// Chain wraps h in mw, the first one outermost: Chain(h, a, b) runs a,
// then b, then h. nil entries are skipped.
func Chain(h Handler, mw ...Middleware) Handler {
	for i := len(mw) - 1; i >= 0; i-- {
		if mw[i] != nil {
			h = mw[i](h)
		}
	}
	return h
}
