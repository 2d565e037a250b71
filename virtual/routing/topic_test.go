package routing

import (
	"strings"
	"testing"
)

// refSplit splits a topic key into words as RabbitMQ does: the empty key
// has no words.
func refSplit(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ".")
}

// refTopicMatch is the reference matcher for the differential tests: a
// memoized recursive matcher over word slices, written independently of
// the greedy matchers in topic.go.
func refTopicMatch(bindingKey, routingKey string) bool {
	p, w := refSplit(bindingKey), refSplit(routingKey)
	memo := make(map[[2]int]bool)
	var match func(i, j int) bool
	match = func(i, j int) bool {
		k := [2]int{i, j}
		if v, ok := memo[k]; ok {
			return v
		}
		var r bool
		switch {
		case i == len(p):
			r = j == len(w)
		case p[i] == "#":
			// '#' takes no word, or takes one and stays.
			r = match(i+1, j) || (j < len(w) && match(i, j+1))
		case j == len(w):
			r = false
		case p[i] == "*" || p[i] == w[j]:
			r = match(i+1, j+1)
		}
		memo[k] = r
		return r
	}
	return match(0, 0)
}

type topicCase struct {
	binding, routing string
	want             bool
}

var topicCases = []topicCase{
	// Literal keys: plain equality of words.
	{"a.b.c", "a.b.c", true},
	{"a.b.c", "a.b", false},
	{"a.b", "a.b.c", false},
	{"", "", true},
	{"", "a", false},
	{"a", "", false},
	{"ñ", "n", false},

	// '*' and '#' are wildcards only as whole words.
	{"a*", "a*", true},
	{"a*", "a", false},
	{"a*", "aaa", false},
	{"*a", "ba", false},
	{"a#", "a#", true},
	{"a#", "a", false},
	{"#a", "a", false},
	{"a.b#.c", "a.b#.c", true},
	{"a.b#.c", "a.bx.c", false},
	{"a.*b", "a.xb", false},
	{"**", "a", false},
	{"**", "**", true},
	{"##", "a.b", false},
	{"##", "##", true},

	// Wildcards in the routing key are ordinary words.
	{"a.b", "a.*", false},
	{"a.*", "a.*", true},
	{"a.#", "a.#", true},
	{"a.b", "a.#", false},

	// '*': exactly one word.
	{"*", "a", true},
	{"*", "", false},
	{"*", "a.b", false},
	{"*", ".", false},
	{"a.*", "a.b", true},
	{"a.*", "a", false},
	{"a.*", "a.b.c", false},
	{"a.*", "a.", true},
	{"*.*", ".", true},
	{"*.*", "a.b", true},
	{"*.b", "a.b", true},
	{"*.b", ".b", true},
	{"a.*.b", "a..b", true},
	{"a.*.b", "a.b", false},
	{"wirefmt.*.info", "wirefmt.a.info", true},
	{"wirefmt.*.info", "wirefmt.a.b.info", false}, // kombu's regex matches this
	{"wirefmt.*.info", "wirefmt..info", true},
	{"*.*.#", "a", false},

	// '#': zero or more words.
	{"#", "", true},
	{"#", "a", true},
	{"#", "a.b.c", true},
	{"#", ".", true},
	{"#", "..", true},
	{"a.#", "a", true},
	{"wirefmt.#", "wirefmt", true}, // kombu's regex does not match this
	{"wirefmt.#", "wirefmt.a.b", true},
	{"a.#", "ab", false},
	{"a.#", "b.a", false},
	{"a.#", "a.", true},
	{"a.#", "", false},
	{"a.b.#", "a.b.c.d", true},
	{"a.b.#", "a.bc", false},
	{"#.a", "a", true},
	{"#.a", "b.a", true},
	{"#.a", "a.b", false},
	{"#.a", "", false},
	{"#.#", "", true},
	{"#.#", "a.b", true},
	{"#.#.#", "", true},
	{"#.a.#", "a", true},
	{"#.a.#", "x.a.y", true},
	{"#.a.#", "x.y.a", true},
	{"#.a.#", "x.y", false},
	{"#.a.#", "", false},
	{"a.#.#.b", "a.b", true},
	{"a.#.#.b", "a.x.y.b", true},
	{"a.#.#.b", "a.b.c", false},
	{"a.#.b", "a.b.b.b", true},
	{"a.#.b.c", "a.b.c.b.c", true},
	{"a.#.b.c", "a.b.c.b", false},
	{"a.#.b.#.c", "a.x.b.y.b.z.c", true},
	{"a.#.b.#.c", "a.x.c.y.b", false},
	{"#.*", "", false},
	{"#.*", "a", true},
	{"#.*", "a.b.c", true},
	{"*.#", "a", true},
	{"*.#", "", false},
	{"#.*.#", "a.b", true},
	{"#.b.*", "a.b", false},
	{"#.b.*", "b.b.x", true},
	{"*.#.*", "a", false},
	{"*.#.*", "a.b", true},
	{"*.#.#", "a", true},
	{"#.*.#.#", "a", true},
	{"a.*.#.#", "a.b", true},
	{"a.*.#.#", "a", false},

	// Leading, trailing and doubled dots make empty words.
	{".a", ".a", true},
	{".a", "a", false},
	{"a.", "a", false},
	{"a.", "a.", true},
	{"*.a", ".a", true},
	{".#", "", false},
	{".#", ".", true},
	{".#", ".x.y", true},
	{".#", "a", false},
	{"#.", "a.", true},
	{"#.", ".", true},
	{"#.", "", false},
	{"a..b", "a..b", true},
	{"a..b", "a.b", false},
	{"a.#.b", "a..b", true},

	// Unicode words.
	{"é.*", "é.ü", true},
	{"日本.#", "日本", true},
	{"日本.*", "日本.語.x", false},
	{"*.ñ", "ü.ñ", true},
	{"#.😀", "a.b.😀", true},
}

