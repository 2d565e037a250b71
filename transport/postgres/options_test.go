package postgres

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func TestParseURL(t *testing.T) {
	for _, c := range []struct {
		raw        string
		host, db   string
		port       uint16
		vt         time.Duration
		queueTable string
	}{
		{"postgres://u:pw@db.example:6543/app", "db.example", "app", 6543, DefaultVisibilityTimeout, "kombu_queue"},
		{"postgresql:///app", "127.0.0.1", "app", 5432, DefaultVisibilityTimeout, "kombu_queue"},
		{"sqla+postgresql://u@h/app?visibility_timeout=10&queue_tablename=q2", "h", "app", 5432, 10 * time.Second, "q2"},
		{"sqlalchemy+postgresql://u@h/app?sslmode=disable&application_name=x", "h", "app", 5432, DefaultVisibilityTimeout, "kombu_queue"},
		{"sqla+postgresql+psycopg2://u@h/app", "h", "app", 5432, DefaultVisibilityTimeout, "kombu_queue"},
	} {
		u, _ := url.Parse(c.raw)
		o, err := ParseURL(u)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if o.Config.Host != c.host || o.Config.Database != c.db || o.Config.Port != c.port || o.VisibilityTimeout != c.vt || o.QueueTable != c.queueTable {
			t.Errorf("%s: host %s db %s port %d vt %v table %s", c.raw, o.Config.Host, o.Config.Database, o.Config.Port, o.VisibilityTimeout, o.QueueTable)
		}
	}
	for _, bad := range []string{
		"postgres://h/db?nope=1", "postgres://h/db?visibility_timeout=0.1", "postgres://h/db?message_tablename=x;drop",
		"postgres://h/db?ssl=true&sslmode=require", "postgres://h/db?max_connections=1", "mysql://h/db",
		"postgres://u:secretpw@h/db?sslmode=bogus",
	} {
		u, _ := url.Parse(bad)
		_, err := ParseURL(u)
		if !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", bad, err)
		}
		if err != nil && strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the error shows the password: %v", bad, err)
		}
	}
}

// kombu's TLS options turn TLS on through transport.Query.TLS.
func TestKombuTLSOptions(t *testing.T) {
	u, _ := url.Parse("postgres://h/db?ssl=true&ssl_check_hostname=false")
	o, err := ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	if o.Config.TLSConfig == nil || len(o.Config.Fallbacks) != 0 {
		t.Errorf("TLS %v, fallbacks %d: want TLS and no plain-text fallback", o.Config.TLSConfig, len(o.Config.Fallbacks))
	}
}
