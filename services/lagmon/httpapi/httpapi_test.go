package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/metrics"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

// fixture: cluster "local", topic "orders" with 2 partitions; group
// "billing" falling behind on partition 0 (WARN) and fine on partition 1.
func fixture(t *testing.T) (*API, time.Time) {
	t.Helper()
	cfg, err := config.Parse(`
[general]
access-control-allow-origin = "*"
[storage]
intervals = 3
[cluster.local]
servers = ["127.0.0.1:9092"]
[notifier.hook]
class-name = "http"
url-open = "http://127.0.0.1:1/open"
[notifier.log]
class-name = "log"
`)
	if err != nil {
		t.Fatal(err)
	}
	now := time.UnixMilli(1_000_000)
	store := window.New(window.Config{Intervals: 3, Now: func() time.Time { return now }}, "local")
	for i := int64(0); i < 3; i++ {
		ts := now.UnixMilli() - 3000 + i*1000
		store.AddLogEnd("local", "orders", 0, 2, 1000+i*200, ts)
		store.AddLogEnd("local", "orders", 1, 2, 500, ts)
		store.AddCommit("local", "billing", "orders", 0, 900+i*100, i, ts)
		store.AddCommit("local", "billing", "orders", 1, 500, 10+i, ts)
	}
	store.SetOwner("local", "billing", "orders", 0, "/127.0.0.1", "consumer-1")
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.New(store, evaluate.Config{}, func() time.Time { return now }))
	api := New(Options{Store: store, Config: cfg, Listen: "127.0.0.1:8000", Now: func() time.Time { return now },
		Metrics: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), Ready: func() bool { return true }})
	return api, now
}

func get(t *testing.T, h http.Handler, method, path string) (int, map[string]any, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	body, _ := io.ReadAll(rec.Body)
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	return rec.Code, m, string(body)
}

func wantKeys(t *testing.T, what string, m map[string]any, keys ...string) {
	t.Helper()
	for _, k := range keys {
		if _, ok := m[k]; !ok {
			t.Errorf("%s lacks %q: %v", what, k, m)
		}
	}
}

func TestEnvelope(t *testing.T) {
	api, _ := fixture(t)
	code, m, _ := get(t, api, "GET", "/v3/kafka")
	if code != 200 || m["error"] != false || m["message"] != "cluster list returned" {
		t.Fatalf("%d %v", code, m)
	}
	req := m["request"].(map[string]any)
	if req["url"] != "/v3/kafka" || req["host"] == nil {
		t.Fatalf("request %v", req)
	}
	if cl := m["clusters"].([]any); len(cl) != 1 || cl[0] != "local" {
		t.Fatalf("clusters %v", cl)
	}
	rec := httptest.NewRecorder()
	api.ServeHTTP(rec, httptest.NewRequest("GET", "/v3/kafka", nil))
	if rec.Header().Get("Access-Control-Allow-Origin") != "*" || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("headers %v", rec.Header())
	}
}

func TestNotFound(t *testing.T) {
	api, _ := fixture(t)
	for _, tc := range []struct{ path, message string }{
		{"/v3/kafka/nope", "cluster module not found"},
		{"/v3/kafka/nope/topic", "cluster not found"},
		{"/v3/kafka/local/topic/nope", "cluster or topic not found"},
		{"/v3/kafka/nope/consumer", "cluster not found"},
		{"/v3/kafka/local/consumer/nope", "cluster or consumer not found"},
		{"/v3/config/storage/nope", "storage module not found"},
		{"/v3/config/evaluator/nope", "evaluator module not found"},
		{"/v3/config/consumer/nope", "consumer module not found"},
		{"/v3/config/notifier/nope", "notifier module not found"},
	} {
		code, m, body := get(t, api, "GET", tc.path)
		if code != 404 || m["error"] != true || m["message"] != tc.message {
			t.Errorf("%s: %d %s", tc.path, code, body)
		}
		wantKeys(t, tc.path, m, "request")
	}
	code, _, body := get(t, api, "GET", "/v2/whatever")
	if code != 404 || body != `{"error":true,"message":"invalid request type","result":{}}` {
		t.Errorf("unknown path: %d %s", code, body)
	}
	// An unknown group's status is Burrow's NOTFOUND object with a 404.
	code, m, _ := get(t, api, "GET", "/v3/kafka/local/consumer/nope/status")
	st := m["status"].(map[string]any)
	if code != 404 || m["error"] != false || st["status"] != "NOTFOUND" || st["complete"] != 1.0 {
		t.Errorf("unknown group status: %d %v", code, m)
	}
}

