package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DeleteGroups: v0-2.
//
// v1 nothing new; v2 is flexible. A group must exist and have no members
// (NON_EMPTY_GROUP otherwise); its offsets and metadata get tombstones in
// __consumer_offsets.
func init() { regSync(kmsg.DeleteGroups, 0, 2, (*Handlers).deleteGroups) }

func (h *Handlers) deleteGroups(ctx context.Context, req *kmsg.DeleteGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DeleteGroupsResponse)
	codes := make([]int16, len(req.Groups))
	if h.groups == nil {
		for i := range codes {
			codes[i] = kerr.CoordinatorNotAvailable.Code
		}
	} else {
		codes = h.groups.DeleteGroups(ctx, req.Groups)
	}
	for i, g := range req.Groups {
		resp.Groups = append(resp.Groups, kmsg.DeleteGroupsResponseGroup{Group: g, ErrorCode: codes[i]})
	}
	return resp, nil
}
