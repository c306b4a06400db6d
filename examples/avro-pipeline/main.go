// Command avro-pipeline writes user events as Avro (single-object
// encoding, so each record names its schema by fingerprint) and reads them
// back, through Runnel's avro serializer: linked in-process, or as the
// runnel-serde-avro plugin process when one is found on RUNNEL_PLUGIN_PATH
// or in a plugins folder beside this binary (--plugin-mode process
// insists on it).
//
//	go run ./avro-pipeline --bootstrap-server 127.0.0.1:9092 --topic users
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/runnel-io/runnel/plugins/serde/builtin"
	"github.com/runnel-io/runnel/sdk"
	"github.com/runnel-io/runnel/sdk/serde"
)

const schema = `{
  "type": "record", "name": "UserEvent", "namespace": "example",
  "fields": [
    {"name": "user", "type": "string"},
    {"name": "action", "type": {"type": "enum", "name": "Action", "symbols": ["SIGNUP", "LOGIN", "LOGOUT"]}},
    {"name": "at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    {"name": "referrer", "type": ["null", "string"], "default": null}
  ]
}`

// UserEvent is the Go side of the schema; values reach the serializer as
// JSON (its canonical form) through SerdeCodec.
type UserEvent struct {
	User     string  `json:"user"`
	Action   string  `json:"action"`
	At       int64   `json:"at"`
	Referrer *string `json:"referrer"`
}

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "user-events", "topic to write and read")
	mode := flag.String("plugin-mode", "auto", "auto, builtin or process")
	flag.Parse()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	m, err := serde.ParseMode(*mode)
	if err != nil {
		fail(err)
	}
	loader := &serde.Loader{Builtins: builtin.Plugins(), Mode: m}
	avro, err := loader.Open(ctx, "avro", serde.Config{Schema: []byte(schema)})
	if err != nil {
		fail(err)
	}
	defer avro.Close()
	how := "in-process"
	if serde.ProcessOf(avro) != nil {
		how = "as a plugin process"
	}
	fmt.Printf("avro serializer running %s\n", how)

	codec := sdk.SerdeCodec[UserEvent](avro)
	p, err := sdk.NewProducer(sdk.String(), codec, sdk.Brokers(*bootstrap), sdk.DefaultTopic(*topic))
	if err != nil {
		fail(err)
	}
	ref := "newsletter"
	events := []sdk.Message[string, UserEvent]{
		{Key: "ann", Value: UserEvent{User: "ann", Action: "SIGNUP", At: 1700000000000, Referrer: &ref}},
		{Key: "ann", Value: UserEvent{User: "ann", Action: "LOGIN", At: 1700000001000}},
		{Key: "bob", Value: UserEvent{User: "bob", Action: "DANCE", At: 1700000002000}}, // not in the enum
		{Key: "bob", Value: UserEvent{User: "bob", Action: "LOGOUT", At: 1700000003000}},
	}
	// One serializer call for the whole batch; the bad event is reported
	// by record and field, and the others are sent.
	ds, _ := p.SendSync(ctx, events...)
	sent := 0
	for _, d := range ds {
		if d.Err != nil {
			fmt.Printf("rejected: %v\n", d.Err)
			continue
		}
		sent++
	}
	if err := p.Close(ctx); err != nil {
		fail(err)
	}

	c, err := sdk.NewConsumer(sdk.String(), codec, sdk.Brokers(*bootstrap), sdk.Topics(*topic), sdk.FromBeginning())
	if err != nil {
		fail(err)
	}
	defer c.Close(ctx)
	for got := 0; got < sent; {
		recs, err := c.Poll(ctx)
		if err != nil {
			fail(err)
		}
		for _, r := range recs {
			if r.Err != nil {
				fail(r.Err)
			}
			got++
			fmt.Printf("read %s %s at %d (offset %d)\n", r.Value.User, r.Value.Action, r.Value.At, r.Offset)
		}
	}
	fmt.Printf("avro pipeline: %d events sent and read back\n", sent)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "avro-pipeline:", err)
	os.Exit(1)
}
