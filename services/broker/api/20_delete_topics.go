package api

import (
	"context"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
)

// DeleteTopics: v0-5.
//
// v1 adds ThrottleMillis; v2 and v3 nothing new; v4 is flexible; v5 adds
// error messages. (v6 names topics by id, which the 2.x layout lacks.)
// Deletion goes through /admin/delete_topics as in Kafka; this broker, as
// controller, completes it before answering.
func init() { regSync(kmsg.DeleteTopics, 0, 5, (*Handlers).deleteTopics) }

func (h *Handlers) deleteTopics(ctx context.Context, req *kmsg.DeleteTopicsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteTopicsResponse)
	for _, name := range req.TopicNames {
		st := kmsg.NewDeleteTopicsResponseTopic()
		n := name
		st.Topic = &n
		var err error
		switch {
		case !h.broker.DeleteTopicEnable:
			err = fmt.Errorf("%w: delete.topic.enable is false", kerr.TopicDeletionDisabled)
		case validTopic(name) != nil:
			err = fmt.Errorf("%w: %q", kerr.InvalidTopicException, name)
		case name == group.Topic:
			// Every group's offsets live there.
			err = fmt.Errorf("%w: %s is internal and cannot be deleted", kerr.InvalidTopicException, name)
		default:
			if err = h.cluster.DeleteTopic(ctx, name); err == nil {
				h.log.Info("deleted topic", "topic", name)
			}
		}
		st.ErrorCode = errCode(err)
		if req.Version >= 5 {
			st.ErrorMessage = errMessage(err)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp, nil
}
