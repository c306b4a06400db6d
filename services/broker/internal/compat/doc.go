// Package compat holds the broker's compatibility tests: the runnel-broker
// binary, started against Runnel's coordinator or Apache ZooKeeper, driven
// by real Kafka clients (franz-go, sarama, kcat, kafka-python,
// confluent-kafka) and by hand-made bad input. It has no non-test code.
package compat
