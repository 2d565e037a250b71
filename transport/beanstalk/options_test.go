package beanstalk

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/kombu-go/kombu/kombu"
)

func TestParseURL(t *testing.T) {
	o, err := ParseURL(&url.URL{Scheme: "beanstalk"})
	if err != nil || o.Addr != "127.0.0.1:11300" || o.TTR != DefaultTTR || o.ConnectTimeout != DefaultConnectTimeout {
		t.Fatalf("defaults %+v %v", o, err)
	}
	u, _ := url.Parse("beanstalk://example.org:1234?ttr=90&connect_timeout=2.5")
	o, err = ParseURL(u)
	if err != nil || o.Addr != "example.org:1234" || o.TTR != 90*time.Second || o.ConnectTimeout != 2500*time.Millisecond {
		t.Fatalf("parsed %+v %v", o, err)
	}
	for _, bad := range []string{
		"beanstalk://user:secret@h", "beanstalk://h/vhost", "beanstalk://h:0", "beanstalk://h:99999",
		"beanstalk://h?ttr=0.5", "beanstalk://h?ttr=0", "beanstalk://h?ttr=1.5", "beanstalk://h?ssl=true",
		"beanstalk://h?visibility=3", "redis://h",
	} {
		u, _ := url.Parse(bad)
		if _, err := ParseURL(u); !errors.Is(err, kombu.ErrInvalidURL) {
			t.Errorf("%s: %v, want ErrInvalidURL", bad, err)
		} else if bad == "beanstalk://user:secret@h" && strings.Contains(err.Error(), "secret") {
			t.Errorf("the error shows the password: %v", err)
		}
	}
}

// An unreachable server is ErrConnectionLost, so kombu tries the next URL.
func TestDialRefused(t *testing.T) {
	_, err := NewConnector(&Options{Addr: "127.0.0.1:1", TTR: time.Second, ConnectTimeout: time.Second}).Dial(context.Background())
	if !errors.Is(err, kombu.ErrConnectionLost) {
		t.Fatalf("dial of a closed port: %v, want ErrConnectionLost", err)
	}
}

// Connection.As hands out the Store, and nothing else.
func TestAsGivesTheStore(t *testing.T) {
	ctx := testCtx(t)
	conn, err := kombu.Dial(ctx, serverURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.Ping(ctx); err != nil {
		t.Fatal(err)
	}
	var s *Store
	if !conn.As(&s) || s == nil {
		t.Fatal("Connection.As(**Store) = false")
	}
	var other *int
	if conn.As(&other) {
		t.Fatal("Connection.As(**int) = true")
	}
}
