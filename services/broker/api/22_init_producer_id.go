package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// InitProducerID: v0-4.
//
// v1 changes nothing on the wire; v2 is flexible; v3 lets an idempotent
// producer bump its epoch by passing its current id and epoch (KIP-360);
// v4 nothing new. Idempotent producers get a cluster-unique id from a block
// reserved in the coordinator (/latest_producer_id_block, as Kafka does).
// Transactions are not served: a transactional id is refused.
func init() { regSync(kmsg.InitProducerID, 0, 4, (*Handlers).initProducerID) }

func (h *Handlers) initProducerID(ctx context.Context, req *kmsg.InitProducerIDRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.InitProducerIDResponse)
	resp.ProducerID, resp.ProducerEpoch = -1, -1
	if req.TransactionalID != nil {
		resp.ErrorCode = kerr.TransactionalIDAuthorizationFailed.Code
		return resp, nil
	}
	if req.ProducerID >= 0 && req.ProducerEpoch >= 0 && req.ProducerEpoch < 32766 {
		resp.ProducerID, resp.ProducerEpoch = req.ProducerID, req.ProducerEpoch+1
		return resp, nil
	}
	id, err := h.cluster.NextProducerID(ctx)
	if err != nil {
		h.log.Warn("producer id allocation failed", "err", err)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	resp.ProducerID, resp.ProducerEpoch = id, 0
	return resp, nil
}
