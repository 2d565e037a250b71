package routing

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
	}
	for _, c := range cases {
		err := ValidateName(c.kind, c.name)
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

func TestValidateExchangeDeclare(t *testing.T) {
	cases := []struct {
		name string
		want error // nil, ErrAccessRefused or ErrInvalidArgument
	}{
		{"celery", nil},
		{"amq", nil},
		{"amqx.direct", nil},
		{"AMQ.direct", nil}, // RabbitMQ's check is case-sensitive
		{"my.amq.x", nil},
		{strings.Repeat("e", 255), nil},
		{"", driver.ErrAccessRefused},
		{"amq.", driver.ErrAccessRefused},
		{"amq.direct", driver.ErrAccessRefused},
		{"amq.custom", driver.ErrAccessRefused},
		{strings.Repeat("e", 256), driver.ErrInvalidArgument},
		{"amq." + strings.Repeat("e", 252), driver.ErrInvalidArgument},
		{"ex\xff", driver.ErrInvalidArgument},
	}
	for _, c := range cases {
		err := ValidateExchangeDeclare(c.name)
		if c.want == nil {
			if err != nil {
				t.Errorf("ValidateExchangeDeclare(%.20q) = %v", c.name, err)
			}
			continue
		}
		if !errors.Is(err, c.want) {
			t.Errorf("ValidateExchangeDeclare(%.20q) = %v, want %v", c.name, err, c.want)
		}
	}
	if err := ValidateExchangeDeclare("amq.x"); err == nil || !strings.Contains(err.Error(), "reserved prefix") {
		t.Errorf("error %v does not explain the refusal", err)
	}
}

func TestValidateQueueDeclare(t *testing.T) {
	for name, want := range map[string]error{
		"":                       nil, // server-named
		"celery":                 nil,
		"amq":                    nil,
		"amq.gen-x":              driver.ErrAccessRefused,
		"amq.q":                  driver.ErrAccessRefused,
		strings.Repeat("q", 256): driver.ErrInvalidArgument,
		"q\xfe":                  driver.ErrInvalidArgument,
	} {
		err := ValidateQueueDeclare(name)
		if want == nil {
			if err != nil {
				t.Errorf("ValidateQueueDeclare(%.20q) = %v", name, err)
			}
		} else if !errors.Is(err, want) {
			t.Errorf("ValidateQueueDeclare(%.20q) = %v, want %v", name, err, want)
		}
	}
}
