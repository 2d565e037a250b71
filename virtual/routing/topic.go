package routing

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// A routing key or binding key is a list of words separated by '.'. The
// empty string has no words at all (RabbitMQ's split_topic_key returns []
// for it), while every other string has one word more than it has dots, so
// "." is two empty words and "a." is "a" followed by an empty word.
//
// Both matchers below walk the words in place with byte offsets instead of
// splitting, so that matching never allocates. A word position is the byte
// offset where the word starts; noWord(s) (len(s)+1) means "past the last
// word".

// noWord is the position after the last word of s.
func noWord(s string) int { return len(s) + 1 }

// firstWord is the position of the first word of s.
func firstWord(s string) int {
	if s == "" {
		return noWord(s)
	}
	return 0
}

// wordAt returns the word of s that starts at pos and the position of the
// word after it. pos must not be noWord(s).
func wordAt(s string, pos int) (word string, next int) {
	i := strings.IndexByte(s[pos:], '.')
	if i < 0 {
		return s[pos:], noWord(s)
	}
	return s[pos : pos+i], pos + i + 1
}

// TopicMatch reports whether routingKey matches the topic bindingKey with
// AMQP 0-9-1 (RabbitMQ) semantics: '*' matches exactly one word, '#' matches
// zero or more words, and both are wildcards only when they are a whole
// word. It does not allocate. To match one binding key many times, compile
// it once with CompileTopic.
func TopicMatch(bindingKey, routingKey string) bool {
	if strings.IndexByte(bindingKey, '*') < 0 && strings.IndexByte(bindingKey, '#') < 0 {
		return bindingKey == routingKey
	}
	// Greedy word glob: '#' is the multi-word wildcard; on a mismatch the
	// most recent '#' takes one more word and matching resumes after it.
	// Remembering only the latest '#' is enough, as in the classic
	// single-star glob algorithm.
	bk, rk := bindingKey, routingKey
	bEnd, rEnd := noWord(bk), noWord(rk)
	bp, rp := firstWord(bk), firstWord(rk)
	hashNext, hashRP := -1, 0 // pattern position after the last '#', and where its words end
	for rp != rEnd {
		if bp != bEnd {
			pw, pnext := wordAt(bk, bp)
			switch pw {
			case "#":
				hashNext, hashRP = pnext, rp
				bp = pnext
				continue
			case "*":
				_, rnext := wordAt(rk, rp)
				bp, rp = pnext, rnext
				continue
			default:
				if w, rnext := wordAt(rk, rp); w == pw {
					bp, rp = pnext, rnext
					continue
				}
			}
		}
		if hashNext < 0 {
			return false
		}
		_, hashRP = wordAt(rk, hashRP)
		bp, rp = hashNext, hashRP
	}
	for bp != bEnd {
		pw, pnext := wordAt(bk, bp)
		if pw != "#" {
			return false
		}
		bp = pnext
	}
	return true
}

type tokenKind uint8

const (
	tokLiteral tokenKind = iota
	tokStar              // '*': exactly one word
	tokHash              // '#': zero or more words
)

type token struct {
	kind tokenKind
	lit  string // the word, for tokLiteral
}

type topicMode uint8

const (
	modeGeneral topicMode = iota
	modeLiteral           // no wildcard word: the keys must be equal
	modeAll               // only '#' words: everything matches
	modePrefix            // literal words then one '#': prefix test
	modeSuffix            // one '#' then literal words: suffix test
)

// Topic is a compiled topic binding key. Its Match method is equivalent to
// TopicMatch but faster, and does not allocate. A Topic is immutable and
// safe for concurrent use.
type Topic struct {
	key  string
	mode topicMode
	// modePrefix: the literal part without the trailing ".#" (lit) and the
	// same followed by a dot (litDot). modeSuffix: the literal part without
	// the leading "#." (lit) and the same after a dot (litDot).
	lit, litDot string
	toks        []token // modeGeneral; consecutive '#' collapsed
}

// CompileTopic compiles a topic binding key. Every string is a valid
// binding key.
func CompileTopic(bindingKey string) *Topic {
	t := &Topic{key: bindingKey}
	if bindingKey == "" {
		t.mode = modeLiteral
		return t
	}
	wildcards, hashes, words := 0, 0, strings.Count(bindingKey, ".")+1
	toks := make([]token, 0, words)
	for pos := 0; pos != noWord(bindingKey); {
		w, next := wordAt(bindingKey, pos)
		pos = next
		switch w {
		case "#":
			wildcards++
			hashes++
			if n := len(toks); n > 0 && toks[n-1].kind == tokHash {
				continue // "#.#" matches exactly what "#" does
			}
			toks = append(toks, token{kind: tokHash})
		case "*":
			wildcards++
			toks = append(toks, token{kind: tokStar})
		default:
			toks = append(toks, token{kind: tokLiteral, lit: w})
		}
	}
	switch {
	case wildcards == 0:
		t.mode = modeLiteral
	case hashes == words:
		t.mode = modeAll
	case toks[len(toks)-1].kind == tokHash && allLiteral(toks[:len(toks)-1]):
		// "a.b.#" (or "a.b.#.#"): the key's literal part, then anything.
		t.mode = modePrefix
		t.lit = joinLiterals(toks[:len(toks)-1])
		t.litDot = t.lit + "."
	case toks[0].kind == tokHash && allLiteral(toks[1:]):
		// "#.a.b" (or "#.#.a.b"): anything, then the literal part.
		t.mode = modeSuffix
		t.lit = joinLiterals(toks[1:])
		t.litDot = "." + t.lit
	default:
		t.mode = modeGeneral
		t.toks = toks
	}
	return t
}