func TestAdmin(t *testing.T) {
	api, _ := fixture(t)
	if code, _, body := get(t, api, "GET", "/burrow/admin"); code != 200 || body != "GOOD" {
		t.Fatalf("%d %q", code, body)
	}
	if code, _, body := get(t, api, "GET", "/burrow/admin/ready"); code != 200 || body != "READY" {
		t.Fatalf("%d %q", code, body)
	}
	api.o.Ready = func() bool { return false }
	if code, _, body := get(t, api, "GET", "/burrow/admin/ready"); code != 503 || body != "STARTING" {
		t.Fatalf("%d %q", code, body)
	}
}

func TestTopics(t *testing.T) {
	api, _ := fixture(t)
	_, m, _ := get(t, api, "GET", "/v3/kafka/local/topic")
	if m["message"] != "topic list returned" || len(m["topics"].([]any)) != 1 {
		t.Fatalf("%v", m)
	}
	_, m, _ = get(t, api, "GET", "/v3/kafka/local/topic/orders")
	if offs := m["offsets"].([]any); m["message"] != "topic offsets returned" || len(offs) != 2 || offs[0] != 1400.0 || offs[1] != 500.0 {
		t.Fatalf("%v", m)
	}
	_, m, _ = get(t, api, "GET", "/v3/kafka/local/topic/orders/consumers")
	if cs := m["consumers"].([]any); m["message"] != "consumers of topic returned" || len(cs) != 1 || cs[0] != "billing" {
		t.Fatalf("%v", m)
	}
}

func TestConsumers(t *testing.T) {
	api, _ := fixture(t)
	_, m, _ := get(t, api, "GET", "/v3/kafka/local/consumer")
	if cs := m["consumers"].([]any); m["message"] != "consumer list returned" || len(cs) != 1 {
		t.Fatalf("%v", m)
	}
	_, m, body := get(t, api, "GET", "/v3/kafka/local/consumer/billing")
	if m["message"] != "consumer detail returned" {
		t.Fatalf("%s", body)
	}
	parts := m["topics"].(map[string]any)["orders"].([]any)
	p0 := parts[0].(map[string]any)
	wantKeys(t, "stored partition", p0, "offsets", "owner", "client_id", "current-lag")
	if p0["owner"] != "/127.0.0.1" || p0["client_id"] != "consumer-1" || p0["current-lag"] != 300.0 {
		t.Fatalf("partition 0 %v", p0)
	}
	offs := p0["offsets"].([]any)
	if len(offs) != 3 {
		t.Fatalf("offsets %v", offs)
	}
	o := offs[2].(map[string]any)
	wantKeys(t, "offset", o, "offset", "timestamp", "lag")
	if o["offset"] != 1100.0 || o["lag"] != 300.0 {
		t.Fatalf("newest offset %v", o)
	}

	code, m, body := get(t, api, "GET", "/v3/kafka/local/consumer/billing/status")
	if code != 200 || m["message"] != "consumer status returned" {
		t.Fatalf("%d %s", code, body)
	}
	st := m["status"].(map[string]any)
	wantKeys(t, "status", st, "cluster", "group", "status", "complete", "partitions", "partition_count", "maxlag", "totallag")
	if st["status"] != "WARN" || st["partition_count"] != 2.0 || st["totallag"] != 300.0 || st["complete"] != 1.0 {
		t.Fatalf("status %v", st)
	}
	if ps := st["partitions"].([]any); len(ps) != 1 {
		t.Fatalf("/status lists only partitions worse than OK: %v", ps)
	}
	ml := st["maxlag"].(map[string]any)
	wantKeys(t, "maxlag", ml, "topic", "partition", "owner", "client_id", "status", "start", "end", "current_lag", "complete", "lag_seconds", "catchup_seconds")
	if ml["partition"] != 0.0 || ml["status"] != "WARN" {
		t.Fatalf("maxlag %v", ml)
	}
	_, m, _ = get(t, api, "GET", "/v3/kafka/local/consumer/billing/lag")
	if ps := m["status"].(map[string]any)["partitions"].([]any); len(ps) != 2 {
		t.Fatalf("/lag lists every partition: %v", ps)
	}

	code, m, _ = get(t, api, "DELETE", "/v3/kafka/local/consumer/billing")
	if code != 200 || m["message"] != "consumer group removed" || m["error"] != false {
		t.Fatalf("delete %d %v", code, m)
	}
	if code, _, _ = get(t, api, "GET", "/v3/kafka/local/consumer/billing"); code != 404 {
		t.Fatalf("deleted group still served: %d", code)
	}
}

