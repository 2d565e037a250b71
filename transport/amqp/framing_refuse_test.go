package amqp

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// Header tables that RabbitMQ and py-amqp accept but amqp091-go v1.16.0
// refuses (closing the whole connection): the read side replaces them with
// the marker table, and leaves the ones at the limits alone.

const testRefusedKey = refusedName + "-test"

// readThrough reads data through a tableConn whose socket serves it n
// bytes at a time.
func readThrough(data []byte, n int) []byte {
	tc := newTableConn(&chunkConn{data: append([]byte(nil), data...), n: max(n, 1)}, 0)
	tc.refusedKey = testRefusedKey
	got, _ := io.ReadAll(tc)
	return got
}

// nestedTables is a headers table holding levels tables nested in each
// other: {"d": {"d": ... {"x": true}}}.
func nestedTables(levels int) []byte {
	t := append(shortstr("x"), 't', 1)
	for range levels {
		t = append(shortstr("d"), longField('F', t)...)
	}
	return t
}

// nestedArrays is {"a": [[...[true]...]]} with levels arrays.
func nestedArrays(levels int) []byte {
	v := []byte{'t', 1}
	for range levels {
		v = longField('A', v)
	}
	return append(shortstr("a"), v...)
}

// nestedMixed alternates arrays and tables, levels containers in all.
func nestedMixed(levels int) []byte {
	v := []byte{'V'}
	for i := range levels {
		if i%2 == 0 {
			v = longField('A', v)
		} else {
			v = longField('F', append(shortstr("m"), v...))
		}
	}
	return append(shortstr("top"), v...)
}

// wideTable is a headers table of entries entries whose keys are k0, k1,
// ... up to distinct different keys, then k0 again.
func wideTable(entries, distinct int) []byte {
	var t []byte
	for i := range entries {
		k := "k0"
		if i < distinct {
			k = fmt.Sprint("k", i)
		}
		t = append(append(t, shortstr(k)...), 'I', 0, 0, 0, 1)
	}
	return t
}

// wideArray is {"a": [nil, nil, ...]} with n values.
func wideArray(n int) []byte {
	return append(shortstr("a"), longField('A', bytes.Repeat([]byte{'V'}, n))...)
}

func TestReadReplacesRefusedHeaders(t *testing.T) {
	truncated := append(shortstr("s"), 'S', 0, 0, 0, 9, 'x') // a string cut short
	cases := []struct {
		name   string
		table  []byte
		reason string // "" when amqp091-go reads the table
	}{
		{"32 nested tables", nestedTables(32), ""},
		{"33 nested tables", nestedTables(33), "deeper than 32 levels"},
		{"32 nested arrays", nestedArrays(32), ""},
		{"33 nested arrays", nestedArrays(33), "deeper than 32 levels"},
		{"32 mixed", nestedMixed(32), ""},
		{"33 mixed", nestedMixed(33), "deeper than 32 levels"},
		{"1000 nested tables", nestedTables(1000), "deeper than 32 levels"},
		{"8192 entries", wideTable(8192, 8192), ""},
		{"8193 entries", wideTable(8193, 8193), "more than 8192 entries"},
		{"8193 entries, the last one repeated", wideTable(8193, 8192), "more than 8192 entries"},
		{"8193 entries, 8191 keys before the last", wideTable(8193, 8191), ""},
		{"8192 array values", wideArray(8192), ""},
		{"8193 array values", wideArray(8193), "more than 8192 values"},
		{"tag U", append(shortstr("u"), 'U', 0, 1), "field type 'U'"},
		{"truncated string", truncated, "malformed"},
		{"py-amqp long long", append(shortstr("big"), int64Field('L', 1<<40)...), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := frame(1, 1, []byte{0, 60, 0, 60, 1, 2, 3, 4})
			in = append(in, headerFrame(1, c.table)...)
			in = append(in, frame(3, 1, []byte("hello"))...)
			want := bytes.ReplaceAll(in, int64Field('L', 1<<40), int64Field('l', 1<<40))
			if c.reason != "" {
				want = frame(1, 1, []byte{0, 60, 0, 60, 1, 2, 3, 4})
				want = append(want, headerFrameRaw(1, markerTable(testRefusedKey, refusalFor(t, c.table)))...)
				want = append(want, frame(3, 1, []byte("hello"))...)
			}
			for _, n := range []int{1, 7, 4096, len(in)} {
				got := readThrough(in, n)
				if !bytes.Equal(got, want) {
					t.Fatalf("chunk %d: stream differs (len %d, want %d)", n, len(got), len(want))
				}
			}
			if c.reason == "" {
				return
			}
			reason := refusalFor(t, c.table)
			if !strings.Contains(reason, c.reason) {
				t.Errorf("reason %q, want it to say %q", reason, c.reason)
			}
		})
	}
}

// refusalFor returns why the walker refuses table.
func refusalFor(t *testing.T, table []byte) string {
	t.Helper()
	var tw tableWalker
	if tw.table(append([]byte(nil), table...), 0) || tw.Refused == "" {
		t.Fatalf("table not refused")
	}
	return tw.Refused
}

// TestReadReplacesManyRefusedHeaders replaces thousands of small tables
// arriving at once: each frame grows, and the buffer with them, but only
// by what one read brings.
func TestReadReplacesManyRefusedHeaders(t *testing.T) {
	tag := append(shortstr("u"), 'U', 0, 1)
	var in, want []byte
	for i := range 20000 {
		body := frame(3, 1, fmt.Appendf(nil, "body %d", i))
		in = append(append(in, headerFrame(1, tag)...), body...)
		want = append(append(want, headerFrameRaw(1, markerTable(testRefusedKey, refusalFor(t, tag)))...), body...)
	}
	for _, n := range []int{3, len(in)} {
		tc := newTableConn(&chunkConn{data: append([]byte(nil), in...), n: n}, 0)
		tc.refusedKey = testRefusedKey
		var got []byte
		buf := make([]byte, 4096)
		grown := 0
		for {
			k, err := tc.Read(buf)
			got = append(got, buf[:k]...)
			grown = max(grown, len(tc.rbuf))
			if err != nil {
				break
			}
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("chunk %d: stream differs (len %d, want %d)", n, len(got), len(want))
		}
		if grown > minInspect {
			t.Errorf("chunk %d: the read buffer grew to %d bytes", n, grown)
		}
	}
}

func TestMarkerTable(t *testing.T) {
	m := markerTable(testRefusedKey, strings.Repeat("r", 1000))
	if len(m) > 300 {
		t.Errorf("marker table of %d bytes: a frame could outgrow frame_max", len(m))
	}
	var tw tableWalker
	if !tw.table(m[4:], 0) {
		t.Fatalf("marker table refused: %s", tw.Refused)
	}
	if _, ok := refusedHeaders(map[string]any{testRefusedKey: "why"}, testRefusedKey); !ok {
		t.Error("marker not recognised")
	}
	for _, h := range []map[string]any{
		nil,
		{testRefusedKey: "why", "other": 1},
		{testRefusedKey: 1},
		{refusedName + "-forged": "why"},
	} {
		if _, ok := refusedHeaders(h, testRefusedKey); ok {
			t.Errorf("%v taken for the marker", h)
		}
	}
}
