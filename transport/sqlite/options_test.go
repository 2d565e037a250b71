package sqlite

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
)

func TestParseURL(t *testing.T) {
	wd, _ := os.Getwd()
	for _, c := range []struct {
		raw  string
		path string
		vt   time.Duration
		mt   string
	}{
		{"sqlite:///rel/q.db", filepath.Join(wd, "rel/q.db"), DefaultVisibilityTimeout, "kombu_message"},
		{"sqlite:////abs/q.db", "/abs/q.db", DefaultVisibilityTimeout, "kombu_message"},
		{"sqla+sqlite:////abs/q.db?visibility_timeout=30", "/abs/q.db", 30 * time.Second, "kombu_message"},
		{"sqlalchemy+sqlite:///q.db?message_tablename=msgs&queue_tablename=qs", filepath.Join(wd, "q.db"), DefaultVisibilityTimeout, "msgs"},
	} {
		u, _ := url.Parse(c.raw)
		o, err := ParseURL(u)
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if o.Path != c.path || o.VisibilityTimeout != c.vt || o.MessageTable != c.mt {
			t.Errorf("%s: %+v", c.raw, o)
		}
	}
	for _, bad := range []string{
		"sqlite://", "sqlite:///", "sqlite://host/x.db", "sqlite:///x.db?nope=1", "sqlite:///x.db?visibility_timeout=0.5",
		"sqlite:///x.db?message_tablename=bad-name", "sqlite:///x.db?synchronous=off", "sqlite:///x.db?polling_interval=0",
		"sqlite:///:memory:", "redis:///x.db",
	} {
		u, _ := url.Parse(bad)
		if _, err := ParseURL(u); !errors.Is(err, driver.ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", bad, err)
		}
	}
}

// A file in a directory that does not exist fails at dial with the path
// in the error, not later.
func TestDialMissingDirectory(t *testing.T) {
	o := mustOptions(t, "sqlite:///"+filepath.Join(t.TempDir(), "no", "such", "dir", "q.db"))
	if _, err := NewConnector(o).Dial(t.Context()); err == nil {
		t.Fatal("dial of a file in a missing directory succeeded")
	}
}
