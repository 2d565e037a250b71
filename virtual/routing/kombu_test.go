package routing

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"
)

// kombuGoldens are patterns Python kombu 5.2.4 stores for these binding
// keys. The first five are the examples of the wire-format reference §2.2;
// the rest were produced by TopicExchange.key_to_pattern.
var kombuGoldens = []struct{ key, pattern string }{
	{"wirefmt.*.info", `^wirefmt\..*?[^\.]\.info$`},
	{"wirefmt.#", `^wirefmt\..*?$`},
	{"a-b.*.c_d", `^a\-b\..*?[^\.]\.c\_d$`},
	{"#", `^.*?$`},
	{"x y.é.#", `^x\ y\.é\..*?$`},
	{"a\x00b", `^a\000b$`},
	{"\x00", `^\000$`},
	{"", `^$`},
	{"*", `^.*?[^\.]$`},
	{"..", `^\.\.$`},
	{".#.", `^\..*?\.$`},
	{"a*.#b", `^a*\.#b$`},
	{"**.##", `^**\.##$`},
	{`a\b`, `^a\\b$`},
	{"a\tb\n", "^a\\\tb\\\n$"},
	{"^$()[]{}|?+", `^\^\$\(\)\[\]\{\}\|\?\+$`},
	// Unicode letters and numbers (Lt, Lm, No, Nl, Nd, fullwidth, CJK)
	// stay; marks, symbols and format characters are escaped.
	{"²Ⅻǅʰ٣", `^²Ⅻǅʰ٣$`},
	{"Ａ中", `^Ａ中$`},
	{"e\u0301", "^e\\\u0301$"},
	{"😀", `^\😀$`},
	{"\u200d", "^\\\u200d$"},
	{"\ufffd", "^\\\ufffd$"},
}

func TestKombuTopicPatternGoldens(t *testing.T) {
	for _, g := range kombuGoldens {
		if got := KombuTopicPattern(g.key); got != g.pattern {
			t.Errorf("KombuTopicPattern(%q) = %q, want %q", g.key, got, g.pattern)
		}
	}
}

func TestKombuTopicPatternInvalidUTF8(t *testing.T) {
	// Python cannot hold these bytes in a str; each is escaped on its own
	// and kept, so the pattern still identifies the key.
	if got, want := KombuTopicPattern("a\xffb.\xc3"), "^a\\\xffb\\.\\\xc3$"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// crossCheckKeys are compared with the output of the installed Python
// kombu by TestKombuTopicPatternMatchesPython.
var crossCheckKeys = []string{
	"", ".", "..", "#", "*", "#.#", "*.*", "a.#", "#.a", "a.*.b", "a..b",
	"celery", "celery.pidbox", "reply.celery.pidbox", "wirefmt.*.info",
	"a-b.*.c_d", "x y.é.#", "a\x00b.#", "tab\there", "new\nline",
	`back\slash`, "~!@$%^&()-_=+[]{};:'\",<>/?|`",
	"a*b.#c.*d", "ǅungla.ʰ.Ⅻ.²", "٣.٤.#", "日本語.*", "e\u0301.#",
	"😀.*.🚀", "\u200b\u200d\ufeff", "Ａｂｃ.１２３", "ß.İ.ﬁ", "\u00a0\u2028",
}

// allBMP returns keys that together hold every BMP code point except the
// surrogates, in chunks, to compare isalnum exhaustively.
func allBMP() []string {
	var keys []string
	var b strings.Builder
	for r := rune(0); r <= 0xFFFF; r++ {
		if r >= 0xD800 && r <= 0xDFFF {
			continue
		}
		b.WriteRune(r)
		if b.Len() >= 4096 {
			keys = append(keys, b.String())
			b.Reset()
		}
	}
	return append(keys, b.String())
}

const pythonKeyToPattern = `
import json, sys
from kombu.transport.virtual.exchange import TopicExchange
x = TopicExchange(None)
json.dump([x.key_to_pattern(k) for k in json.load(sys.stdin)], sys.stdout)
`

// TestKombuTopicPatternMatchesPython is a development cross-check against
// the real kombu; the goldens above are the evidence in CI. It is skipped
// when /usr/bin/python3 cannot import kombu (apt-get install python3-kombu).
func TestKombuTopicPatternMatchesPython(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skip("no " + python)
	}
	probe := exec.Command(python, "-I", "-c", "import kombu.transport.virtual.exchange")
	probe.Dir = t.TempDir() // keep a local "kombu" directory off sys.path
	if out, err := probe.CombinedOutput(); err != nil {
		t.Skipf("python3 lacks kombu: %v: %s", err, bytes.TrimSpace(out))
	}
	keys := append(append([]string{}, crossCheckKeys...), allBMP()...)
	for _, g := range kombuGoldens {
		keys = append(keys, g.key)
	}
	for _, k := range keys {
		if !utf8.ValidString(k) {
			t.Fatalf("key %q is not valid UTF-8", k)
		}
	}
	in, err := json.Marshal(keys)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(python, "-I", "-c", pythonKeyToPattern)
	cmd.Dir = probe.Dir
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v: %s", err, stderr.Bytes())
	}
	var want []string
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(keys) {
		t.Fatalf("python returned %d patterns for %d keys", len(want), len(keys))
	}
	for i, k := range keys {
		got := KombuTopicPattern(k)
		if got == want[i] {
			continue
		}
		// Report the first differing character rather than 8 KiB.
		j := 0
		for j < len(got) && j < len(want[i]) && got[j] == want[i][j] {
			j++
		}
		lo := max(0, j-8)
		t.Errorf("key #%d: pattern differs from Python at byte %d: go %q, python %q", i, j,
			got[lo:min(len(got), j+8)], want[i][lo:min(len(want[i]), j+8)])
	}
}
