package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
	"github.com/runnel-io/runnel/services/lagmon/window"
)

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Notify(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) kinds() string {
	var s []string
	for _, e := range r.events {
		if e.Close {
			s = append(s, "close")
		} else {
			s = append(s, "open:"+e.Result.Status.String())
		}
	}
	return strings.Join(s, ",")
}

// world is a store with one group whose lag the test drives.
type world struct {
	now   time.Time
	store *window.Store
	order int64
	leo   int64
}

func newWorld() *world {
	w := &world{now: time.UnixMilli(10_000_000)}
	w.store = window.New(window.Config{Intervals: 3, Now: func() time.Time { return w.now }}, "local")
	return w
}

// step advances a second, produces `produced` records and commits `at`.
func (w *world) step(produced, at int64) {
	w.now = w.now.Add(time.Second)
	w.leo += produced
	w.order++
	w.store.AddLogEnd("local", "t", 0, 1, w.leo, w.now.UnixMilli())
	w.store.AddCommit("local", "g", "t", 0, at, w.order, w.now.UnixMilli())
}

func TestManagerRules(t *testing.T) {
	w := newWorld()
	warn, errOnly, once := &recorder{}, &recorder{}, &recorder{}
	mods := []*Module{
		{Name: "warn", Interval: time.Second, SendInterval: 2 * time.Second, Threshold: evaluate.Warn, SendClose: true, Notifier: warn},
		{Name: "err", Interval: time.Second, SendInterval: time.Second, Threshold: evaluate.Err, SendClose: true, Notifier: errOnly},
		{Name: "once", Interval: time.Second, SendInterval: time.Second, Threshold: evaluate.Warn, SendOnce: true, Notifier: once},
	}
	m := NewManager(w.store, evaluate.Config{}, mods, slog.New(slog.NewTextHandler(io.Discard, nil)), func() time.Time { return w.now })
	ctx := context.Background()

	// Falling behind: 100 produced per second, 50 consumed. Checks start
	// with a full window (a single commit with lag is a STALL in Burrow).
	for i := int64(1); i <= 6; i++ {
		w.step(100, i*50)
		if i >= 3 {
			m.Check(ctx)
		}
	}
	// Caught up.
	w.step(0, w.leo)
	m.Check(ctx)
	w.step(0, w.leo)
	m.Check(ctx)

	// WARN from the third step on (a full window of growing lag): opens at
	// steps 3 and 5 (send-interval 2s), close once OK.
	if got := warn.kinds(); got != "open:WARN,open:WARN,close" {
		t.Errorf("warn module sent %s", got)
	}
	if got := errOnly.kinds(); got != "" {
		t.Errorf("err module sent %s for a WARN group (and must not close what it never opened)", got)
	}
	if got := once.kinds(); got != "open:WARN" {
		t.Errorf("send-once module sent %s", got)
	}
	ids := map[string]bool{}
	for _, e := range warn.events {
		ids[e.ID] = true
	}
	if len(ids) != 1 {
		t.Errorf("one incident expected, got ids %v", ids)
	}
	if len(m.incidents) != 0 {
		t.Errorf("incident not closed")
	}
}

