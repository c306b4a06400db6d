// Package jute is the ZooKeeper wire codec: the big-endian "jute" encoding of
// ints, longs, booleans, buffers, strings and vectors, and every record that
// ZooKeeper 3.8 clients exchange with a server (requests, responses, the
// connect handshake, watcher events and multi operations).
//
// Decoding never panics and never allocates more than the input can hold: a
// length that runs past the end of the packet, or a negative length other
// than the -1 that marks a null buffer or vector, sets a sticky error that
// Decoder.Err reports. Callers decode a whole frame, then check Err once.
//
// Framing (the 4-byte length before each packet) is the caller's: see
// ReadFrame and AppendFrame.
package jute
