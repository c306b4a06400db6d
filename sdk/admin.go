package sdk

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Admin manages topics, groups and offsets. It is a thin layer over
// franz-go's kadm that returns plain maps and wrapped errors; Kadm gives
// the full client.
type Admin struct {
	cl  *kgo.Client
	adm *kadm.Client
}

// NewAdmin makes an admin client.
func NewAdmin(opts ...Opt) (*Admin, error) {
	c := newCfg(opts)
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers...), kgo.ClientID(c.clientID)}, c.kgoOpts...)...)
	if err != nil {
		return nil, fmt.Errorf("sdk: admin: %w", err)
	}
	return &Admin{cl: cl, adm: kadm.NewClient(cl)}, nil
}

// Kadm is the underlying kadm client.
func (a *Admin) Kadm() *kadm.Client { return a.adm }

// Close closes the connections.
func (a *Admin) Close() { a.cl.Close() }

// CreateTopic creates a topic; configs use Kafka's names (retention.ms,
// cleanup.policy, ...). replication -1 takes the broker's default.
func (a *Admin) CreateTopic(ctx context.Context, topic string, partitions int32, replication int16, configs map[string]string) error {
	var cfg map[string]*string
	if len(configs) > 0 {
		cfg = make(map[string]*string, len(configs))
		for k, v := range configs {
			cfg[k] = kadm.StringPtr(v)
		}
	}
	resp, err := a.adm.CreateTopic(ctx, partitions, replication, cfg, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("sdk: creating topic %q: %w", topic, err)
	}
	return nil
}

// DeleteTopic deletes a topic.
func (a *Admin) DeleteTopic(ctx context.Context, topic string) error {
	resp, err := a.adm.DeleteTopics(ctx, topic)
	if err == nil {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("sdk: deleting topic %q: %w", topic, err)
	}
	return nil
}

// ListTopics returns the topics' names, sorted, internal ones excluded.
func (a *Admin) ListTopics(ctx context.Context) ([]string, error) {
	td, err := a.adm.ListTopics(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: listing topics: %w", err)
	}
	return td.Names(), nil
}

// Partitions returns how many partitions topic has.
func (a *Admin) Partitions(ctx context.Context, topic string) (int, error) {
	td, err := a.adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("sdk: describing topic %q: %w", topic, err)
	}
	t, ok := td[topic]
	if !ok {
		return 0, fmt.Errorf("sdk: topic %q does not exist", topic)
	}
	if t.Err != nil {
		return 0, fmt.Errorf("sdk: describing topic %q: %w", topic, t.Err)
	}
	return len(t.Partitions), nil
}

// EndOffsets returns each partition's high watermark.
func (a *Admin) EndOffsets(ctx context.Context, topics ...string) (map[string]map[int32]int64, error) {
	lo, err := a.adm.ListEndOffsets(ctx, topics...)
	if err == nil {
		err = lo.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("sdk: end offsets: %w", err)
	}
	out := map[string]map[int32]int64{}
	lo.Each(func(o kadm.ListedOffset) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.Offset
	})
	return out, nil
}

// ListGroups returns the consumer groups' names, sorted.
func (a *Admin) ListGroups(ctx context.Context) ([]string, error) {
	gs, err := a.adm.ListGroups(ctx)
	if err != nil {
		return nil, fmt.Errorf("sdk: listing groups: %w", err)
	}
	names := gs.Groups()
	sort.Strings(names)
	return names, nil
}

// GroupInfo describes a consumer group.
type GroupInfo struct {
	Name  string
	State string
	// Members maps each member's client id and host to its partitions.
	Members []GroupMember
}

// GroupMember is one consumer of a group.
type GroupMember struct {
	MemberID, ClientID, Host string
	Assigned                 map[string][]int32
}

// DescribeGroup describes group g.
func (a *Admin) DescribeGroup(ctx context.Context, g string) (GroupInfo, error) {
	ds, err := a.adm.DescribeGroups(ctx, g)
	if err != nil {
		return GroupInfo{}, fmt.Errorf("sdk: describing group %q: %w", g, err)
	}
	d, ok := ds[g]
	if !ok {
		return GroupInfo{}, fmt.Errorf("sdk: group %q: no answer", g)
	}
	if d.Err != nil {
		return GroupInfo{}, fmt.Errorf("sdk: describing group %q: %w", g, d.Err)
	}
	info := GroupInfo{Name: g, State: d.State}
	for _, m := range d.Members {
		gm := GroupMember{MemberID: m.MemberID, ClientID: m.ClientID, Host: m.ClientHost, Assigned: map[string][]int32{}}
		if ca, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range ca.Topics {
				gm.Assigned[t.Topic] = t.Partitions
			}
		}
		info.Members = append(info.Members, gm)
	}
	return info, nil
}

// DeleteGroup deletes an empty group and its committed offsets.
func (a *Admin) DeleteGroup(ctx context.Context, g string) error {
	r, err := a.adm.DeleteGroup(ctx, g)
	if err == nil {
		err = r.Err
	}
	if err != nil {
		return fmt.Errorf("sdk: deleting group %q: %w", g, err)
	}
	return nil
}

// CommittedOffsets returns group g's committed offsets.
func (a *Admin) CommittedOffsets(ctx context.Context, g string) (map[string]map[int32]int64, error) {
	os, err := a.adm.FetchOffsets(ctx, g)
	if err == nil {
		err = os.Error()
	}
	if err != nil {
		return nil, fmt.Errorf("sdk: offsets of group %q: %w", g, err)
	}
	out := map[string]map[int32]int64{}
	os.Each(func(o kadm.OffsetResponse) {
		if out[o.Topic] == nil {
			out[o.Topic] = map[int32]int64{}
		}
		out[o.Topic][o.Partition] = o.At
	})
	return out, nil
}

// SetOffsets commits offsets for group g, which must have no active
// member (Kafka refuses commits from outside a live group): how a group is
// rewound or skipped forward.
func (a *Admin) SetOffsets(ctx context.Context, g string, offsets map[string]map[int32]int64) error {
	var os kadm.Offsets
	for t, ps := range offsets {
		for p, o := range ps {
			os.AddOffset(t, p, o, -1)
		}
	}
	r, err := a.adm.CommitOffsets(ctx, g, os)
	if err == nil {
		err = r.Error()
	}
	if err != nil {
		return fmt.Errorf("sdk: setting offsets of group %q: %w", g, err)
	}
	return nil
}

// GroupLag returns, per partition of group g's topics, the records between
// its committed offset and the end (all of them when nothing is
// committed).
func (a *Admin) GroupLag(ctx context.Context, g string) (map[string]map[int32]int64, error) {
	committed, err := a.CommittedOffsets(ctx, g)
	if err != nil {
		return nil, err
	}
	if len(committed) == 0 {
		return nil, errors.New("sdk: group " + g + " has no committed offsets")
	}
	var topics []string
	for t := range committed {
		topics = append(topics, t)
	}
	ends, err := a.EndOffsets(ctx, topics...)
	if err != nil {
		return nil, err
	}
	out := map[string]map[int32]int64{}
	for t, ps := range ends {
		out[t] = map[int32]int64{}
		for p, end := range ps {
			c, ok := committed[t][p]
			if !ok || c < 0 {
				c = 0
			}
			out[t][p] = max(end-c, 0)
		}
	}
	return out, nil
}
