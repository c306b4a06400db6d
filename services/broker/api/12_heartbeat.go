package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Heartbeat: v0-4.
//
// v1 adds ThrottleMillis; v2 nothing; v3 (KIP-345) group.instance.id; v4 is
// flexible. REBALANCE_IN_PROGRESS tells a member to rejoin.
func init() { regSync(kmsg.Heartbeat, 0, 4, (*Handlers).heartbeat) }

func (h *Handlers) heartbeat(_ context.Context, req *kmsg.HeartbeatRequest) (kmsg.Response, error) {
	if h.groups == nil {
		resp := req.ResponseKind().(*kmsg.HeartbeatResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	return h.groups.Heartbeat(req), nil
}
