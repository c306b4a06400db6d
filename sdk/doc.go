// Package sdk is Runnel's Go SDK: typed producers and consumers, and admin
// helpers, for Runnel's broker and any other Kafka cluster. It is built on
// franz-go's kgo client; it adds types, batch serialisation through
// Runnel's serializers (in-process or plugin processes), and OpenTelemetry
// instrumentation, and it states the duties of each role in its API.
//
// # Options
//
// Every constructor takes options of one pattern (franz-go's): Opt values
// apply to every client (Brokers, ClientID, TracerProvider, ...), while
// ProducerOpt and ConsumerOpt values apply to one role. Every call that
// talks to the cluster takes a context.
//
// # Producer duties
//
//   - Publish: Send and SendBatch queue records for a topic and return at
//     once; SendSync waits for the cluster's answer.
//   - Delivery results: each record's callback gets a Delivery with its
//     partition and offset, or the error that ended it.
//   - Error handling: a value the serializer rejects never reaches the
//     cluster; its Delivery carries a *SerializeError naming the record
//     (topic, index in the batch, key) and the field. Delivery errors are
//     Kafka errors (kerr) or context errors.
//   - Retries with idempotence: idempotent writes are on by default (the
//     broker drops the duplicates a retry could create), so retries are
//     safe and unlimited until DeliveryTimeout. RequiredAcks(LeaderAck) or
//     DisableIdempotence turn this off.
//   - Close flushes: it waits for every queued record's answer (bounded by
//     its context) before closing the connections.
//
// # Consumer duties
//
//   - Poll: Poll returns a batch of decoded records; a record that cannot
//     be decoded is returned with Err set (a *DeserializeError), so no
//     offset is silently skipped.
//   - Commit: automatic by default (polled records are committed in the
//     background, on rebalance and on Close); with ManualCommit, Commit
//     and CommitPolled commit exactly what the application says.
//   - Parallelism through groups: consumers sharing a Group split the
//     partitions of their topics; each partition goes to at most one of
//     them. A consumer that gets no partition because the group has more
//     consumers than partitions logs a warning (and Balance reports it):
//     that consumer stays idle.
//   - Rebalance callbacks: OnAssigned, OnRevoked and OnLost run when the
//     group moves partitions.
//   - Seek, Pause and Resume move or stop the reading of partitions.
//   - Close commits (when automatic), leaves the group and closes.
//
// # Serialisation
//
// A Codec turns typed keys or values into bytes, a batch at a time. Bytes,
// String and JSON are in-process; SerdeCodec adapts any serializer of
// sdk/serde (json, tsv, avro, or a third party's plugin process) to a Go
// type through its canonical JSON form.
//
// # Telemetry
//
// Spans follow OpenTelemetry's messaging semantic conventions: "send T"
// (PRODUCER, one per record), "poll T" (CLIENT, the receive span of one
// Poll, linking to each record's send span) and "process T" (CONSUMER,
// around Process), with messaging.system=kafka, messaging.operation.name
// and .type, messaging.destination.name and .partition.id,
// messaging.kafka.offset, messaging.kafka.message.key,
// messaging.consumer.group.name, messaging.client.id, and error.type when
// they fail. The attributes a sampler may decide on are given when a span
// starts. The W3C traceparent of the send span travels in each record's
// headers; the process span's parent is that send span (the message's
// creation context), so one trace covers both sides, and it links to the
// creation context and to the span of the context it is given, if any.
// Metrics: records sent (messaging.client.sent.messages) and received
// (messaging.client.consumed.messages), with error.type on those that
// failed; errors by kind (runnel.client.errors); and consumer lag per
// partition with its maximum, records-lag-max, as Kafka's Java client
// reports it.
//
// A client looks at its TracerProvider and MeterProvider once, when it is
// made: if they record nothing (OpenTelemetry's global providers with no
// SDK installed), the produce path skips starting spans and counting
// records, which would otherwise be a tenth of its cost. Install SDK
// providers before making clients. A send whose context carries a span is
// traced either way, so a trace that reaches the producer continues into
// the record's headers.
package sdk
