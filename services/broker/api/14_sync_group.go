package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/wire"
)

// SyncGroup: v0-5.
//
// v1 adds ThrottleMillis; v2 nothing; v3 (KIP-345) group.instance.id; v4 is
// flexible; v5 (KIP-559) carries the protocol type and name, which must
// match the group's. Followers wait for the leader's assignment, which is
// stored in __consumer_offsets before anyone gets theirs.
func init() { regKey(kmsg.SyncGroup, 0, 5, (*Handlers).syncGroup) }

func (h *Handlers) syncGroup(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.SyncGroupRequest)
	if h.groups == nil {
		resp := req.ResponseKind().(*kmsg.SyncGroupResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		r.Respond(resp)
		return
	}
	h.groups.SyncGroup(ctx, req, func(resp *kmsg.SyncGroupResponse) { r.Respond(resp) })
}
