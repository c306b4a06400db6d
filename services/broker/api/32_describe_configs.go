package api

import (
	"context"
	"fmt"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/config"
)

// DescribeConfigs: v0-4.
//
// v1 adds synonyms and each value's source (v0 has IsDefault instead); v2
// nothing new; v3 config types and documentation (none is sent); v4 is
// flexible. Topic resources report every topic setting with the topic's
// override, the broker's static value or Kafka's default; broker
// resources (this broker's id, or "" for the cluster default) report the
// broker's settings.
func init() { regSync(kmsg.DescribeConfigs, 0, 4, (*Handlers).describeConfigs) }

// Kafka's resource types.
const (
	resourceTopic  = 2
	resourceBroker = 4
)

func (h *Handlers) describeConfigs(_ context.Context, req *kmsg.DescribeConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewDescribeConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		var entries []config.Entry
		var err error
		switch rr.ResourceType {
		case resourceTopic:
			t, ok := h.cluster.Topic(rr.ResourceName)
			if !ok || t.Deleting {
				err = fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, rr.ResourceName)
				break
			}
			entries = h.broker.DescribeTopic(t.Config)
		case resourceBroker:
			if err = h.checkBrokerResource(rr.ResourceName); err == nil {
				entries = h.broker.DescribeBroker()
			}
		default:
			err = fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, rr.ResourceType)
		}
		if err != nil {
			sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
			resp.Resources = append(resp.Resources, sr)
			continue
		}
		for _, e := range entries {
			if rr.ConfigNames != nil && !slices.Contains(rr.ConfigNames, e.Name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.IsSensitive = e.Name, e.Value, e.ReadOnly, e.Sensitive
			c.Source, c.ConfigType = kmsg.ConfigSource(e.Source), kmsg.ConfigType(e.Type)
			c.IsDefault = e.Source == config.SourceDefault
			if req.IncludeSynonyms {
				for _, s := range e.Synonyms {
					syn := kmsg.NewDescribeConfigsResponseResourceConfigConfigSynonym()
					syn.Name, syn.Value, syn.Source = s.Name, s.Value, kmsg.ConfigSource(s.Source)
					c.ConfigSynonyms = append(c.ConfigSynonyms, syn)
				}
			}
			sr.Configs = append(sr.Configs, c)
		}
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// checkBrokerResource accepts this broker's id or "" (the cluster-wide
// default entity).
func (h *Handlers) checkBrokerResource(name string) error {
	if name == "" {
		return nil
	}
	id, err := strconv.Atoi(name)
	if err != nil || int32(id) != h.self {
		return fmt.Errorf("%w: broker resource %q is not this broker (%d)", kerr.InvalidRequest, name, h.self)
	}
	return nil
}
