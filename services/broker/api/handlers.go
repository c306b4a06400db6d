// Package api serves the Kafka APIs, one file per API key in the layout of
// franz-go's kfake (00_produce.go, 01_fetch.go, ...). Each file opens with
// the versions it serves and what they changed, registers itself with its
// version range, takes the typed kmsg request, builds the response with
// ResponseKind (so the response has the request's version) and serves every
// version through one code path over the newest shape.
//
// ApiVersions advertises exactly what is registered here. The group APIs
// (FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
// OffsetCommit, OffsetFetch, DescribeGroups, ListGroups, DeleteGroups,
// OffsetDelete) hand their work to the group coordinator (package group);
// every one of them is served from version 0, which librdkafka requires
// before it uses consumer groups at all. Transactional APIs are not served.
package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/services/broker/config"
	"github.com/runnel-io/runnel/services/broker/controller"
	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/metadata"
	"github.com/runnel-io/runnel/services/broker/replica"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// Cluster is the metadata the handlers read and write; *metadata.Store
// implements it.
type Cluster interface {
	ClusterID() string
	ControllerID() int32
	Brokers() []metadata.Broker
	Topic(name string) (*metadata.Topic, bool)
	Topics() []*metadata.Topic
	CreateTopic(ctx context.Context, spec metadata.Spec) error
	DeleteTopic(ctx context.Context, name string) error
	AddPartitions(ctx context.Context, topic string, add [][]int32) error
	SetTopicConfig(ctx context.Context, topic string, cfg map[string]string) error
	NextProducerID(ctx context.Context) (int64, error)
}

// Handlers serves the Kafka APIs; it implements wire.Handler.
type Handlers struct {
	self       int32
	cluster    Cluster
	replicas   *replica.Manager
	controller *controller.Controller
	groups     *group.Coordinator
	broker     *config.Broker
	log        *slog.Logger
	now        func() time.Time
}

// Params are New's inputs. Logger and Now may be nil; without Groups the
// group APIs answer COORDINATOR_NOT_AVAILABLE.
type Params struct {
	BrokerID int32
	Cluster  Cluster
	Replicas *replica.Manager
	// Controller serves the controller's APIs (ControlledShutdown,
	// ElectLeaders, the reassignments); nil answers NOT_CONTROLLER.
	Controller *controller.Controller
	Groups     *group.Coordinator
	Broker     *config.Broker
	Logger     *slog.Logger
	Now        func() time.Time
}

// New returns the handlers.
func New(p Params) *Handlers {
	if p.Logger == nil {
		p.Logger = slog.Default()
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return &Handlers{self: p.BrokerID, cluster: p.Cluster, replicas: p.Replicas, controller: p.Controller, groups: p.Groups, broker: p.Broker,
		log: p.Logger.With("component", "api"), now: p.Now}
}

// handler serves one request: it must call r.Respond or r.Fail, now or
// later.
type handler func(h *Handlers, ctx context.Context, r *wire.Request)

type entry struct {
	min, max int16
	fn       handler
}

var registry [128]*entry

// regKey registers the handler of an API key for versions min to max.
func regKey(key kmsg.Key, min, max int16, fn handler) {
	if registry[key] != nil {
		panic(fmt.Sprintf("api: %s registered twice", kmsg.NameForKey(key.Int16())))
	}
	if max > kmsg.RequestForKey(key.Int16()).MaxVersion() {
		panic(fmt.Sprintf("api: %s v%d is beyond what kmsg knows", kmsg.NameForKey(key.Int16()), max))
	}
	registry[key] = &entry{min: min, max: max, fn: fn}
}

// regSync registers a handler that answers before returning.
func regSync[Req kmsg.Request](key kmsg.Key, min, max int16, fn func(h *Handlers, ctx context.Context, req Req) (kmsg.Response, error)) {
	regKey(key, min, max, func(h *Handlers, ctx context.Context, r *wire.Request) {
		resp, err := fn(h, ctx, r.Msg.(Req))
		if err != nil {
			r.Fail(err)
			return
		}
		r.Respond(resp)
	})
}

// Supports reports whether key is served at version (-1: at all).
func (h *Handlers) Supports(key, version int16) bool {
	if key < 0 || int(key) >= len(registry) || registry[key] == nil {
		return false
	}
	e := registry[key]
	return version == -1 || version >= e.min && version <= e.max
}

// Versions lists the served keys and ranges for ApiVersions.
func (h *Handlers) Versions() []kmsg.ApiVersionsResponseApiKey {
	var out []kmsg.ApiVersionsResponseApiKey
	for k, e := range registry {
		if e != nil {
			out = append(out, kmsg.ApiVersionsResponseApiKey{ApiKey: int16(k), MinVersion: e.min, MaxVersion: e.max})
		}
	}
	return out
}

// Handle dispatches a request to its API's handler.
func (h *Handlers) Handle(ctx context.Context, r *wire.Request) {
	e := registry[r.Key] // wire checked Supports
	e.fn(h, ctx, r)
}

// errCode maps an error from the layers below to a Kafka error code.
func errCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, replica.ErrNotLeader), errors.Is(err, replica.ErrNotReplica):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, replica.ErrNotEnoughReplicasAfterAppend):
		return kerr.NotEnoughReplicasAfterAppend.Code
	case errors.Is(err, controller.ErrStaleBrokerEpoch):
		return kerr.StaleBrokerEpoch.Code
	case errors.Is(err, controller.ErrUnknownBroker):
		return kerr.BrokerNotAvailable.Code
	case errors.Is(err, replica.ErrOffsetOutOfRange), errors.Is(err, storage.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, replica.ErrNotEnoughReplicas):
		return kerr.NotEnoughReplicas.Code
	case errors.Is(err, replica.ErrCorruptBatch), errors.Is(err, storage.ErrInvalidBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, replica.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, storage.ErrBatchTooLarge):
		return kerr.RecordListTooLarge.Code
	case errors.Is(err, replica.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, replica.ErrMagic):
		return kerr.UnsupportedForMessageFormat.Code
	case errors.Is(err, replica.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, replica.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, replica.ErrUnknownProducerID):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, storage.ErrClosed):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, storage.ErrCorrupt):
		return kerr.KafkaStorageError.Code
	case errors.Is(err, metadata.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, metadata.ErrNoTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, metadata.ErrNotController):
		return kerr.NotController.Code
	case errors.Is(err, config.ErrInvalid):
		return kerr.InvalidConfig.Code
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return kerr.RequestTimedOut.Code
	}
	return kerr.UnknownServerError.Code
}

