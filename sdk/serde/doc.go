// Package serde is the contract between Runnel and serializers: a Go
// interface (Serde), the gRPC service that carries it across a process
// boundary (serdev1/serde.proto), the go-plugin glue on both sides (Serve
// for plugin binaries, Loader for hosts), and the registry of built-ins
// that hosts link in-process.
//
// # Canonical form
//
// Values cross the boundary in one documented form, whatever the format:
// each value is one UTF-8 JSON document (RFC 8259), in any layout. Encode
// takes canonical values and returns wire bytes, the bytes stored in a
// Kafka record; Decode takes wire bytes and returns canonical values. A
// serializer documents how its values map to JSON (the avro plugin, for
// instance, gives bytes as base64 strings and unions as their plain value).
// Typed Go values reach a serializer through encoding/json: see the sdk
// package's SerdeCodec.
//
// # Batches
//
// Every call works on a batch: item i of the result answers item i of the
// input. A batch in which some items are bad still returns the others: the
// error is then a *BatchError listing each bad item as a *RecordError with
// its index and the path of the offending field. Any other error means the
// whole call failed.
//
// # Capabilities
//
// A serializer's Description lists capabilities the host can rely on:
//
//   - "encode", "decode": the directions it implements (both, usually).
//   - "schema": it needs (or accepts) a schema file in Config.Schema.
//   - "text": its wire form of a value is one line of UTF-8 text, so a
//     command-line tool may read input lines in the wire form itself
//     (runnel produce --format tsv reads TSV lines) rather than as JSON.
//
// # Versions
//
// Protocol version 1 is package serdev1. Hosts and plugins negotiate the
// version through go-plugin's VersionedPlugins; a plugin that speaks only
// versions the host lacks fails at start-up with a message naming both
// sides' versions.
//
// # Built-in or process
//
// The same Plugin value (a Description and a Factory) serves both modes: a
// plugin binary passes it to Serve, and a host can link it and call it
// in-process (Vault's built-in plugins). Loader picks by discovery order
// (RUNNEL_PLUGIN_PATH, the plugins folder beside the binary, then the
// built-ins) unless told to prefer one mode.
package serde
