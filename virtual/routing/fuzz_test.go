package routing

import (
	"math"
	"strings"
	"testing"
)

// FuzzTopicMatch checks TopicMatch and the compiled Topic against the
// reference matcher in topic_test.go, and that KombuTopicPattern never
// panics.
func FuzzTopicMatch(f *testing.F) {
	for _, c := range topicCases {
		f.Add(c.binding, c.routing)
	}
	f.Fuzz(func(t *testing.T, binding, routing string) {
		// Keys longer than AMQP allows are refused before routing; the
		// bound keeps the reference matcher's memo small.
		if len(binding) > 255 || len(routing) > 255 {
			return
		}
		want := refTopicMatch(binding, routing)
		if got := TopicMatch(binding, routing); got != want {
			t.Fatalf("TopicMatch(%q, %q) = %v, reference %v", binding, routing, got, want)
		}
		if got := CompileTopic(binding).Match(routing); got != want {
			t.Fatalf("CompileTopic(%q).Match(%q) = %v, reference %v", binding, routing, got, want)
		}
		p := KombuTopicPattern(binding)
		if !strings.HasPrefix(p, "^") || !strings.HasSuffix(p, "$") {
			t.Fatalf("KombuTopicPattern(%q) = %q", binding, p)
		}
	})
}

// fuzzValue turns fuzz inputs into a header value of one of the types
// AMQP tables carry.
func fuzzValue(sel uint8, i int64, f float64, s string) any {
	switch sel % 12 {
	case 0:
		return i
	case 1:
		return int8(i)
	case 2:
		return uint16(i)
	case 3:
		return uint64(i)
	case 4:
		return f
	case 5:
		return float32(f)
	case 6:
		return s
	case 7:
		return []byte(s)
	case 8:
		return i%2 == 0
	case 9:
		return nil
	case 10:
		return []any{i, s}
	default:
		return map[string]any{s: f}
	}
}

// FuzzHeadersMatch checks that HeadersMatch never panics, that a binding
// matches a message whose headers equal its arguments, and that a match
// only happens when the headers hold the keys the mode requires.
func FuzzHeadersMatch(f *testing.F) {
	f.Add("all", "a", "x-b", uint8(0), uint8(6), int64(1), 1.0, "v", "a", uint8(4), int64(1), 1.0, "v")
	f.Add("any", "x-a", "b", uint8(7), uint8(9), int64(-1), 0.5, "", "b", uint8(6), int64(0), 0.5, "")
	f.Add("all-with-x", "x-a", "x-b", uint8(10), uint8(11), int64(3), 3.0, "k", "x-a", uint8(10), int64(3), 3.0, "k")
	f.Add("any-with-x", "k", "x-match", uint8(2), uint8(5), int64(65536), 0.1, "é", "other", uint8(3), int64(0), 0.0, "\xff")
	f.Add("bogus", "", "", uint8(1), uint8(8), int64(1<<62), 4.611686018427388e18, "", "", uint8(4), int64(1<<62), 4.611686018427388e18, "")
	f.Fuzz(func(t *testing.T, mode, k1, k2 string, sel1, sel2 uint8, bi int64, bf float64, bs string,
		hk string, hsel uint8, hi int64, hf float64, hs string) {
		args := map[string]any{"x-match": mode, k1: fuzzValue(sel1, bi, bf, bs), k2: fuzzValue(sel2, bi, bf, bs)}
		headers := map[string]any{hk: fuzzValue(hsel, hi, hf, hs)}
		got := HeadersMatch(args, headers)

		withX := mode == "all-with-x" || mode == "any-with-x"
		anyMode := mode == "any" || mode == "any-with-x"
		var considered []string
		for k := range args {
			if k != "x-match" && (withX || !strings.HasPrefix(k, "x-")) {
				considered = append(considered, k)
			}
		}
		if got {
			present := 0
			for _, k := range considered {
				if _, ok := headers[k]; ok {
					present++
				}
			}
			if !anyMode && present != len(considered) {
				t.Fatalf("all-mode match with a binding key missing: %v %v", args, headers)
			}
			if anyMode && present == 0 {
				t.Fatalf("any-mode match without any binding key: %v %v", args, headers)
			}
		}

		// A message whose headers are the binding arguments matches,
		// unless a NaN makes a value unequal to itself.
		if math.IsNaN(bf) {
			return
		}
		self := make(map[string]any, len(args))
		for k, v := range args {
			self[k] = v
		}
		if want := !anyMode || len(considered) > 0; HeadersMatch(args, self) != want {
			t.Fatalf("HeadersMatch(%v, itself) = %v, want %v", args, !want, want)
		}
	})
}
