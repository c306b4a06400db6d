package compat

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/runnel-io/runnel/services/broker/internal/brokertest"
)

// TestZnodeLayout registers a broker in Apache ZooKeeper 3.8 and in
// Runnel's coordinator, under a chroot, and checks Kafka 2.x's znodes and
// JSON with a plain ZooKeeper client.
func TestZnodeLayout(t *testing.T) {
	servers := map[string]func(testing.TB) *brokertest.Process{
		"zookeeper":   brokertest.ZooKeeper,
		"coordinator": brokertest.Coordinator,
	}
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			zkp := start(t)
			b := brokertest.StartBroker(t, zkp.Addr+"/kafka", brokertest.BrokerOptions{ID: 7, Args: []string{"--rack", "r1"}})
			conn, _, err := zk.Connect([]string{zkp.Addr}, 10*time.Second, zk.WithLogInfo(false))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			get := func(path string) ([]byte, *zk.Stat) {
				t.Helper()
				data, st, err := conn.Get("/kafka" + path)
				if err != nil {
					t.Fatalf("get %s: %v", path, err)
				}
				return data, st
			}
			var reg struct {
				Endpoints []string `json:"endpoints"`
				Host      string   `json:"host"`
				Port      int      `json:"port"`
				Version   int      `json:"version"`
				Rack      string   `json:"rack"`
				JmxPort   int      `json:"jmx_port"`
				Timestamp string   `json:"timestamp"`
			}
			data, st := get("/brokers/ids/7")
			if err := json.Unmarshal(data, &reg); err != nil {
				t.Fatalf("/brokers/ids/7 %s: %v", data, err)
			}
			host, port, _ := strings.Cut(b.Addr, ":")
			if reg.Host != host || reg.Version != 5 || reg.Rack != "r1" || len(reg.Endpoints) != 1 || reg.Endpoints[0] != "PLAINTEXT://"+b.Addr || reg.Timestamp == "" {
				t.Fatalf("registration %s (broker at %s:%s)", data, host, port)
			}
			if st.EphemeralOwner == 0 {
				t.Fatal("/brokers/ids/7 is not ephemeral")
			}
			data, st = get("/controller")
			var ctrl struct {
				Version  int `json:"version"`
				BrokerID int `json:"brokerid"`
			}
			if err := json.Unmarshal(data, &ctrl); err != nil || ctrl.BrokerID != 7 || ctrl.Version != 1 || st.EphemeralOwner == 0 {
				t.Fatalf("/controller %s (%v)", data, err)
			}
			if data, _ := get("/controller_epoch"); string(data) != "1" {
				t.Fatalf("/controller_epoch %q", data)
			}
			data, _ = get("/cluster/id")
			var cid struct {
				Version string `json:"version"`
				ID      string `json:"id"`
			}
			if err := json.Unmarshal(data, &cid); err != nil || cid.Version != "1" || len(cid.ID) != 22 {
				t.Fatalf("/cluster/id %s", data)
			}

			ctx := brokertest.Context(t, time.Minute)
			c := &cluster{coord: zkp, broker: b}
			adm := kadm.NewClient(c.client(t))
			if _, err := adm.CreateTopic(ctx, 2, 1, map[string]*string{"retention.ms": strp("1000")}, "layout"); err != nil {
				t.Fatal(err)
			}
			data, _ = get("/brokers/topics/layout")
			var asg struct {
				Version    int                `json:"version"`
				Partitions map[string][]int32 `json:"partitions"`
			}
			if err := json.Unmarshal(data, &asg); err != nil || asg.Version != 2 || len(asg.Partitions) != 2 || asg.Partitions["1"][0] != 7 {
				t.Fatalf("/brokers/topics/layout %s", data)
			}
			data, _ = get("/brokers/topics/layout/partitions/1/state")
			var state struct {
				ControllerEpoch int     `json:"controller_epoch"`
				Leader          int     `json:"leader"`
				Version         int     `json:"version"`
				LeaderEpoch     int     `json:"leader_epoch"`
				ISR             []int32 `json:"isr"`
			}
			if err := json.Unmarshal(data, &state); err != nil || state.Leader != 7 || state.Version != 1 || state.LeaderEpoch != 0 ||
				len(state.ISR) != 1 || state.ISR[0] != 7 || state.ControllerEpoch != 1 {
				t.Fatalf("partition state %s", data)
			}
			if data, _ := get("/config/topics/layout"); string(data) != `{"version":1,"config":{"retention.ms":"1000"}}` {
				t.Fatalf("/config/topics/layout %s", data)
			}
			if _, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: "retention.ms", Value: strp("2000")}}, "layout"); err != nil {
				t.Fatal(err)
			}
			if data, _ := get("/config/topics/layout"); string(data) != `{"version":1,"config":{"retention.ms":"2000"}}` {
				t.Fatalf("/config/topics/layout after IncrementalAlterConfigs: %s", data)
			}
			if changes, _, err := conn.Children("/kafka/config/changes"); err != nil || len(changes) == 0 || !strings.HasPrefix(changes[0], "config_change_") {
				t.Fatalf("/config/changes: %v %v", changes, err)
			}
			if _, err := adm.CreatePartitions(ctx, 3, "layout"); err != nil {
				t.Fatal(err)
			}
			if ok, _, _ := conn.Exists("/kafka/brokers/topics/layout/partitions/2/state"); !ok {
				t.Fatal("no state for the added partition 2")
			}
			resp, err := adm.DeleteTopics(ctx, "layout")
			if err != nil || resp["layout"].Err != nil {
				t.Fatalf("delete: %v %v", err, resp)
			}
			for _, p := range []string{"/kafka/brokers/topics/layout", "/kafka/config/topics/layout", "/kafka/admin/delete_topics/layout"} {
				if ok, _, _ := conn.Exists(p); ok {
					t.Errorf("%s still exists after the deletion", p)
				}
			}
			// A clean stop ends the session: the registration and the
			// controller node go.
			b.Stop()
			for _, p := range []string{"/kafka/brokers/ids/7", "/kafka/controller"} {
				if ok, _, _ := conn.Exists(p); ok {
					t.Errorf("%s still exists after the broker stopped", p)
				}
			}
		})
	}
}
