package codec

import (
	"slices"
	"sync"
)

// A program pays only for the codecs it links: json, raw and zlib are in
// this package (standard library only); msgpack, yaml, bzip2, xz, zstd and
// brotli each live in a package of their own that registers itself when
// imported, as image/png does for image.Decode:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/msgpack"
//
// or all of them at once with codec/all.

// defaults is what NewRegistry and NewCompressionRegistry start from.
var defaults defaultSet

type defaultSet struct {
	mu         sync.Mutex
	linkedSer  []Serializer
	linkedComp []Compressor
}

func (d *defaultSet) serializers() []Serializer {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append(slices.Clone(coreSerializers), d.linkedSer...)
}

func (d *defaultSet) compressors() []Compressor {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append(slices.Clone(coreCompressors), d.linkedComp...)
}

// RegisterDefault adds s to Default and to every registry NewRegistry
// returns from now on. Codec packages call it from their init function.
func RegisterDefault(s Serializer) error {
	if err := Default.Register(s); err != nil {
		return err
	}
	defaults.mu.Lock()
	defer defaults.mu.Unlock()
	defaults.linkedSer = append(defaults.linkedSer, s.detached())
	return nil
}

// RegisterDefaultCompressor adds m to DefaultCompression and to every
// registry NewCompressionRegistry returns from now on. Codec packages call
// it from their init function.
func RegisterDefaultCompressor(m Compressor) error {
	if err := DefaultCompression.Register(m); err != nil {
		return err
	}
	defaults.mu.Lock()
	defer defaults.mu.Unlock()
	defaults.linkedComp = append(defaults.linkedComp, m.detached())
	return nil
}

// optionalCodec is one of kombu's formats whose code lives in a package of
// its own, so that an error can name the import a program is missing.
type optionalCodec struct {
	pkg         string // folder under kombu/codec
	contentType string
}

func (o optionalCodec) hint() string {
	return `add import _ "github.com/kombu-go/kombu/kombu/codec/` + o.pkg + `" (or codec/all)`
}

var optionalCodecs = func() map[string]optionalCodec {
	m := make(map[string]optionalCodec)
	for _, c := range []struct {
		pkg, contentType string
		names            []string
	}{
		{"msgpack", ContentTypeMsgpack, []string{"msgpack", "x-msgpack"}},
		{"yaml", ContentTypeYAML, []string{"yaml", "x-yaml"}},
		{"bzip2", CompressionBzip2, []string{"bzip2", "bzip"}},
		{"xz", CompressionXZ, []string{"xz", "lzma"}},
		{"zstd", CompressionZstd, []string{"zstd", "zstandard"}},
		{"brotli", CompressionBrotli, []string{"brotli"}},
	} {
		o := optionalCodec{pkg: c.pkg, contentType: c.contentType}
		m[c.contentType] = o
		for _, n := range c.names {
			m[n] = o
		}
	}
	return m
}()

// lookupOptional finds kombu's optional codec that a name, alias or content
// type stands for.
func lookupOptional(key string) (optionalCodec, bool) {
	if o, ok := optionalCodecs[normalizeName(key)]; ok {
		return o, true
	}
	o, ok := optionalCodecs[normalizeContentType(key)]
	return o, ok
}
