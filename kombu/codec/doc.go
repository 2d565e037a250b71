// Package codec turns message bodies into bytes and back the way Python
// kombu does, and compresses them with kombu's compression methods. The
// names, mime types and byte formats are kombu's (5.2.4; see
// shared/reference/kombu-wire-format.md §1), so a Go producer and a Python
// consumer, or the reverse, understand each other.
//
// # Serializers
//
// A [Registry] maps serializer names to [Serializer] values and content
// types back to decoders. [NewRegistry] returns one holding the builtins,
// and [Default] is such a registry shared by the package-level [Encode]
// and [Decode]:
//
//	name      content_type                     content_encoding  package
//	json      application/json                 utf-8             codec (the default)
//	raw       application/data                 binary            codec (utf-8 for a string)
//	pickle    application/x-python-serialize   binary            codec (recognised, never encoded or decoded)
//	msgpack   application/x-msgpack            binary            codec/msgpack (Python's use_bin_type form)
//	yaml      application/x-yaml               utf-8             codec/yaml
//
// # Linking only what a program uses
//
// Package codec needs only the standard library. The other formats live in
// packages of their own that register themselves when imported, as
// image/png does for image.Decode; codec/all imports every one of them:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/msgpack"
//	import _ "github.com/kombu-go/kombu/kombu/codec/all"
//
// Using one of kombu's formats whose package is not linked (to encode,
// decode, compress or decompress) fails with [ErrUnknownSerializer] or
// [ErrUnknownCompression] and an error naming the import to add. A codec
// package of one's own registers itself the same way, with
// [RegisterDefault] or [RegisterDefaultCompressor].
//
// With no serializer named, [Registry.Encode] does what kombu's Producer
// does: a []byte is sent as is with application/data + binary, a string as
// text/plain + utf-8, and anything else with the default serializer, json.
// A caller that passes an explicit content type sends a string or []byte
// that is already serialized.
//
// [Registry.Decode] does what kombu's consumer does: a missing content type
// means application/data; pickle is refused with [ErrUnsafeContent], always,
// whatever is registered; a registered decoder is applied; any other body is
// returned as bytes (content encoding binary or ascii-8bit) or as text
// decoded from its charset (utf-8 when missing). The accept list that a
// kombu consumer applies before this step (kombu refuses yaml and msgpack
// unless accepted) is the caller's job; this package decodes every
// registered type except pickle.
//
// Go values are encoded with encoding/json, github.com/vmihailenco/msgpack/v5
// (codec/msgpack) and go.yaml.in/yaml/v3 (codec/yaml). msgpack honours
// `msgpack` struct tags and falls back to `json` tags, so structs get the
// same keys as in JSON; yaml uses `yaml` tags (lower-cased field names
// without one).
//
// A json or yaml body whose content_encoding names another charset
// (latin-1, utf-16...) is read in that charset; Python kombu parses such a
// body as UTF-8 and fails on its first non-ASCII byte. Decoding into *any,
// *map[string]any or *[]any gives the same Go types for every serializer:
// integers as int64 (uint64 or *big.Int only when they do not fit),
// other numbers as float64, maps with string keys as map[string]any, byte
// strings (msgpack bin) as []byte. kombu 5.3+ writes some Python types as
// JSON objects with exactly the keys "__type__" and "__value__"; this
// package leaves such objects as plain maps when decoding. Go values encoded
// with encoding/json never produce that shape unless the caller builds it
// (a map or struct with exactly those two keys), which a kombu 5.3+
// consumer would then try to unwrap.
//
// # Compression
//
// A [CompressionRegistry] maps compression names, aliases and the header
// values kombu writes in the `compression` application header to a
// [Compressor]. [DefaultCompression] holds zlib and the linked methods:
//
//	name    header value            aliases           byte format                          package
//	zlib    application/x-gzip      gzip, zlib        zlib stream (RFC 1950), not gzip     codec
//	bzip2   application/x-bz2       bzip2, bzip       bzip2                                codec/bzip2
//	xz      application/x-lzma      lzma, xz          xz container                         codec/xz
//	zstd    application/zstd        zstd, zstandard   zstd frame with content size         codec/zstd
//	brotli  application/x-brotli    brotli            brotli                               codec/brotli
//
// Lookups are case-insensitive. kombu's "gzip" is really zlib; the zlib
// decompressor also reads a real gzip (RFC 1952) stream when the data starts
// with the gzip magic bytes 1f 8b, so either form is accepted.
// [CompressionRegistry.Decompress] never returns more than its limit
// ([DefaultMaxDecompressedSize], 64 MiB, by default): larger output is
// refused with [ErrTooLarge] while streaming, so a small compression bomb
// cannot make it allocate much more than the limit.
package codec