func TestConfig(t *testing.T) {
	api, _ := fixture(t)
	_, m, _ := get(t, api, "GET", "/v3/config")
	wantKeys(t, "main config", m, "general", "logging", "zookeeper", "httpserver")
	if m["message"] != "main config returned" || m["httpserver"].(map[string]any)["default"].(map[string]any)["address"] != "127.0.0.1:8000" {
		t.Fatalf("%v", m)
	}
	for _, coord := range []string{"storage", "evaluator", "cluster", "consumer", "notifier"} {
		_, m, _ = get(t, api, "GET", "/v3/config/"+coord)
		if m["message"] != "module list returned" || m["coordinator"] != coord || len(m["modules"].([]any)) == 0 {
			t.Errorf("%s list %v", coord, m)
		}
	}
	_, m, _ = get(t, api, "GET", "/v3/config/storage/default")
	wantKeys(t, "storage", m["module"].(map[string]any), "class-name", "intervals", "min-distance", "group-whitelist", "expire-group")
	_, m, _ = get(t, api, "GET", "/v3/config/evaluator/default")
	wantKeys(t, "evaluator", m["module"].(map[string]any), "class-name", "expire-cache")
	for _, p := range []string{"/v3/kafka/local", "/v3/config/cluster/local"} {
		_, m, _ = get(t, api, "GET", p)
		mod := m["module"].(map[string]any)
		wantKeys(t, p, mod, "class-name", "servers", "client-profile", "topic-refresh", "offset-refresh")
		if m["message"] != "cluster module detail returned" {
			t.Errorf("%s: %v", p, m)
		}
	}
	_, m, _ = get(t, api, "GET", "/v3/config/consumer/local")
	wantKeys(t, "consumer module", m["module"].(map[string]any), "class-name", "cluster", "servers", "group-whitelist", "client-profile", "offsets-topic", "start-latest")
	_, m, _ = get(t, api, "GET", "/v3/config/notifier/hook")
	wantKeys(t, "http notifier", m["module"].(map[string]any), "class-name", "url-open", "method-open", "threshold", "send-close", "extra", "interval")
	_, m, _ = get(t, api, "GET", "/v3/config/notifier/log")
	if m["module"].(map[string]any)["class-name"] != "log" {
		t.Errorf("log notifier %v", m)
	}
}

func TestMetrics(t *testing.T) {
	api, _ := fixture(t)
	code, _, body := get(t, api, "GET", "/metrics")
	if code != 200 {
		t.Fatalf("%d", code)
	}
	for _, want := range []string{
		`burrow_kafka_consumer_status{cluster="local",consumer_group="billing"} 2`,
		`burrow_kafka_consumer_lag_total{cluster="local",consumer_group="billing"} 300`,
		`burrow_kafka_consumer_partition_lag{cluster="local",consumer_group="billing",partition="0",topic="orders"} 300`,
		`burrow_kafka_consumer_current_offset{cluster="local",consumer_group="billing",partition="0",topic="orders"} 1100`,
		`burrow_kafka_topic_partition_offset{cluster="local",partition="1",topic="orders"} 500`,
		`kafka_consumergroup_lag{cluster="local",consumergroup="billing",partition="0",topic="orders"} 300`,
		`kafka_consumergroup_lag_sum{cluster="local",consumergroup="billing",topic="orders"} 300`,
		`kafka_consumergroup_current_offset_sum{cluster="local",consumergroup="billing",topic="orders"} 1600`,
		`kafka_consumergroup_members{cluster="local",consumergroup="billing"} 1`,
		`kafka_topic_partitions{cluster="local",topic="orders"} 2`,
		`kafka_topic_partition_current_offset{cluster="local",partition="0",topic="orders"} 1400`,
		`kafka_consumergroup_lag_seconds{cluster="local",consumergroup="billing",partition="0",topic="orders"}`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}
