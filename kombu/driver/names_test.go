package driver_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

func TestValidateName(t *testing.T) {
	n255 := strings.Repeat("a", 255)
	n256 := strings.Repeat("a", 256)
	// 254 ASCII bytes and a 2-byte rune: 256 bytes although 255 runes.
	multi256 := strings.Repeat("a", 254) + "é"
	cases := []struct {
		kind, name string
		ok         bool
	}{
		{"exchange", "", true}, // the default exchange
		{"queue", "", true},    // server-named queue
		{"routing key", "", true},
		{"exchange", "celery", true},
		{"queue", "amq.gen-abc", true}, // using amq.* names is fine
		{"exchange", "amq.direct", true},
		{"routing key", "a.*.#", true},
		{"queue", "x\x06\x16y", true}, // kombu's separator is the redis transport's concern
		{"queue", "naïve.日本", true},
		{"queue", "\x00", true},
		{"queue", n255, true},
		{"exchange", n256, false},
		{"queue", n256, false},
		{"routing key", n256, false},
		{"queue", multi256, false},
		{"queue", strings.Repeat("x", 70000), false},
		{"queue", "bad\xff", false},
		{"exchange", "\xc3", false},            // truncated sequence
		{"routing key", "\xed\xa0\x80", false}, // a UTF-16 surrogate
		{"queue", "\xc0\xaf", false},           // overlong encoding
		{"consumer tag", "", true},
		{"consumer tag", "ctag-1", true},
		{"consumer tag", "tag\xff", false},
		{"consumer tag", n256, false},
	}
	for _, c := range cases {
		err := driver.ValidateName(c.kind, c.name)
		if c.ok {
			if err != nil {
				t.Errorf("ValidateName(%q, %.20q) = %v, want nil", c.kind, c.name, err)
			}
			continue
		}
		if !errors.Is(err, driver.ErrInvalidArgument) {
			t.Errorf("ValidateName(%q, %.20q) = %v, want ErrInvalidArgument", c.kind, c.name, err)
			continue
		}
		if !strings.Contains(err.Error(), c.kind) {
			t.Errorf("error %q does not name the kind %q", err, c.kind)
		}
		if len(err.Error()) > 200 {
			t.Errorf("error is %d bytes long: the name should be cut", len(err.Error()))
		}
	}
}
