package routing

import (
	"errors"
	"strings"
	"testing"

	"github.com/kombu-go/kombu/kombu/driver"
)

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
