package transport

import (
	"net/url"

	"github.com/kombu-go/kombu/kombu/driver"
)

// NewTransport returns the driver.Transport a transport package registers:
// it describes itself with desc and turns a URL into a Connector with open,
// which parses and validates without I/O. Every transport package builds
// its Transport variable this way (docs/design.md, "Writing a transport").
func NewTransport(desc driver.Description, open func(u *url.URL) (driver.Connector, error)) driver.Transport {
	return &funcTransport{desc: desc, open: open}
}

type funcTransport struct {
	desc driver.Description
	open func(u *url.URL) (driver.Connector, error)
}

func (t *funcTransport) Describe() driver.Description { return t.desc }

func (t *funcTransport) OpenConnector(u *url.URL) (driver.Connector, error) { return t.open(u) }
