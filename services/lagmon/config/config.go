// Package config reads lagmon's TOML configuration file. Its sections and
// keys follow Burrow's (general, storage, evaluator, cluster.NAME,
// notifier.NAME), so a Burrow configuration needs few changes; lagmon merges
// Burrow's cluster and consumer modules into one cluster section with
// optional NATS events.
//
// Durations are written as integer seconds (Burrow's way) or as Go duration
// strings ("250ms", "2m").
//
//	[storage]
//	intervals = 10
//	min-distance = 1
//	expire-group = 604800
//	group-denylist = "^console-consumer-"
//
//	[evaluator]
//	minimum-complete = 0.0
//	allowed-lag = 0
//
//	[cluster.local]
//	servers = ["127.0.0.1:9092"]
//	nats-url = "nats://127.0.0.1:4222"
//	offset-refresh = 10
//
//	[notifier.ops]
//	class-name = "http"
//	url-open = "http://alerts.example/hook"
//	threshold = "WARN"
//	send-close = true
package config

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/runnel-io/runnel/services/lagmon/evaluate"
)

// ErrInvalid marks a configuration that cannot run; the message says which
// key is wrong.
var ErrInvalid = errors.New("invalid configuration")

// Config is the whole configuration.
type Config struct {
	General   General              `toml:"general"`
	Storage   Storage              `toml:"storage"`
	Evaluator Evaluator            `toml:"evaluator"`
	Clusters  map[string]*Cluster  `toml:"cluster"`
	Notifiers map[string]*Notifier `toml:"notifier"`
	Dashboard Dashboard            `toml:"dashboard"`
}

// General holds Burrow's general section.
type General struct {
	// AccessControlAllowOrigin, when set, is sent as the CORS header of
	// every API answer.
	AccessControlAllowOrigin string `toml:"access-control-allow-origin"`
}

// Storage holds the window rules (Burrow's storage module).
type Storage struct {
	Intervals   int      `toml:"intervals"`
	MinDistance Duration `toml:"min-distance"`
	ExpireGroup Duration `toml:"expire-group"`
	GroupFilter
}

// GroupFilter is a pair of group regexps. Burrow's older names
// (group-whitelist, group-blacklist) are accepted too.
type GroupFilter struct {
	GroupAllowlist string `toml:"group-allowlist"`
	GroupDenylist  string `toml:"group-denylist"`
	GroupWhitelist string `toml:"group-whitelist"`
	GroupBlacklist string `toml:"group-blacklist"`
}

// Allow returns the compiled allow list, or nil.
func (f GroupFilter) Allow() (*regexp.Regexp, error) {
	return compile("group-allowlist", cmpOr(f.GroupAllowlist, f.GroupWhitelist))
}

// Deny returns the compiled deny list, or nil.
func (f GroupFilter) Deny() (*regexp.Regexp, error) {
	return compile("group-denylist", cmpOr(f.GroupDenylist, f.GroupBlacklist))
}

// AllowText and DenyText are the regexps as written.
func (f GroupFilter) AllowText() string { return cmpOr(f.GroupAllowlist, f.GroupWhitelist) }

// DenyText is the deny regexp as written.
func (f GroupFilter) DenyText() string { return cmpOr(f.GroupDenylist, f.GroupBlacklist) }

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func compile(key, expr string) (*regexp.Regexp, error) {
	if expr == "" {
		return nil, nil
	}
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, fmt.Errorf("%w: %s %q: %w", ErrInvalid, key, expr, err)
	}
	return re, nil
}

// Evaluator holds the evaluator settings.
type Evaluator struct {
	MinimumComplete float32 `toml:"minimum-complete"`
	AllowedLag      uint64  `toml:"allowed-lag"`
}

// Offsets sources of a cluster.
const (
	// SourceAuto consumes __consumer_offsets when the cluster has it and
	// polls committed offsets (ListGroups + OffsetFetch) until then.
	SourceAuto = "auto"
	// SourceTopic consumes __consumer_offsets only.
	SourceTopic = "topic"
	// SourcePoll polls committed offsets only.
	SourcePoll = "poll"
	// SourceNone reads no commits over the Kafka protocol (NATS only).
	SourceNone = "none"
)

