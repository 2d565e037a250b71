package transport_test

import (
	"context"
	"crypto/tls"
	"net/url"
	"testing"

	"github.com/kombu-go/kombu/kombu"
	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/transport"
	"github.com/kombu-go/kombu/transport/amqp"
	"github.com/kombu-go/kombu/transport/beanstalk"
	"github.com/kombu-go/kombu/transport/couchdb"
	"github.com/kombu-go/kombu/transport/memory"
	"github.com/kombu-go/kombu/transport/mongodb"
	"github.com/kombu-go/kombu/transport/postgres"
	"github.com/kombu-go/kombu/transport/redis"
	"github.com/kombu-go/kombu/transport/sqlite"
	"github.com/kombu-go/kombu/transport/sqs"
)

// Every transport package exports the same shape (docs/design.md, "Writing
// a transport"): Description, Transport, Options, ParseURL, NewConnector and
// a *Connector that is a driver.Connector and driver.Describer with an
// Options accessor. This fails to compile when a package drifts.
var (
	_ func(*url.URL) (*memory.Options, error) = memory.ParseURL
	_ func(*memory.Options) *memory.Connector = memory.NewConnector
	_ func(*memory.Connector) *memory.Options = (*memory.Connector).Options
	_ driverConnector                         = (*memory.Connector)(nil)

	_ func(*url.URL) (*redis.Options, error) = redis.ParseURL
	_ func(*redis.Options) *redis.Connector  = redis.NewConnector
	_ func(*redis.Connector) *redis.Options  = (*redis.Connector).Options
	_ driverConnector                        = (*redis.Connector)(nil)

	_ func(*url.URL) (*amqp.Options, error) = amqp.ParseURL
	_ func(*amqp.Options) *amqp.Connector   = amqp.NewConnector
	_ func(*amqp.Connector) *amqp.Options   = (*amqp.Connector).Options
	_ driverConnector                       = (*amqp.Connector)(nil)

	_ func(*url.URL) (*beanstalk.Options, error)    = beanstalk.ParseURL
	_ func(*beanstalk.Options) *beanstalk.Connector = beanstalk.NewConnector
	_ func(*beanstalk.Connector) *beanstalk.Options = (*beanstalk.Connector).Options
	_ driverConnector                               = (*beanstalk.Connector)(nil)
	_ func(*url.URL) (*couchdb.Options, error)      = couchdb.ParseURL
	_ func(*couchdb.Options) *couchdb.Connector     = couchdb.NewConnector
	_ func(*couchdb.Connector) *couchdb.Options     = (*couchdb.Connector).Options
	_ driverConnector                               = (*couchdb.Connector)(nil)
	_ func(*url.URL) (*sqs.Options, error)          = sqs.ParseURL
	_ func(*sqs.Options) *sqs.Connector             = sqs.NewConnector
	_ func(*sqs.Connector) *sqs.Options             = (*sqs.Connector).Options
	_ driverConnector                               = (*sqs.Connector)(nil)
	_ func(*url.URL) (*mongodb.Options, error)      = mongodb.ParseURL
	_ func(*mongodb.Options) *mongodb.Connector     = mongodb.NewConnector
	_ func(*mongodb.Connector) *mongodb.Options     = (*mongodb.Connector).Options
	_ driverConnector                               = (*mongodb.Connector)(nil)
	_ func(*url.URL) (*postgres.Options, error)     = postgres.ParseURL
	_ func(*postgres.Options) *postgres.Connector   = postgres.NewConnector
	_ func(*postgres.Connector) *postgres.Options   = (*postgres.Connector).Options
	_ driverConnector                               = (*postgres.Connector)(nil)

	_ func(*url.URL) (*sqlite.Options, error) = sqlite.ParseURL
	_ func(*sqlite.Options) *sqlite.Connector = sqlite.NewConnector
	_ func(*sqlite.Connector) *sqlite.Options = (*sqlite.Connector).Options
	_ driverConnector                         = (*sqlite.Connector)(nil)
)

type driverConnector interface {
	driver.Connector
	driver.Describer
}

