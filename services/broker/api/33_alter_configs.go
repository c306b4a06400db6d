package api

import (
	"context"
	"fmt"
	"maps"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/config"
)

// AlterConfigs: v0-2.
//
// v1 changes nothing on the wire; v2 is flexible. A topic's overrides are
// replaced as a whole by the given set (settings not named return to their
// defaults), as Kafka's non-incremental API does. Broker settings are
// static here (--config at start-up), so altering a broker resource is
// refused with INVALID_REQUEST.
func init() { regSync(kmsg.AlterConfigs, 0, 2, (*Handlers).alterConfigs) }

func (h *Handlers) alterConfigs(ctx context.Context, req *kmsg.AlterConfigsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		sr := kmsg.NewAlterConfigsResponseResource()
		sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
		cfg := map[string]string{}
		for _, c := range rr.Configs {
			if c.Value != nil {
				cfg[c.Name] = *c.Value
			}
		}
		err := h.alterResource(ctx, rr.ResourceType, rr.ResourceName, req.ValidateOnly, func(map[string]string) (map[string]string, error) { return cfg, nil })
		sr.ErrorCode, sr.ErrorMessage = errCode(err), errMessage(err)
		resp.Resources = append(resp.Resources, sr)
	}
	return resp, nil
}

// alterResource applies change to a topic's overrides, after checking the
// result.
func (h *Handlers) alterResource(ctx context.Context, typ kmsg.ConfigResourceType, name string, validateOnly bool, change func(map[string]string) (map[string]string, error)) error {
	switch typ {
	case resourceTopic:
	case resourceBroker:
		if err := h.checkBrokerResource(name); err != nil {
			return err
		}
		return fmt.Errorf("%w: broker settings are static; set them with --config at start-up", kerr.InvalidRequest)
	default:
		return fmt.Errorf("%w: resource type %d", kerr.InvalidRequest, typ)
	}
	t, ok := h.cluster.Topic(name)
	if !ok || t.Deleting {
		return fmt.Errorf("%w: %s", kerr.UnknownTopicOrPartition, name)
	}
	next, err := change(maps.Clone(t.Config))
	if err != nil {
		return err
	}
	if err := config.CheckTopic(next); err != nil {
		return err
	}
	if validateOnly {
		return nil
	}
	return h.cluster.SetTopicConfig(ctx, name, next)
}
