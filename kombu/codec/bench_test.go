package codec

import (
	"strings"
	"testing"
)

// benchValue is a Celery-like task message of about 1 KiB in JSON.
func benchValue() map[string]any {
	return map[string]any{
		"id":      "6a1b2c3d-0000-4000-8000-123456789abc",
		"task":    "proj.tasks.add",
		"args":    []any{int64(1), int64(2), 3.5, "four"},
		"kwargs":  map[string]any{"flag": true, "note": strings.Repeat("x", 854)},
		"retries": int64(0),
		"eta":     nil,
		"tags":    []any{"a", "b", "c"},
	}
}

func BenchmarkEncodeJSON1KiB(b *testing.B) {
	v := benchValue()
	body, _, _, err := Encode("json", v, "", "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := Encode("json", v, "", ""); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeJSON1KiB(b *testing.B) {
	body, ct, ce, err := Encode("json", benchValue(), "", "")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var v any
		if err := Decode(ct, ce, body, &v); err != nil {
			b.Fatal(err)
		}
	}
}
