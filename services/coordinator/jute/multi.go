package jute

import "fmt"

// MultiHeader precedes each operation of a multi request or response.
type MultiHeader struct {
	Type int32
	Done bool
	Err  Err
}

func (r *MultiHeader) Encode(e *Encoder) { e.Int(r.Type); e.Bool(r.Done); e.Int(int32(r.Err)) }
func (r *MultiHeader) Decode(d *Decoder) {
	r.Type = d.Int()
	r.Done = d.Bool()
	r.Err = Err(d.Int())
}

// MultiOp is one operation of a multi or multiRead request.
type MultiOp struct {
	Type int32
	Req  Record
}

// MultiRequest is multi (opcode 14: create, create2, createContainer,
// createTTL, delete, setData and check, applied atomically) or multiRead
// (opcode 22: getData and getChildren).
type MultiRequest struct{ Ops []MultiOp }

// MaxMultiOps bounds the operations decoded from one multi packet; each
// header alone is 9 bytes, so a 1 MiB packet cannot hold more.
const MaxMultiOps = MaxPacket / 9

func (r *MultiRequest) Encode(e *Encoder) {
	for _, op := range r.Ops {
		h := MultiHeader{Type: op.Type, Done: false, Err: -1}
		h.Encode(e)
		op.Req.Encode(e)
	}
	end := MultiHeader{Type: -1, Done: true, Err: -1}
	end.Encode(e)
}

func (r *MultiRequest) Decode(d *Decoder) {
	r.Ops = r.Ops[:0]
	for d.Err() == nil {
		var h MultiHeader
		h.Decode(d)
		if d.Err() != nil || h.Done {
			return
		}
		if len(r.Ops) >= MaxMultiOps {
			d.Fail(ErrLength)
			return
		}
		req := multiOpRecord(h.Type)
		if req == nil {
			d.Fail(fmt.Errorf("%w: opcode %d is not allowed in a multi", ErrUnknownOp, h.Type))
			return
		}
		req.Decode(d)
		r.Ops = append(r.Ops, MultiOp{Type: h.Type, Req: req})
	}
}

// ErrUnknownOp reports an opcode the decoder has no record for.
var ErrUnknownOp = fmt.Errorf("jute: unknown opcode")

func multiOpRecord(op int32) Record {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}
	case OpCreateTTL:
		return &CreateTTLRequest{}
	case OpDelete, OpCheck:
		return &DeleteRequest{}
	case OpSetData:
		return &SetDataRequest{}
	case OpGetData, OpGetChildren:
		return &PathWatchRequest{}
	}
	return nil
}

// MultiResult is one result of a multi response. Type is the operation's
// opcode, or OpError with Err set and Resp nil for a failed operation.
type MultiResult struct {
	Type int32
	Err  Err
	Resp Record
}

// MultiResponse answers multi and multiRead.
type MultiResponse struct{ Results []MultiResult }

func (r *MultiResponse) Encode(e *Encoder) {
	for _, res := range r.Results {
		h := MultiHeader{Type: res.Type, Done: false, Err: res.Err}
		if res.Type == OpError {
			h.Encode(e)
			er := ErrorResponse{Err: res.Err}
			er.Encode(e)
			continue
		}
		h.Err = 0
		h.Encode(e)
		if res.Resp != nil {
			res.Resp.Encode(e)
		}
	}
	end := MultiHeader{Type: -1, Done: true, Err: -1}
	end.Encode(e)
}

func (r *MultiResponse) Decode(d *Decoder) {
	r.Results = r.Results[:0]
	for d.Err() == nil {
		var h MultiHeader
		h.Decode(d)
		if d.Err() != nil || h.Done {
			return
		}
		if len(r.Results) >= MaxMultiOps {
			d.Fail(ErrLength)
			return
		}
		res := MultiResult{Type: h.Type, Err: h.Err}
		switch h.Type {
		case OpError:
			var er ErrorResponse
			er.Decode(d)
			res.Err = er.Err
		case OpCreate:
			res.Resp = &CreateResponse{}
		case OpCreate2, OpCreateContainer, OpCreateTTL:
			res.Resp = &Create2Response{}
		case OpSetData:
			res.Resp = &StatResponse{}
		case OpGetData:
			res.Resp = &GetDataResponse{}
		case OpGetChildren:
			res.Resp = &ChildrenResponse{}
		case OpDelete, OpCheck:
		default:
			d.Fail(fmt.Errorf("%w: opcode %d in a multi response", ErrUnknownOp, h.Type))
			return
		}
		if res.Resp != nil {
			res.Resp.Decode(d)
		}
		r.Results = append(r.Results, res)
	}
}

// RequestRecord returns an empty request record for opcode op, or nil when
// op carries no body (ping, closeSession, whoAmI) or is unknown; known
// reports whether the server recognises op at all.
func RequestRecord(op int32) (rec Record, known bool) {
	switch op {
	case OpCreate, OpCreate2, OpCreateContainer:
		return &CreateRequest{}, true
	case OpCreateTTL:
		return &CreateTTLRequest{}, true
	case OpDelete, OpCheck:
		return &DeleteRequest{}, true
	case OpExists, OpGetData, OpGetChildren, OpGetChildren2:
		return &PathWatchRequest{}, true
	case OpSetData:
		return &SetDataRequest{}, true
	case OpGetACL, OpSync, OpGetAllChildrenNumber, OpGetEphemerals:
		return &PathRequest{}, true
	case OpSetACL:
		return &SetACLRequest{}, true
	case OpMulti, OpMultiRead:
		return &MultiRequest{}, true
	case OpAuth:
		return &AuthPacket{}, true
	case OpSetWatches:
		return &SetWatches{}, true
	case OpSetWatches2:
		return &SetWatches2{}, true
	case OpAddWatch:
		return &AddWatchRequest{}, true
	case OpCheckWatches, OpRemoveWatches:
		return &RemoveWatchesRequest{}, true
	case OpPing, OpCloseSession, OpWhoAmI:
		return nil, true
	}
	return nil, false
}
