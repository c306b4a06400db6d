package api

import (
	"context"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ApiVersions: v0-3.
//
// v1 adds ThrottleMillis; v3 (KIP-482/511) is flexible and carries the
// client's software name and version, and the supported features (none
// here). Whatever the version, the response header is the non-flexible v0
// one; an unknown version is answered at v0 by the wire layer.
func init() { regSync(kmsg.ApiVersions, 0, 3, (*Handlers).apiVersions) }

func (h *Handlers) apiVersions(_ context.Context, req *kmsg.ApiVersionsRequest) (kmsg.Response, error) {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = h.Versions()
	resp.FinalizedFeaturesEpoch = -1
	return resp, nil
}
