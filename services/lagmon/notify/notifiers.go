package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"sort"
	"text/template"
	"time"

	"github.com/runnel-io/runnel/services/lagmon/config"
	"github.com/runnel-io/runnel/services/lagmon/evaluate"
)

// TemplateData is what templates see; the field names are Burrow's.
type TemplateData struct {
	Cluster string
	Group   string
	ID      string
	Start   time.Time
	Extras  map[string]string
	Result  *evaluate.GroupStatus
}

// DefaultOpenTemplate and DefaultCloseTemplate are used when a module names
// no template: a JSON object with the incident and the full group status.
const (
	DefaultOpenTemplate  = `{"event":"open","id":{{jsonencoder .ID}},"cluster":{{jsonencoder .Cluster}},"group":{{jsonencoder .Group}},"start":{{jsonencoder .Start}},"status":{{jsonencoder .Result}},"extras":{{jsonencoder .Extras}}}`
	DefaultCloseTemplate = `{"event":"close","id":{{jsonencoder .ID}},"cluster":{{jsonencoder .Cluster}},"group":{{jsonencoder .Group}},"start":{{jsonencoder .Start}},"status":{{jsonencoder .Result}},"extras":{{jsonencoder .Extras}}}`
)

// Funcs are the template helpers, named as in Burrow.
var Funcs = template.FuncMap{
	"jsonencoder": func(v any) (string, error) {
		b, err := json.Marshal(v)
		return string(b), err
	},
	// topicsbystatus maps each status name to the topics having a
	// partition in it.
	"topicsbystatus": func(ps []*evaluate.PartitionStatus) map[string][]string {
		seen := map[string]map[string]bool{}
		for _, p := range ps {
			s := p.Status.String()
			if seen[s] == nil {
				seen[s] = map[string]bool{}
			}
			seen[s][p.Topic] = true
		}
		out := map[string][]string{}
		for s, ts := range seen {
			for t := range ts {
				out[s] = append(out[s], t)
			}
			sort.Strings(out[s])
		}
		return out
	},
	// partitioncounts counts partitions per status name.
	"partitioncounts": func(ps []*evaluate.PartitionStatus) map[string]int {
		out := map[string]int{}
		for _, p := range ps {
			out[p.Status.String()]++
		}
		return out
	},
	"add":      func(a, b int) int { return a + b },
	"minus":    func(a, b int) int { return a - b },
	"multiply": func(a, b int) int { return a * b },
	"divide": func(a, b int) int {
		if b == 0 {
			return 0
		}
		return a / b
	},
	"maxlag": func(s *evaluate.GroupStatus) *evaluate.PartitionStatus { return s.Maxlag },
	// formattimestamp formats Unix milliseconds with a Go layout.
	"formattimestamp": func(ms int64, layout string) string {
		return time.UnixMilli(ms).UTC().Format(layout)
	},
}

// parse reads a template from a file, inline text, or the default.
func parse(name, file, text, def string) (*template.Template, error) {
	switch {
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("template %s: %w", name, err)
		}
		text = string(b)
	case text == "":
		text = def
	}
	t, err := template.New(name).Funcs(Funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", name, err)
	}
	return t, nil
}

// Templates are a module's open and close templates.
type Templates struct {
	Open, Close *template.Template
	Extras      map[string]string
}

// Render executes the open or close template for e.
func (t Templates) Render(e Event) ([]byte, error) {
	tmpl := t.Open
	if e.Close {
		tmpl = t.Close
	}
	return execute(tmpl, t.Extras, e)
}

func execute(tmpl *template.Template, extras map[string]string, e Event) ([]byte, error) {
	var buf bytes.Buffer
	data := TemplateData{Cluster: e.Cluster, Group: e.Group, ID: e.ID, Start: e.Start, Extras: extras, Result: e.Result}
	if err := tmpl.Execute(&buf, data); err != nil {
		return nil, fmt.Errorf("template %s: %w", tmpl.Name(), err)
	}
	return buf.Bytes(), nil
}

