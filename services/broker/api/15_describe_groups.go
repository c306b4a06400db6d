package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DescribeGroups: v0-5.
//
// v1 adds ThrottleMillis; v2 nothing; v3 authorized operations (not
// computed: no ACLs); v4 (KIP-345) the members' instance ids; v5 is
// flexible. Member metadata and assignments are shown for stable groups
// only, and a group that does not exist is Dead without an error, as in
// Kafka.
func init() { regSync(kmsg.DescribeGroups, 0, 5, (*Handlers).describeGroups) }

func (h *Handlers) describeGroups(_ context.Context, req *kmsg.DescribeGroupsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.DescribeGroupsResponse)
	if h.groups == nil {
		for _, g := range req.Groups {
			d := kmsg.NewDescribeGroupsResponseGroup()
			d.Group, d.ErrorCode = g, kerr.CoordinatorNotAvailable.Code
			resp.Groups = append(resp.Groups, d)
		}
		return resp, nil
	}
	resp.Groups = h.groups.DescribeGroups(req.Groups)
	return resp, nil
}