func TestHTTPNotifier(t *testing.T) {
	type hit struct {
		method, path, auth, ctype string
		body                      map[string]any
	}
	var mu sync.Mutex
	var hits []hit
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		u, p, _ := r.BasicAuth()
		mu.Lock()
		hits = append(hits, hit{r.Method, r.URL.Path, u + ":" + p, r.Header.Get("Content-Type"), m})
		mu.Unlock()
		if strings.HasSuffix(r.URL.Path, "/fail") {
			w.WriteHeader(500)
		}
	}))
	defer srv.Close()
	cfg, err := config.Parse(`
[cluster.local]
servers = ["127.0.0.1:9092"]
[notifier.hook]
class-name = "http"
url-open = "` + srv.URL + `/open/{{.Cluster}}/{{.Group}}"
url-close = "` + srv.URL + `/close/{{.Group}}"
method-close = "DELETE"
send-close = true
username = "u"
password = "p"
extras = { team = "streams" }
template-close-text = '{"closed":{{jsonencoder .Group}},"team":{{jsonencoder (index .Extras "team")}},"counts":{{jsonencoder (partitioncounts .Result.Partitions)}}}'
`)
	if err != nil {
		t.Fatal(err)
	}
	mods, err := FromConfig(cfg, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	status := &evaluate.GroupStatus{Cluster: "local", Group: "billing", Status: evaluate.Warn,
		Partitions: []*evaluate.PartitionStatus{{Topic: "t", Status: evaluate.Warn}, {Topic: "t", Status: evaluate.OK}}}
	ev := Event{Cluster: "local", Group: "billing", ID: newID(), Start: time.Unix(100, 0), Result: status}
	if err := mods[0].Notifier.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	ev.Close = true
	if err := mods[0].Notifier.Notify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	got := append([]hit(nil), hits...)
	mu.Unlock()
	if len(got) != 2 {
		t.Fatalf("%d requests", len(got))
	}
	o, c := got[0], got[1]
	if o.method != "POST" || o.path != "/open/local/billing" || o.auth != "u:p" || o.ctype != "application/json" {
		t.Errorf("open request %+v", o)
	}
	if o.body["event"] != "open" || o.body["group"] != "billing" || o.body["id"] != ev.ID || o.body["status"].(map[string]any)["status"] != "WARN" {
		t.Errorf("open body %v", o.body)
	}
	if c.method != "DELETE" || c.path != "/close/billing" || c.body["closed"] != "billing" || c.body["team"] != "streams" {
		t.Errorf("close request %+v", c)
	}
	if counts := c.body["counts"].(map[string]any); counts["WARN"] != 1.0 || counts["OK"] != 1.0 {
		t.Errorf("partitioncounts %v", counts)
	}
	h := mods[0].Notifier.(*HTTP)
	h.URLOpen = template.Must(template.New("x").Parse(srv.URL + "/fail"))
	ev.Close = false
	if err := h.Notify(context.Background(), ev); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("a 500 answer: %v", err)
	}
}

func TestLogNotifier(t *testing.T) {
	var buf bytes.Buffer
	cfg, err := config.Parse("[cluster.local]\nservers=[\"x:1\"]\n[notifier.log]\nclass-name=\"log\"\ntemplate-open-text='{{.Group}} is {{.Result.Status}} ({{len .Result.Partitions}} partitions, maxlag {{(maxlag .Result).CurrentLag}})'")
	if err != nil {
		t.Fatal(err)
	}
	mods, err := FromConfig(cfg, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	p := &evaluate.PartitionStatus{Topic: "t", CurrentLag: 42, Status: evaluate.Stop}
	st := &evaluate.GroupStatus{Group: "g", Status: evaluate.Err, Partitions: []*evaluate.PartitionStatus{p}, Maxlag: p, TotalLag: 42}
	if err := mods[0].Notifier.Notify(context.Background(), Event{Cluster: "local", Group: "g", ID: "x", Result: st}); err != nil {
		t.Fatal(err)
	}
	if out := buf.String(); !strings.Contains(out, "incident open") || !strings.Contains(out, `message="g is ERR (1 partitions, maxlag 42)"`) {
		t.Fatalf("log line %q", out)
	}
}

func TestTemplateErrors(t *testing.T) {
	if _, err := parse("x", "/does/not/exist", "", ""); err == nil {
		t.Error("missing template file accepted")
	}
	if _, err := parse("x", "", "{{", ""); err == nil {
		t.Error("broken template accepted")
	}
	f := Funcs["formattimestamp"].(func(int64, string) string)
	if got := f(0, time.RFC3339); got != "1970-01-01T00:00:00Z" {
		t.Errorf("formattimestamp %q", got)
	}
	tbs := Funcs["topicsbystatus"].(func([]*evaluate.PartitionStatus) map[string][]string)
	if got := tbs([]*evaluate.PartitionStatus{{Topic: "b", Status: evaluate.Warn}, {Topic: "a", Status: evaluate.Warn}}); len(got["WARN"]) != 2 || got["WARN"][0] != "a" {
		t.Errorf("topicsbystatus %v", got)
	}
}