// HTTP is the webhook notifier.
type HTTP struct {
	Templates
	URLOpen, URLClose       *template.Template
	MethodOpen, MethodClose string
	Headers                 map[string]string
	Username, Password      string
	Client                  *http.Client
}

// Notify sends one request; a non-2xx answer is an error.
func (h *HTTP) Notify(ctx context.Context, e Event) error {
	body, err := h.Render(e)
	if err != nil {
		return err
	}
	urlT, method := h.URLOpen, h.MethodOpen
	if e.Close {
		urlT, method = h.URLClose, h.MethodClose
	}
	url, err := execute(urlT, h.Extras, e)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, string(url), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range h.Headers {
		req.Header.Set(k, v)
	}
	if h.Username != "" {
		req.SetBasicAuth(h.Username, h.Password)
	}
	resp, err := h.Client.Do(req)
	if err != nil {
		return fmt.Errorf("webhook %s %s: %w", method, url, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("webhook %s %s: HTTP %d", method, url, resp.StatusCode)
	}
	return nil
}

// Log is the log notifier: one structured line per event, with the
// rendered template as "message".
type Log struct {
	Templates
	Logger *slog.Logger
}

// Notify logs the event.
func (l *Log) Notify(_ context.Context, e Event) error {
	msg, err := l.Render(e)
	if err != nil {
		return err
	}
	what, level := "consumer group incident open", slog.LevelWarn
	if e.Close {
		what, level = "consumer group incident closed", slog.LevelInfo
	}
	l.Logger.Log(context.Background(), level, what, "cluster", e.Cluster, "group", e.Group, "id", e.ID,
		"status", e.Result.Status.String(), "totallag", e.Result.TotalLag, "message", string(msg))
	return nil
}

// FromConfig builds the configured modules, sorted by name.
func FromConfig(cfg *config.Config, logger *slog.Logger) ([]*Module, error) {
	var out []*Module
	for _, name := range cfg.NotifierNames() {
		n := cfg.Notifiers[name]
		open, err := parse(name+"-open", n.TemplateOpen, n.TemplateOpenText, DefaultOpenTemplate)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", name, err)
		}
		closeT, err := parse(name+"-close", n.TemplateClose, n.TemplateCloseText, DefaultCloseTemplate)
		if err != nil {
			return nil, fmt.Errorf("notifier %s: %w", name, err)
		}
		tmpls := Templates{Open: open, Close: closeT, Extras: n.Extras}
		allow, _ := n.Allow()
		deny, _ := n.Deny()
		mod := &Module{Name: name, Allow: allow, Deny: deny, Interval: n.Interval.Duration, SendInterval: n.SendInterval.Duration,
			Threshold: n.Threshold, SendClose: n.SendClose, SendOnce: n.SendOnce}
		switch n.ClassName {
		case "http":
			urlOpen, err := template.New(name + "-url-open").Funcs(Funcs).Parse(n.URLOpen)
			if err != nil {
				return nil, fmt.Errorf("notifier %s: url-open: %w", name, err)
			}
			urlClose, err := template.New(name + "-url-close").Funcs(Funcs).Parse(n.URLClose)
			if err != nil {
				return nil, fmt.Errorf("notifier %s: url-close: %w", name, err)
			}
			mod.Notifier = &HTTP{Templates: tmpls, URLOpen: urlOpen, URLClose: urlClose, MethodOpen: n.MethodOpen, MethodClose: n.MethodClose,
				Headers: n.Headers, Username: n.Username, Password: n.Password, Client: &http.Client{Timeout: n.Timeout.Duration}}
		case "log":
			mod.Notifier = &Log{Templates: tmpls, Logger: logger.With("notifier", name)}
		}
		out = append(out, mod)
	}
	return out, nil
}
