// Command producer sends typed JSON orders with Runnel's Go SDK and prints
// where each one landed.
//
//	go run ./producer --bootstrap-server 127.0.0.1:9092 --topic orders --count 10
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/runnel-io/runnel/sdk"
)

// Order is the value type; the JSON codec writes it as a JSON object.
type Order struct {
	ID       int     `json:"id"`
	Customer string  `json:"customer"`
	Amount   float64 `json:"amount"`
}

func main() {
	bootstrap := flag.String("bootstrap-server", "127.0.0.1:9092", "broker address")
	topic := flag.String("topic", "orders", "topic to write")
	count := flag.Int("count", 10, "orders to send")
	flag.Parse()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// Keys are customer names, so one customer's orders stay in order on
	// one partition. Idempotent writes are on by default.
	p, err := sdk.NewProducer(sdk.String(), sdk.JSON[Order](),
		sdk.Brokers(*bootstrap), sdk.DefaultTopic(*topic), sdk.ClientID("example-producer"))
	if err != nil {
		fail(err)
	}
	msgs := make([]sdk.Message[string, Order], *count)
	for i := range msgs {
		c := fmt.Sprintf("customer-%d", i%3)
		msgs[i] = sdk.Message[string, Order]{Key: c, Value: Order{ID: i, Customer: c, Amount: float64(i) * 1.5}}
	}
	deliveries, err := p.SendSync(ctx, msgs...)
	if err != nil {
		fail(err)
	}
	for _, d := range deliveries {
		fmt.Printf("order %d (key %s) -> partition %d offset %d\n", d.Message.Value.ID, d.Message.Key, d.Partition, d.Offset)
	}
	// Close flushes whatever is still queued.
	if err := p.Close(ctx); err != nil {
		fail(err)
	}
	fmt.Printf("produced %d orders to %s\n", len(deliveries), *topic)
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "producer:", err)
	os.Exit(1)
}