func TestTopicMatchTable(t *testing.T) {
	if len(topicCases) < 60 {
		t.Fatalf("only %d topic cases", len(topicCases))
	}
	for _, c := range topicCases {
		if got := TopicMatch(c.binding, c.routing); got != c.want {
			t.Errorf("TopicMatch(%q, %q) = %v, want %v", c.binding, c.routing, got, c.want)
		}
		if got := CompileTopic(c.binding).Match(c.routing); got != c.want {
			t.Errorf("CompileTopic(%q).Match(%q) = %v, want %v", c.binding, c.routing, got, c.want)
		}
		// The reference used by the fuzz test must agree with the table too.
		if got := refTopicMatch(c.binding, c.routing); got != c.want {
			t.Errorf("refTopicMatch(%q, %q) = %v, want %v", c.binding, c.routing, got, c.want)
		}
	}
}

// TestCompileTopicModes makes sure the table reaches every fast path of a
// compiled key, so that a broken fast path fails TestTopicMatchTable.
func TestCompileTopicModes(t *testing.T) {
	seen := map[topicMode]int{}
	for _, c := range topicCases {
		seen[CompileTopic(c.binding).mode]++
	}
	for _, m := range []topicMode{modeGeneral, modeLiteral, modeAll, modePrefix, modeSuffix} {
		if seen[m] < 3 {
			t.Errorf("mode %d is exercised by %d cases only", m, seen[m])
		}
	}
	for key, want := range map[string]topicMode{
		"":        modeLiteral,
		"a.b":     modeLiteral,
		"a*.b#":   modeLiteral,
		"#":       modeAll,
		"#.#":     modeAll,
		"a.#":     modePrefix,
		"a.b.#.#": modePrefix,
		".#":      modePrefix,
		"#.a":     modeSuffix,
		"#.#.a.b": modeSuffix,
		"#.":      modeSuffix,
		"#.a.#":   modeGeneral,
		"*.a":     modeGeneral,
		"a.*":     modeGeneral,
		"a.#.b.#": modeGeneral,
	} {
		if got := CompileTopic(key).mode; got != want {
			t.Errorf("CompileTopic(%q).mode = %d, want %d", key, got, want)
		}
	}
}

func TestTopicKey(t *testing.T) {
	tp := CompileTopic("a.*.#")
	if tp.Key() != "a.*.#" || tp.String() != "a.*.#" {
		t.Fatalf("Key() = %q, String() = %q", tp.Key(), tp.String())
	}
}

func TestTopicMatchDoesNotAllocate(t *testing.T) {
	compiled := make([]*Topic, len(topicCases))
	for i, c := range topicCases {
		compiled[i] = CompileTopic(c.binding)
	}
	allocs := testing.AllocsPerRun(100, func() {
		for i, c := range topicCases {
			compiled[i].Match(c.routing)
			TopicMatch(c.binding, c.routing)
		}
	})
	if allocs != 0 {
		t.Fatalf("matching allocates %v times per run", allocs)
	}
}

func TestTopicMatchLongKeys(t *testing.T) {
	// 255-byte keys full of wildcards stay fast and correct (the greedy
	// matcher is O(len(binding) * len(routing)) at worst).
	binding := strings.Repeat("#.a.", 63) + "b"
	routing := strings.Repeat("a.", 127) + "c"
	if TopicMatch(binding, routing) || CompileTopic(binding).Match(routing) {
		t.Fatal("matched a routing key without the final word")
	}
	routing = strings.Repeat("a.", 127) + "b"
	want := refTopicMatch(binding, routing)
	if !want {
		t.Fatal("reference should match")
	}
	if !TopicMatch(binding, routing) || !CompileTopic(binding).Match(routing) {
		t.Fatal("did not match")
	}
}
