// Package all links every optional codec, so that a program decodes and
// encodes everything Python kombu does (msgpack, yaml; bzip2, xz, zstd,
// brotli). Import it for its side effect:
//
//	import _ "github.com/kombu-go/kombu/kombu/codec/all"
//
// A program that knows which formats it meets imports only those packages
// and links less (see docs/design.md for the sizes).
package all

import (
	_ "github.com/kombu-go/kombu/kombu/codec/brotli"  // brotli compression
	_ "github.com/kombu-go/kombu/kombu/codec/bzip2"   // bzip2 compression
	_ "github.com/kombu-go/kombu/kombu/codec/msgpack" // msgpack serializer
	_ "github.com/kombu-go/kombu/kombu/codec/xz"      // xz (kombu's lzma) compression
	_ "github.com/kombu-go/kombu/kombu/codec/yaml"    // yaml serializer
	_ "github.com/kombu-go/kombu/kombu/codec/zstd"    // zstd compression
)
