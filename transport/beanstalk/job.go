package beanstalk

import (
	"bytes"
	"fmt"
	"strconv"
	"time"

	"github.com/kombu-go/kombu/kombu/driver"
	"github.com/kombu-go/kombu/virtual"
)

// HeaderDelay is the header that delays a message: milliseconds before
// beanstalkd makes the job ready (RabbitMQ's delayed-message exchange reads
// the same header). beanstalkd counts whole seconds, so it is rounded up: a
// message is never ready early.
const HeaderDelay = "x-delay"

// maxDelay is the longest delay beanstalkd's 32-bit seconds hold.
const maxDelay = (1<<32 - 1) * time.Second

// jobDelay reads HeaderDelay.
func jobDelay(h map[string]any) (time.Duration, error) {
	v, ok := h[HeaderDelay]
	if !ok || v == nil {
		return 0, nil
	}
	ms, ok := driver.Int64(v)
	if !ok || ms < 0 || ms > driver.MaxExpiry.Milliseconds() {
		return 0, fmt.Errorf("%w: beanstalk: header %s %v is not a number of milliseconds in 0..%d",
			driver.ErrInvalidArgument, HeaderDelay, v, driver.MaxExpiry.Milliseconds())
	}
	return wholeSeconds(time.Duration(ms) * time.Millisecond), nil
}

// wholeSeconds is d as beanstalkd can delay a job: rounded up to whole
// seconds (its delays count seconds), at most maxDelay.
func wholeSeconds(d time.Duration) time.Duration {
	return min((d+time.Second-1)/time.Second*time.Second, maxDelay)
}

// jobPriority is the job's beanstalkd priority: kombu's 0..9 as it is, as
// kombu 3.0 put it, so beanstalkd serves 0 first.
func jobPriority(env *virtual.Envelope) uint32 { return uint32(min(env.Properties.Priority, 9)) }

// deliveryInfoKey opens the envelope's properties.delivery_info. Marshal
// writes it last among the properties' objects, and nothing after it can
// hold this text unescaped, so its last occurrence is the one.
var deliveryInfoKey = []byte(`"delivery_info":{`)

// encodeJob is the job body: kombu's JSON envelope with
// properties.delivery_info.priority added, where kombu 3.0's beanstalk
// transport read the priority of a job it put back.
func encodeJob(env *virtual.Envelope) ([]byte, error) {
	b, err := env.Marshal()
	if err != nil {
		return nil, fmt.Errorf("%w: beanstalk: %w", driver.ErrInvalidArgument, err)
	}
	i := bytes.LastIndex(b, deliveryInfoKey)
	if i < 0 {
		return nil, fmt.Errorf("beanstalk: the envelope has no delivery_info: %.100s", b)
	}
	at := i + len(deliveryInfoKey)
	pri := `"priority":` + strconv.Itoa(int(jobPriority(env))) + `,`
	out := make([]byte, 0, len(b)+len(pri))
	out = append(out, b[:at]...)
	out = append(out, pri...)
	return append(out, b[at:]...), nil
}
