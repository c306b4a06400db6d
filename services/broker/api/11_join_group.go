package api

import (
	"context"
	"net"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/runnel-io/runnel/services/broker/group"
	"github.com/runnel-io/runnel/services/broker/wire"
)

// JoinGroup: v0-9.
//
// v1 adds the rebalance timeout (v0 uses the session timeout for both);
// v2 ThrottleMillis; v3 nothing; v4 (KIP-394) makes a member without an id
// come back with the one it is handed (MEMBER_ID_REQUIRED); v5 (KIP-345)
// adds group.instance.id for static members; v6 is flexible; v7 returns
// the protocol type; v8 (KIP-800) carries a reason, logged only; v9
// (KIP-814) tells a static leader that rejoined a stable group it need not
// assign again. The answer comes when the join phase completes, which may
// be a rebalance timeout later; the connection's later responses wait for
// it, as with Kafka.
func init() { regKey(kmsg.JoinGroup, 0, 9, (*Handlers).joinGroup) }

func (h *Handlers) joinGroup(ctx context.Context, r *wire.Request) {
	req := r.Msg.(*kmsg.JoinGroupRequest)
	if h.groups == nil {
		resp := req.ResponseKind().(*kmsg.JoinGroupResponse)
		resp.ErrorCode, resp.Generation = kerr.CoordinatorNotAvailable.Code, -1
		r.Respond(resp)
		return
	}
	h.groups.JoinGroup(ctx, req, client(r), func(resp *kmsg.JoinGroupResponse) { r.Respond(resp) })
}

// client describes a request's sender as Kafka shows a group member:
// its client id and "/<ip>".
func client(r *wire.Request) group.Client {
	c := group.Client{ID: r.ClientID}
	if r.Remote != nil {
		host := r.Remote.String()
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		c.Host = "/" + host
	}
	return c
}