// Cluster is one monitored cluster.
type Cluster struct {
	// Servers are Kafka bootstrap servers; empty means NATS events only.
	Servers []string `toml:"servers"`
	// NATSURL, when set, subscribes to the cluster's offset events.
	NATSURL string `toml:"nats-url"`
	// SubjectPrefix is the first token of the NATS subjects ("runnel").
	SubjectPrefix string `toml:"subject-prefix"`
	// OffsetRefresh is how often log-end offsets (and, when polling,
	// committed offsets) are read. Default 10s.
	OffsetRefresh Duration `toml:"offset-refresh"`
	// OffsetsTopic is Kafka's commit log. Default __consumer_offsets.
	OffsetsTopic string `toml:"offsets-topic"`
	// OffsetsSource is auto, topic, poll or none (see the Source constants).
	// Default: none when NATSURL is set (the events carry the commits),
	// else auto.
	OffsetsSource string `toml:"offsets-source"`
	// StartLatest reads the commit log from its end instead of its start.
	StartLatest bool `toml:"start-latest"`
	// ClientID is the Kafka client id lagmon uses.
	ClientID string `toml:"client-id"`
}

// Notifier is one notifier module.
type Notifier struct {
	// ClassName is "http" (webhook) or "log".
	ClassName string `toml:"class-name"`
	GroupFilter
	// Interval is how often each group is evaluated for this notifier.
	Interval Duration `toml:"interval"`
	// SendInterval is the least time between two open notifications of the
	// same group. Default: Interval.
	SendInterval Duration `toml:"send-interval"`
	// Threshold is the least group status that opens an incident. Default
	// WARN.
	Threshold evaluate.Status `toml:"threshold"`
	// SendClose sends the close message when an incident's group is OK
	// again.
	SendClose bool `toml:"send-close"`
	// SendOnce sends one open message per incident instead of one every
	// SendInterval.
	SendOnce bool `toml:"send-once"`
	// TemplateOpen and TemplateClose are files holding Go text/templates;
	// TemplateOpenText and TemplateCloseText hold them inline. Built-in
	// JSON templates are used when neither is set.
	TemplateOpen      string `toml:"template-open"`
	TemplateClose     string `toml:"template-close"`
	TemplateOpenText  string `toml:"template-open-text"`
	TemplateCloseText string `toml:"template-close-text"`
	// Extras are passed to the templates as .Extras.
	Extras map[string]string `toml:"extras"`
	// The webhook: URLs are templates too.
	URLOpen     string            `toml:"url-open"`
	URLClose    string            `toml:"url-close"`
	MethodOpen  string            `toml:"method-open"`
	MethodClose string            `toml:"method-close"`
	Headers     map[string]string `toml:"headers"`
	Username    string            `toml:"username"`
	Password    string            `toml:"password"`
	Timeout     Duration          `toml:"timeout"`
}

// Dashboard sets how much lag history the dashboard keeps.
type Dashboard struct {
	// HistoryInterval is how often every group's lag is sampled. Default 5s.
	HistoryInterval Duration `toml:"history-interval"`
	// HistoryPoints is how many samples are kept per group. Default 360.
	HistoryPoints int `toml:"history-points"`
}

// Duration is a time.Duration read from integer seconds or a duration
// string.
type Duration struct{ time.Duration }

// UnmarshalTOML implements toml.Unmarshaler.
func (d *Duration) UnmarshalTOML(v any) error {
	switch x := v.(type) {
	case int64:
		d.Duration = time.Duration(x) * time.Second
	case float64:
		d.Duration = time.Duration(x * float64(time.Second))
	case string:
		return d.UnmarshalText([]byte(x))
	default:
		return fmt.Errorf("duration %v: write seconds or a string like \"500ms\"", v)
	}
	return nil
}

// UnmarshalText reads "500ms", "2m" or a plain number of seconds.
func (d *Duration) UnmarshalText(b []byte) error {
	s := strings.TrimSpace(string(b))
	if n, err := strconv.ParseFloat(s, 64); err == nil {
		d.Duration = time.Duration(n * float64(time.Second))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("duration %q: %w", s, err)
	}
	d.Duration = v
	return nil
}

// MarshalText writes the duration as Go does ("1m30s").
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Load reads and checks a configuration file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	return Parse(string(b))
}

