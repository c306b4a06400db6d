package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// LeaveGroup: v0-5.
//
// v1 adds ThrottleMillis; v2 nothing; v3 (KIP-345) removes a batch of
// members, by member id or static instance id, with an error each; v4 is
// flexible; v5 (KIP-800) carries a reason per member, logged only.
func init() { regSync(kmsg.LeaveGroup, 0, 5, (*Handlers).leaveGroup) }

func (h *Handlers) leaveGroup(ctx context.Context, req *kmsg.LeaveGroupRequest) (kmsg.Response, error) {
	if h.groups == nil {
		resp := req.ResponseKind().(*kmsg.LeaveGroupResponse)
		resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
		return resp, nil
	}
	return h.groups.LeaveGroup(ctx, req), nil
}
