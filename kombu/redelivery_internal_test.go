package kombu

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestRedeliveryBackoffGrowsToItsCap(t *testing.T) {
	p := (&RedeliveryPolicy{InitialBackoff: 100 * time.Millisecond, Multiplier: 3, MaxBackoff: time.Second}).withDefaults()
	want := []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, 900 * time.Millisecond, time.Second, time.Second}
	for i, w := range want {
		if got := p.Backoff(i + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", i+1, got, w)
		}
	}
	if got := (&RedeliveryPolicy{InitialBackoff: -1}).withDefaults().Backoff(3); got != 0 {
		t.Errorf("negative InitialBackoff waits %v, want 0", got)
	}
	// A huge exponent saturates at the cap instead of overflowing.
	if got := DefaultRedeliveryPolicy.Backoff(5000); got != DefaultRedeliveryPolicy.MaxBackoff {
		t.Errorf("Backoff(5000) = %v, want the cap %v", got, DefaultRedeliveryPolicy.MaxBackoff)
	}
	d := (*RedeliveryPolicy)(nil).withDefaults()
	if d != DefaultRedeliveryPolicy || d.MaxDeliveries != 20 {
		t.Errorf("nil policy = %+v, want DefaultRedeliveryPolicy with 20 deliveries", d)
	}
}

func TestLastErrorTextIsShortValidUTF8(t *testing.T) {
	long := strings.Repeat("é", MaxLastErrorLen) // 2 bytes a rune: the cut falls inside one
	got := lastErrorText(errors.New(long + "\xff"))
	if len(got) > MaxLastErrorLen || !utf8.ValidString(got) || !strings.HasPrefix(long, got) {
		t.Errorf("lastErrorText: %d bytes, valid %t", len(got), utf8.ValidString(got))
	}
	if got := lastErrorText(errors.New("bad \xff byte")); got != "bad \uFFFD byte" {
		t.Errorf("lastErrorText kept invalid UTF-8: %q", got)
	}
	pe := &PanicError{Value: "oops", Stack: []byte("goroutine 1 [running]:\n...")}
	if got := lastErrorText(&Error{Op: "consumer.handle", Err: pe}); got != "handler panic: oops" {
		t.Errorf("panic text %q, want the value without the stack", got)
	}
}

// Counts arrive as whatever number type the transport decoded.
func TestHeaderCountReadsEveryNumberType(t *testing.T) {
	for _, v := range []any{int(7), int8(7), int16(7), int32(7), int64(7), uint8(7), uint16(7), uint32(7), uint64(7),
		float64(7), float32(7), "7", json.Number("7")} {
		if got := headerCount(v); got != 7 {
			t.Errorf("headerCount(%T) = %d, want 7", v, got)
		}
	}
	for _, v := range []any{nil, -3, "x", 1.5e300, int64(1) << 40, []byte("7"), true} {
		if got := headerCount(v); got != 0 {
			t.Errorf("headerCount(%#v) = %d, want 0", v, got)
		}
	}
	m := &Message{Headers: map[string]any{HeaderDeliveryCount: int64(2), brokerDeliveryCount: int64(5)}}
	if got := m.DeliveryCount(); got != 6 {
		t.Errorf("DeliveryCount = %d, want the larger counter plus this delivery, 6", got)
	}
	if got := (&Message{}).DeliveryCount(); got != 1 {
		t.Errorf("first delivery counts %d, want 1", got)
	}
}
