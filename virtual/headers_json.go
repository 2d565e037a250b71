package virtual

import (
	"bytes"
	"encoding/json"
	"math"
)

// writeHeaders writes an envelope's headers as JSON. encoding/json writes
// the float64 2.0 as 2, which every reader (this package's included) takes
// for an integer; such floats are written 2.0, as Python's json writes
// them, so a float64 header arrives as a float64 on every transport.
func writeHeaders(b *bytes.Buffer, h map[string]any) error {
	if !hasWholeFloat(h, 0) {
		return writeJSON(b, h)
	}
	return writeJSON(b, markWholeFloats(h, 0))
}

// maxWalk bounds the walk of nested headers; kombu's Producer refuses
// headers nested deeper than driver.MaxHeaderDepth anyway.
const maxWalk = 64

func isWholeFloat(f float64) bool {
	return f == math.Trunc(f) && !math.IsInf(f, 0)
}

// hasWholeFloat reports whether v holds a float64 with an integral value.
func hasWholeFloat(v any, depth int) bool {
	if depth > maxWalk {
		return false
	}
	switch x := v.(type) {
	case float64:
		return isWholeFloat(x)
	case map[string]any:
		for _, e := range x {
			if hasWholeFloat(e, depth+1) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasWholeFloat(e, depth+1) {
				return true
			}
		}
	}
	return false
}

// markWholeFloats copies v with each integral float64 made a wholeFloat.
func markWholeFloats(v any, depth int) any {
	if depth > maxWalk {
		return v
	}
	switch x := v.(type) {
	case float64:
		if isWholeFloat(x) {
			return wholeFloat(x)
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = markWholeFloats(e, depth+1)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = markWholeFloats(e, depth+1)
		}
		return out
	}
	return v
}

// wholeFloat is a float64 with an integral value that marshals with a
// decimal point.
type wholeFloat float64

func (f wholeFloat) MarshalJSON() ([]byte, error) {
	out, err := json.Marshal(float64(f))
	if err != nil {
		return nil, err
	}
	if !bytes.ContainsAny(out, ".eE") {
		out = append(out, ".0"...)
	}
	return out, nil
}
