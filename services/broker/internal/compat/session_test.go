package compat

import (
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestSessionExpiryReregisters freezes the broker (SIGSTOP) for longer
// than its session timeout, so that the coordinator expires its session
// and removes its ephemeral znodes; once thawed, the broker registers again
// with a new session, becomes controller again and keeps serving.
func TestSessionExpiryReregisters(t *testing.T) {
	c := startCluster(t, brokertest.BrokerOptions{Settings: []string{"zookeeper.session.timeout.ms=4000"}})
	ctx := brokertest.Context(t, 2*time.Minute)
	topic := uniqueTopic("session")
	c.createTopic(t, ctx, topic, 1, nil)
	cl := c.client(t, kgo.DefaultProduceTopic(topic))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	conn, _, err := zk.Connect([]string{c.coord.Addr}, 10*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c.broker.Pause()
	waitFor(t, 30*time.Second, "session expiry", func() bool {
		ok, _, _ := conn.Exists("/brokers/ids/1")
		return !ok
	})
	c.broker.Resume()
	waitFor(t, 60*time.Second, "re-registration", func() bool {
		ok, _, _ := conn.Exists("/brokers/ids/1")
		ctrl, _, _ := conn.Exists("/controller")
		return ok && ctrl
	})
	if !strings.Contains(c.broker.Log(), "registering again") {
		t.Fatalf("the broker did not notice the expired session; log:\n%s", c.broker.Log())
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("produce after re-registration: %v", err)
	}
	if got := consumeAll(t, ctx, c, topic, 2); string(got[0].Value) != "before" || string(got[1].Value) != "after" {
		t.Fatalf("records %q, %q", got[0].Value, got[1].Value)
	}
}
