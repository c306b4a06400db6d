// Package examples holds runnable programs using Runnel's Go SDK, each a
// main package in its own folder:
//
//   - producer: typed JSON records with delivery results.
//   - consumer-group: members of a consumer group splitting partitions,
//     with rebalance callbacks and manual commits.
//   - avro-pipeline: records encoded with the avro serializer (in-process
//     or as a plugin process), read back and decoded.
//
// The tests build them and run them against a live broker.
package examples