// Each transport's Transport is what its schemes resolve to, describes
// itself as its Description, and a Connector built without the registry
// plugs into kombu with the same name and features.
func TestOneShapeForEveryTransport(t *testing.T) {
	cases := []struct {
		schemes   []string
		transport driver.Transport
		desc      driver.Description
		connector driverConnector
		url       string
	}{
		{[]string{"memory"}, memory.Transport, memory.Description, memory.NewConnector(&memory.Options{Broker: "shape"}), "memory://shape"},
		{[]string{"redis", "rediss", "sentinel"}, redis.Transport, redis.Description, mustRedis(t), "redis://127.0.0.1:6379/0"},
		{[]string{"amqp", "amqps", "pyamqp"}, amqp.Transport, amqp.Description, mustAMQP(t), "amqp://guest:guest@localhost:5672//"},
		{[]string{"beanstalk"}, beanstalk.Transport, beanstalk.Description, beanstalk.NewConnector(nil), "beanstalk://127.0.0.1:11300"},
		{[]string{"couchdb", "couchdbs"}, couchdb.Transport, couchdb.Description, mustCouchDB(t), "couchdb://127.0.0.1:5984/kombu"},
		{[]string{"sqs"}, sqs.Transport, sqs.Description, mustSQS(t), "sqs://key:secret@127.0.0.1:4566?is_secure=false"},
		{[]string{"mongodb", "mongodb+srv"}, mongodb.Transport, mongodb.Description, mustMongoDB(t), "mongodb://127.0.0.1:27017/kombu_default"},
		{[]string{"postgres", "postgresql", "sqla+postgresql", "sqlalchemy+postgresql"}, postgres.Transport, postgres.Description, mustPostgres(t), "sqla+postgresql://u@localhost/db"},
		{[]string{"sqlite", "sqla+sqlite", "sqlalchemy+sqlite"}, sqlite.Transport, sqlite.Description, mustSQLite(t), "sqlite:///shape.db"},
	}
	for _, c := range cases {
		for _, s := range c.schemes {
			got, err := transport.Lookup(s)
			if err != nil || got != c.transport {
				t.Errorf("%s:// resolves to %v (%v), not the package's Transport", s, got, err)
			}
		}
		if d := c.transport.(driver.Describer).Describe(); d.Name != c.desc.Name {
			t.Errorf("%s: Transport describes itself as %q", c.desc.Name, d.Name)
		}
		if d := c.connector.Describe(); d.Name != c.desc.Name || d.DefaultPort != c.desc.DefaultPort {
			t.Errorf("%s: Connector describes itself as %+v", c.desc.Name, d)
		}
		u, _ := url.Parse(c.url)
		cn, err := c.transport.OpenConnector(u)
		if err != nil {
			t.Fatalf("%s: OpenConnector: %v", c.desc.Name, err)
		}
		if _, ok := cn.(driverConnector); !ok {
			t.Errorf("%s: OpenConnector returns %T, not the package's Connector", c.desc.Name, cn)
		}
		conn := kombu.NewConnectionFromConnector(c.connector, nil)
		info := conn.Info()
		if info.Transport != c.desc.Name || info.Features.Priority != c.desc.Features.Priority {
			t.Errorf("%s: a Connection from the Connector reports %+v", c.desc.Name, info)
		}
		_ = conn.Close()
	}
	// The memory connector works end to end without the registry.
	conn := kombu.NewConnectionFromConnector(memory.NewConnector(&memory.Options{Broker: "shape"}), nil)
	defer conn.Close()
	ctx := context.Background()
	sq, err := conn.SimpleQueue(ctx, "shape", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := sq.Put(ctx, "hi", nil); err != nil {
		t.Fatal(err)
	}
	if n, err := sq.Len(ctx); err != nil || n != 1 {
		t.Fatalf("Len = %d, %v", n, err)
	}
	var anything *int
	if conn.As(&anything) {
		t.Fatal("memory:// has no client beneath, yet Connection.As succeeded")
	}
}

func mustRedis(t *testing.T) *redis.Connector {
	o, err := redis.ParseURL(&url.URL{Scheme: "redis", Host: "127.0.0.1:6379", Path: "/0"})
	if err != nil {
		t.Fatal(err)
	}
	return redis.NewConnector(o)
}

func mustSQS(t *testing.T) *sqs.Connector {
	o, err := sqs.ParseURL(&url.URL{Scheme: "sqs"})
	if err != nil {
		t.Fatal(err)
	}
	return sqs.NewConnector(o)
}

func mustAMQP(t *testing.T) *amqp.Connector {
	o, err := amqp.ParseURL(&url.URL{Scheme: "amqp", Host: "localhost"})
	if err != nil {
		t.Fatal(err)
	}
	return amqp.NewConnector(o)
}

func mustCouchDB(t *testing.T) *couchdb.Connector {
	o, err := couchdb.ParseURL(&url.URL{Scheme: "couchdb", Host: "127.0.0.1:5984"})
	if err != nil {
		t.Fatal(err)
	}
	return couchdb.NewConnector(o)
}

func mustMongoDB(t *testing.T) *mongodb.Connector {
	o, err := mongodb.ParseURL(&url.URL{Scheme: "mongodb", Host: "127.0.0.1:27017"})
	if err != nil {
		t.Fatal(err)
	}
	return mongodb.NewConnector(o)
}

func mustPostgres(t *testing.T) *postgres.Connector {
	o, err := postgres.ParseURL(&url.URL{Scheme: "postgres", Host: "localhost", Path: "/db"})
	if err != nil {
		t.Fatal(err)
	}
	return postgres.NewConnector(o)
}

func mustSQLite(t *testing.T) *sqlite.Connector {
	o, err := sqlite.ParseURL(&url.URL{Scheme: "sqlite", Path: "/shape.db"})
	if err != nil {
		t.Fatal(err)
	}
	return sqlite.NewConnector(o)
}

// The TLS options mean the same on every scheme that speaks TLS: one
// reader (transport.Query.TLS) parses them all.
func TestTLSOptionsSameOnEveryScheme(t *testing.T) {
	queries := []string{
		"ssl_cert_reqs=optional",
		"ssl_cert_reqs=CERT_NONE",
		"insecure=true",
		"ssl_check_hostname=false",
		"ssl_server_hostname=broker.example",
		"ssl=true",
	}
	for _, q := range queries {
		ao, aerr := amqp.ParseURL(mustURL(t, "amqp://h/?"+q))
		ro, rerr := redis.ParseURL(mustURL(t, "redis://h/0?"+q))
		mo, merr := mongodb.ParseURL(mustURL(t, "mongodb://h/db?"+q))
		if aerr != nil || rerr != nil || merr != nil {
			t.Errorf("%s: amqp %v, redis %v, mongodb %v", q, aerr, rerr, merr)
			continue
		}
		a, r, m := ao.TLS, ro.TLS, mo.TLS
		if a == nil || r == nil || m == nil {
			t.Errorf("%s does not turn TLS on everywhere: amqp %v redis %v mongodb %v", q, a != nil, r != nil, m != nil)
			continue
		}
		for _, o := range []*tls.Config{r, m} {
			if a.InsecureSkipVerify != o.InsecureSkipVerify || (a.VerifyConnection == nil) != (o.VerifyConnection == nil) ||
				a.ServerName != o.ServerName || a.MinVersion != o.MinVersion {
				t.Errorf("%s: amqp and redis or mongodb differ: %+v / %+v", q, a, o)
			}
		}
	}
	for _, bad := range []string{"ssl_cert_reqs=sometimes", "ssl=false&ssl_ca_certs=/x"} {
		_, aerr := amqp.ParseURL(mustURL(t, "amqp://h/?"+bad))
		_, rerr := redis.ParseURL(mustURL(t, "redis://h/0?"+bad))
		_, merr := mongodb.ParseURL(mustURL(t, "mongodb://h/db?"+bad))
		if aerr == nil || rerr == nil || merr == nil {
			t.Errorf("%s accepted: amqp %v, redis %v, mongodb %v", bad, aerr, rerr, merr)
		}
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