func allLiteral(toks []token) bool {
	for _, tk := range toks {
		if tk.kind != tokLiteral {
			return false
		}
	}
	return true
}

// joinLiterals joins literal tokens with dots.
func joinLiterals(toks []token) string {
	var b strings.Builder
	for i, tk := range toks {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tk.lit)
	}
	return b.String()
}

// Key returns the binding key t was compiled from.
func (t *Topic) Key() string { return t.key }

// String returns the binding key t was compiled from.
func (t *Topic) String() string { return t.key }

// Match reports whether routingKey matches t with AMQP semantics. It does
// not allocate.
func (t *Topic) Match(routingKey string) bool {
	switch t.mode {
	case modeLiteral:
		return routingKey == t.key
	case modeAll:
		return true
	case modePrefix:
		// The literal words, then '#' taking zero words (equal keys) or at
		// least one word (a dot after the prefix). An empty prefix is one
		// empty word, which the empty routing key (no words) lacks.
		return (routingKey == t.lit && t.lit != "") || strings.HasPrefix(routingKey, t.litDot)
	case modeSuffix:
		// The mirror image of modePrefix.
		return (routingKey == t.lit && t.lit != "") || strings.HasSuffix(routingKey, t.litDot)
	}
	return t.matchGeneral(routingKey)
}

// matchGeneral is TopicMatch's greedy algorithm over precompiled tokens.
func (t *Topic) matchGeneral(rk string) bool {
	toks := t.toks
	n := len(toks)
	rEnd := noWord(rk)
	pi, rp := 0, firstWord(rk)
	hashNext, hashRP := -1, 0
	for rp != rEnd {
		if pi < n {
			switch tk := &toks[pi]; tk.kind {
			case tokHash:
				hashNext, hashRP = pi+1, rp
				pi++
				continue
			case tokStar:
				_, rnext := wordAt(rk, rp)
				pi, rp = pi+1, rnext
				continue
			default:
				if w, rnext := wordAt(rk, rp); w == tk.lit {
					pi, rp = pi+1, rnext
					continue
				}
			}
		}
		if hashNext < 0 {
			return false
		}
		_, hashRP = wordAt(rk, hashRP)
		pi, rp = hashNext, hashRP
	}
	// Only a trailing '#' (collapsed to one token) may remain.
	return pi == n || (pi == n-1 && toks[pi].kind == tokHash)
}

// KombuTopicPattern returns the regular expression that Python kombu
// (virtual/exchange.py, TopicExchange.key_to_pattern) stores for a topic
// binding key, byte for byte, so that bindings written by Go can be found
// and removed by Python and the other way round (wire format §2.2, §3.4).
//
// Every character that is not alphanumeric (Python's str.isalnum: Unicode
// letters and numbers) and is not '.', '#' or '*' gets a backslash in front
// of it, NUL becomes the four characters `\000`, a word that is exactly '*'
// becomes `.*?[^\.]`, a word that is exactly '#' becomes `.*?`, and the
// words are joined with `\.` between '^' and '$'.
//
// The pattern is only written to storage; Go never routes with it (see the
// package documentation). Go's Unicode tables (15.0) are used for isalnum,
// which agrees with Python 3.12; Python 3.11 (Unicode 14) differs only for
// characters added in Unicode 15, none of them in the BMP. Bytes that are
// not valid UTF-8, which a Python str cannot hold, are escaped as single
// bytes.
func KombuTopicPattern(bindingKey string) string {
	var b strings.Builder
	b.Grow(2*len(bindingKey) + 8)
	b.WriteByte('^')
	for pos := 0; ; {
		w, next := wordAt(bindingKey, pos)
		switch w {
		case "*":
			b.WriteString(`.*?[^\.]`)
		case "#":
			b.WriteString(`.*?`)
		default:
			writeEscapedWord(&b, w)
		}
		if next == noWord(bindingKey) {
			break
		}
		b.WriteString(`\.`)
		pos = next
	}
	b.WriteByte('$')
	return b.String()
}

// writeEscapedWord writes w (which holds no '.') escaped as kombu's
// escape_regex(w, '.#*') does.
func writeEscapedWord(b *strings.Builder, w string) {
	for i := 0; i < len(w); {
		c := w[i]
		if c < utf8.RuneSelf {
			switch {
			case c == 0:
				b.WriteString(`\000`)
			case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '#', c == '*':
				b.WriteByte(c)
			default:
				b.WriteByte('\\')
				b.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(w[i:])
		if !(r == utf8.RuneError && size == 1) && (unicode.IsLetter(r) || unicode.IsNumber(r)) {
			b.WriteString(w[i : i+size])
		} else {
			b.WriteByte('\\')
			b.WriteString(w[i : i+size])
		}
		i += size
	}
}
