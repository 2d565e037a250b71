package codec

import (
	"slices"
	"strings"
	"sync"
)

// tableEntry is what a table holds: serializers and compressors, both
// found by name, alias or content type.
type tableEntry[T any] interface {
	keys() (name, contentType string, aliases []string)
	// detached returns a copy that shares no slice with the table's.
	detached() T
}

// table is the registry shared by Registry and CompressionRegistry:
// entries in registration order, unique by name ignoring case, looked up
// by name, alias or content type. Names beat aliases beat content types,
// and among equals the later registration wins, as in kombu. It is safe
// for concurrent use; the zero value is empty.
type table[T tableEntry[T]] struct {
	mu      sync.RWMutex
	entries []T
	byKey   map[string]int // lower-cased name, alias or content type -> entry
	byType  map[string]int // normalized content type -> entry
}

// put adds e, replacing the entry with the same name.
func (t *table[T]) put(e T) {
	name := normalizeName(nameOf(e))
	e = e.detached()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = slices.DeleteFunc(t.entries, func(x T) bool { return normalizeName(nameOf(x)) == name })
	t.entries = append(t.entries, e)
	t.reindex()
}

// remove drops the entry with that name, if any.
func (t *table[T]) remove(name string) {
	name = normalizeName(name)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.entries = slices.DeleteFunc(t.entries, func(x T) bool { return normalizeName(nameOf(x)) == name })
	t.reindex()
}

func nameOf[T tableEntry[T]](e T) string {
	name, _, _ := e.keys()
	return name
}

func (t *table[T]) reindex() {
	t.byKey = make(map[string]int, 3*len(t.entries))
	t.byType = make(map[string]int, len(t.entries))
	for i, e := range t.entries {
		_, ct, _ := e.keys()
		ct = normalizeContentType(ct)
		t.byType[ct] = i
		t.byKey[ct] = i
	}
	for i, e := range t.entries {
		_, _, aliases := e.keys()
		for _, a := range aliases {
			if a := normalizeName(a); a != "" {
				t.byKey[a] = i
			}
		}
	}
	for i, e := range t.entries {
		t.byKey[normalizeName(nameOf(e))] = i
	}
}

// lookup finds an entry by name, alias or content type, ignoring case and
// content-type parameters.
func (t *table[T]) lookup(key string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	i, ok := t.byKey[normalizeName(key)]
	if !ok {
		i, ok = t.byKey[normalizeContentType(key)]
	}
	if !ok {
		var zero T
		return zero, false
	}
	return t.entries[i].detached(), true
}

// byContentType finds the entry registered for a content type.
func (t *table[T]) byContentType(ct string) (T, bool) {
	t.mu.RLock()
	defer t.mu.RUnlock()
	i, ok := t.byType[normalizeContentType(ct)]
	if !ok {
		var zero T
		return zero, false
	}
	return t.entries[i].detached(), true
}

// normalizeContentType lower-cases a content type and drops its parameters
// ("Application/JSON; charset=utf-8" -> "application/json").
func normalizeContentType(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

func normalizeName(name string) string {
	return strings.ToLower(strings.TrimSpace(name))
}
