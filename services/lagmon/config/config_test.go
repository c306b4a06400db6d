package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
)

func TestParse(t *testing.T) {
	c, err := Parse(`
[general]
access-control-allow-origin = "*"

[storage]
intervals = 5
min-distance = "250ms"
expire-group = 3600
group-blacklist = "^console-"

[evaluator]
minimum-complete = 0.5
allowed-lag = 3

[cluster.local]
servers = ["127.0.0.1:9092"]
offset-refresh = "200ms"

[cluster.events]
nats-url = "nats://127.0.0.1:4222"
offsets-source = "none"

[notifier.hook]
class-name = "http"
url-open = "http://127.0.0.1:1/{{.Group}}"
threshold = "ERR"
send-close = true
url-close = "http://127.0.0.1:1/close"
extras = { team = "streams" }

[notifier.log]
class-name = "log"
threshold = 2
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Intervals != 5 || c.Storage.MinDistance.Duration != 250*time.Millisecond || c.Storage.ExpireGroup.Duration != time.Hour {
		t.Fatalf("storage %+v", c.Storage)
	}
	if deny, _ := c.Storage.Deny(); deny == nil || !deny.MatchString("console-1") {
		t.Fatal("group-blacklist not read as the deny list")
	}
	l := c.Clusters["local"]
	if l.OffsetRefresh.Duration != 200*time.Millisecond || l.OffsetsTopic != "__consumer_offsets" || l.OffsetsSource != SourceAuto || l.SubjectPrefix != "runnel" {
		t.Fatalf("cluster defaults %+v", l)
	}
	h := c.Notifiers["hook"]
	if h.Threshold != evaluate.Err || h.MethodOpen != "POST" || h.Interval.Duration != time.Minute || h.SendInterval.Duration != time.Minute || h.Extras["team"] != "streams" {
		t.Fatalf("notifier %+v", h)
	}
	if c.Notifiers["log"].Threshold != evaluate.Warn {
		t.Fatalf("numeric threshold %v", c.Notifiers["log"].Threshold)
	}
	if got := c.ClusterNames(); len(got) != 2 || got[0] != "events" {
		t.Fatalf("names %v", got)
	}
	if c.Dashboard.HistoryPoints != 360 {
		t.Fatal("dashboard defaults")
	}
}

func TestInvalid(t *testing.T) {
	for name, text := range map[string]string{
		"no cluster":       ``,
		"bad name":         "[cluster.\"a.b\"]\nservers=[\"x:1\"]",
		"no servers":       "[cluster.a]\n",
		"bad source":       "[cluster.a]\nservers=[\"x:1\"]\noffsets-source=\"zk\"",
		"bad regexp":       "[storage]\ngroup-allowlist=\"(\"\n[cluster.a]\nservers=[\"x:1\"]",
		"unknown key":      "[cluster.a]\nservers=[\"x:1\"]\nzookeeper=1",
		"http without url": "[cluster.a]\nservers=[\"x:1\"]\n[notifier.n]\nclass-name=\"http\"",
		"bad class":        "[cluster.a]\nservers=[\"x:1\"]\n[notifier.n]\nclass-name=\"email\"",
		"bad complete":     "[evaluator]\nminimum-complete=2\n[cluster.a]\nservers=[\"x:1\"]",
	} {
		if _, err := Parse(text); err == nil {
			t.Errorf("%s: accepted", name)
		} else if name != "unknown key" && !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v is not ErrInvalid", name, err)
		}
	}
	if _, err := Parse("[cluster.a]\nservers=[\"x:1\"]\noffset-refresh=true"); err == nil {
		t.Error("a boolean duration accepted")
	}
}

func TestLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lagmon.toml")
	if err := os.WriteFile(p, []byte("[cluster.a]\nservers=[\"x:1\"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p + ".missing"); err == nil {
		t.Fatal("missing file accepted")
	}
}

// FuzzParse feeds arbitrary files to the configuration reader: it must not
// panic, and an accepted configuration has its defaults filled in.
func FuzzParse(f *testing.F) {
	f.Add("[cluster.a]\nservers=[\"x:1\"]\n")
	f.Add("[storage]\nintervals=3\nmin-distance=\"1s\"\n[cluster.a]\nnats-url=\"nats://h:1\"\n[notifier.n]\nclass-name=\"log\"\nthreshold=\"ERR\"\n")
	f.Add("[cluster.a]\nservers=[\"x:1\"]\noffset-refresh=1.5\n[notifier.h]\nclass-name=\"http\"\nurl-open=\"http://h/{{.Group}}\"\n")
	f.Fuzz(func(t *testing.T, text string) {
		c, err := Parse(text)
		if err != nil {
			return
		}
		if c.Storage.Intervals <= 0 || len(c.Clusters) == 0 || c.Dashboard.HistoryPoints <= 0 {
			t.Fatalf("accepted without defaults: %+v", c)
		}
		for _, cl := range c.Clusters {
			if cl.OffsetRefresh.Duration <= 0 || cl.OffsetsSource == "" {
				t.Fatalf("cluster without defaults: %+v", cl)
			}
		}
	})
}