// Parse reads a configuration from TOML text, fills defaults and checks it.
func Parse(text string) (*Config, error) {
	c := &Config{}
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	if und := md.Undecoded(); len(und) > 0 {
		keys := make([]string, len(und))
		for i, k := range und {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%w: unknown keys %s", ErrInvalid, strings.Join(keys, ", "))
	}
	if err := c.Finish(); err != nil {
		return nil, err
	}
	return c, nil
}

var clusterName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Finish fills defaults and checks the configuration.
func (c *Config) Finish() error {
	if c.Storage.Intervals <= 0 {
		c.Storage.Intervals = 10
	}
	if c.Storage.ExpireGroup.Duration <= 0 {
		c.Storage.ExpireGroup.Duration = 7 * 24 * time.Hour
	}
	if _, err := c.Storage.Allow(); err != nil {
		return err
	}
	if _, err := c.Storage.Deny(); err != nil {
		return err
	}
	if c.Evaluator.MinimumComplete < 0 || c.Evaluator.MinimumComplete > 1 {
		return fmt.Errorf("%w: evaluator minimum-complete %v: use a fraction from 0 to 1", ErrInvalid, c.Evaluator.MinimumComplete)
	}
	if len(c.Clusters) == 0 {
		return fmt.Errorf("%w: no cluster: add a [cluster.NAME] section or use --bootstrap-server", ErrInvalid)
	}
	for name, cl := range c.Clusters {
		if !clusterName.MatchString(name) {
			return fmt.Errorf("%w: cluster name %q: use letters, digits, '-' and '_' (it is a NATS subject token)", ErrInvalid, name)
		}
		if len(cl.Servers) == 0 && cl.NATSURL == "" {
			return fmt.Errorf("%w: cluster %s: set servers, nats-url or both", ErrInvalid, name)
		}
		if cl.OffsetRefresh.Duration <= 0 {
			cl.OffsetRefresh.Duration = 10 * time.Second
		}
		if cl.OffsetsTopic == "" {
			cl.OffsetsTopic = "__consumer_offsets"
		}
		if cl.SubjectPrefix == "" {
			cl.SubjectPrefix = "runnel"
		}
		if cl.ClientID == "" {
			cl.ClientID = "runnel-lagmon"
		}
		if cl.OffsetsSource == "" {
			// With NATS events the commits come from there; reading them
			// twice would mix two commit orders in one window.
			cl.OffsetsSource = SourceAuto
			if cl.NATSURL != "" {
				cl.OffsetsSource = SourceNone
			}
		}
		if !slices.Contains([]string{SourceAuto, SourceTopic, SourcePoll, SourceNone}, cl.OffsetsSource) {
			return fmt.Errorf("%w: cluster %s: offsets-source %q: use auto, topic, poll or none", ErrInvalid, name, cl.OffsetsSource)
		}
	}
	for name, n := range c.Notifiers {
		if err := n.finish(name); err != nil {
			return err
		}
	}
	if c.Dashboard.HistoryInterval.Duration <= 0 {
		c.Dashboard.HistoryInterval.Duration = 5 * time.Second
	}
	if c.Dashboard.HistoryPoints <= 0 {
		c.Dashboard.HistoryPoints = 360
	}
	return nil
}

func (n *Notifier) finish(name string) error {
	switch n.ClassName {
	case "http":
		if n.URLOpen == "" {
			return fmt.Errorf("%w: notifier %s: url-open is required", ErrInvalid, name)
		}
		if n.SendClose && n.URLClose == "" {
			return fmt.Errorf("%w: notifier %s: send-close needs url-close", ErrInvalid, name)
		}
	case "log":
	case "":
		return fmt.Errorf("%w: notifier %s: class-name is required (http or log)", ErrInvalid, name)
	default:
		return fmt.Errorf("%w: notifier %s: class-name %q: use http or log", ErrInvalid, name, n.ClassName)
	}
	if _, err := n.Allow(); err != nil {
		return err
	}
	if _, err := n.Deny(); err != nil {
		return err
	}
	if n.Interval.Duration <= 0 {
		n.Interval.Duration = time.Minute
	}
	if n.SendInterval.Duration <= 0 {
		n.SendInterval = n.Interval
	}
	if n.Threshold == evaluate.NotFound {
		n.Threshold = evaluate.Warn
	}
	if n.MethodOpen == "" {
		n.MethodOpen = "POST"
	}
	if n.MethodClose == "" {
		n.MethodClose = "POST"
	}
	if n.Timeout.Duration <= 0 {
		n.Timeout.Duration = 5 * time.Second
	}
	return nil
}

// ClusterNames returns the cluster names, sorted.
func (c *Config) ClusterNames() []string {
	out := make([]string, 0, len(c.Clusters))
	for name := range c.Clusters {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}

// NotifierNames returns the notifier names, sorted.
func (c *Config) NotifierNames() []string {
	out := make([]string, 0, len(c.Notifiers))
	for name := range c.Notifiers {
		out = append(out, name)
	}
	slices.Sort(out)
	return out
}
