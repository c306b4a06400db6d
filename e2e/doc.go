// Package e2e holds the tests that run Runnel's services together as real
// processes (the binaries make build puts in ./bin): the end-to-end trace
// from an SDK producer through the broker and its storage plugin process
// to the consumer, received by an OTLP/HTTP receiver inside the test, and
// the /metrics every service serves.
package e2e
