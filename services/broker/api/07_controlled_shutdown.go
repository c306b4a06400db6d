package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ControlledShutdown: v1-3.
//
// A broker that is stopping asks the controller to move its leaderships
// away and take it out of the ISRs (package controller); the answer lists
// the partitions it still leads, which it retries. v2 adds the broker
// epoch (a request from an older incarnation of the broker is
// STALE_BROKER_EPOCH); v3 is flexible. v0, whose request header lacks the
// client id, is not served. Brokers other than the controller answer
// NOT_CONTROLLER.
func init() { regSync(kmsg.ControlledShutdown, 1, 3, (*Handlers).controlledShutdown) }

func (h *Handlers) controlledShutdown(ctx context.Context, req *kmsg.ControlledShutdownRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ControlledShutdownResponse)
	if h.controller == nil {
		resp.ErrorCode = kerr.NotController.Code
		return resp, nil
	}
	epoch := int64(-1)
	if req.Version >= 2 {
		epoch = req.BrokerEpoch
	}
	remaining, err := h.controller.ControlledShutdown(ctx, req.BrokerID, epoch)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	for _, p := range remaining {
		resp.PartitionsRemaining = append(resp.PartitionsRemaining, kmsg.ControlledShutdownResponsePartitionsRemaining{Topic: p.Topic, Partition: p.ID})
	}
	return resp, nil
}
