package driver

import (
	"errors"
	"math"
	"strings"
	"testing"
)

func TestInt64TakesEveryIntegerWidthThatFits(t *testing.T) {
	for _, v := range []any{int(7), int8(7), int16(7), int32(7), int64(7), uint(7), uint8(7), uint16(7), uint32(7), uint64(7)} {
		if n, ok := Int64(v); !ok || n != 7 {
			t.Errorf("Int64(%T 7) = %d, %v; want 7, true", v, n, ok)
		}
	}
	for _, v := range []any{nil, "7", 7.0, uint64(math.MaxInt64) + 1, uint(math.MaxUint)} {
		if n, ok := Int64(v); ok || n != 0 {
			t.Errorf("Int64(%#v) = %d, %v; want 0, false", v, n, ok)
		}
	}
}

func TestNormalizeQueueArgsRejectsNonIntegersAndHugeUnsigned(t *testing.T) {
	for v, want := range map[any]string{"10": "must be an integer", uint64(math.MaxUint64): "out of range"} {
		_, err := NormalizeQueueArgs(map[string]any{"x-max-length": v})
		if !errors.Is(err, ErrInvalidArgument) || err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("x-max-length=%#v: err = %v, want ErrInvalidArgument saying %q", v, err, want)
		}
	}
	out, err := NormalizeQueueArgs(map[string]any{"x-max-length": uint16(5)})
	if err != nil || out["x-max-length"] != int64(5) {
		t.Errorf("x-max-length=uint16(5): %v, %v; want int64(5)", out, err)
	}
}
