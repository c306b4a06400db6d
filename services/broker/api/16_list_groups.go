package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ListGroups: v0-4.
//
// v1 adds ThrottleMillis; v2 nothing; v3 is flexible; v4 (KIP-518) filters
// by state and reports each group's state. It lists the groups this broker
// coordinates, as Kafka's does (clients ask every broker).
func init() { regSync(kmsg.ListGroups, 0, 4, (*Handlers).listGroups) }

func (h *Handlers) listGroups(_ context.Context, req *kmsg.ListGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ListGroupsResponse)
	resp.Groups = []kmsg.ListGroupsResponseGroup{}
	if h.groups == nil {
		return resp, nil // nothing is coordinated here
	}
	states := req.StatesFilter
	if req.Version < 4 {
		states = nil
	}
	groups, err := h.groups.ListGroups(states)
	if err != nil {
		resp.ErrorCode = errCode(err)
		return resp, nil
	}
	for _, g := range groups {
		resp.Groups = append(resp.Groups, kmsg.ListGroupsResponseGroup{Group: g.ID, ProtocolType: g.ProtocolType, GroupState: g.State})
	}
	return resp, nil
}