// errMessage is the error message some responses carry.
func errMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// validTopic applies Kafka's topic-name rules: 1 to 249 characters of
// [a-zA-Z0-9._-], not "." or "..".
func validTopic(name string) error {
	if err := (storage.PartitionID{Topic: name}).Validate(); err != nil {
		return kerr.InvalidTopicException
	}
	return nil
}

// collision returns an existing topic whose name equals name once '.' and
// '_' are treated alike (Kafka refuses such a pair: their metric names
// would clash), or "".
func (h *Handlers) collision(name string) string {
	if !strings.ContainsAny(name, "._") {
		return ""
	}
	norm := strings.ReplaceAll(name, ".", "_")
	for _, t := range h.cluster.Topics() {
		if t.Name != name && strings.ReplaceAll(t.Name, ".", "_") == norm {
			return t.Name
		}
	}
	return ""
}

// assign places replicas of partitions first to first+count-1 on the live
// brokers, rack-aware when brokers have racks (controller.Assign).
func (h *Handlers) assign(first, count int32, rf int16) ([][]int32, error) {
	a, err := controller.Assign(h.cluster.Brokers(), first, count, rf, nil)
	if errors.Is(err, controller.ErrReplicationFactor) {
		return nil, fmt.Errorf("%w: %v", kerr.InvalidReplicationFactor, err)
	}
	return a, err
}

// autoCreate creates a topic with the broker defaults (num.partitions,
// default.replication.factor), as auto.create.topics.enable allows.
func (h *Handlers) autoCreate(ctx context.Context, name string) (*metadata.Topic, error) {
	if c := h.collision(name); c != "" {
		return nil, fmt.Errorf("%w: %q collides with %q", kerr.InvalidTopicException, name, c)
	}
	a, err := h.assign(0, h.broker.NumPartitions, h.broker.DefaultReplicationFactor)
	if err != nil {
		return nil, err
	}
	err = h.cluster.CreateTopic(ctx, metadata.Spec{Name: name, Assignment: a})
	if err != nil && !errors.Is(err, metadata.ErrTopicExists) {
		return nil, err
	}
	h.log.Info("auto-created topic", "topic", name, "partitions", len(a))
	t, ok := h.cluster.Topic(name)
	if !ok {
		return nil, kerr.UnknownTopicOrPartition
	}
	return t, nil
}

// partition finds the hosted partition a produce, fetch or offset request
// names, with the error Kafka gives when it cannot be served here.
func (h *Handlers) partition(topic string, p int32) (*replica.Partition, error) {
	if err := validTopic(topic); err != nil {
		return nil, err
	}
	t, ok := h.cluster.Topic(topic)
	if !ok || t.Deleting || p < 0 || int(p) >= len(t.Partitions) {
		return nil, kerr.UnknownTopicOrPartition
	}
	rp := h.replicas.Partition(topic, p)
	if rp == nil || !rp.IsLeader() {
		return nil, kerr.NotLeaderForPartition
	}
	return rp, nil
}

// checkEpoch compares a client's current leader epoch (-1: not given) with
// the partition's (KIP-320).
func checkEpoch(p *replica.Partition, current int32) error {
	if current < 0 {
		return nil
	}
	e := p.State().LeaderEpoch
	switch {
	case current < e:
		return kerr.FencedLeaderEpoch
	case current > e:
		return kerr.UnknownLeaderEpoch
	}
	return nil
}
