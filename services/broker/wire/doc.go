// Package wire is the broker's side of the Kafka wire protocol below the
// message bodies: size-prefixed frames, request headers (v1 and the
// flexible v2 with tagged fields), the connection loop and the ordering rules
// every Kafka client relies on.
//
// A connection reads one frame at a time and hands the decoded request to a
// Handler on the reading goroutine, in arrival order, so that requests whose
// effects must follow the wire order (pipelined produce requests on one
// partition) apply in that order. A Handler may answer later, from another
// goroutine (a Fetch that long-polls); the connection's writer still sends
// responses strictly in request order, as the protocol requires, which lets a
// client pipeline requests behind a waiting fetch.
//
// The protocol's framing errors are connection-scoped: a frame larger than
// Config.MaxRequestSize, a header that does not parse, an unknown API key or
// an unsupported version (other than of ApiVersions) close that connection
// only. ApiVersions at a version the broker does not know is answered at
// version 0 with UNSUPPORTED_VERSION and the supported ranges, which is how
// clients discover what to speak. ApiVersions responses always use the
// non-flexible response header (KIP-511), and produce requests with acks=0
// get no response at all.
//
// A response may carry file regions (Request.RespondFile): placeholders in
// the encoded response that the writer replaces with byte ranges of
// segment files, sent with sendfile(2) at explicit offsets, so fetched
// record batches go from the page cache to the socket without a copy
// through user space.
package wire
