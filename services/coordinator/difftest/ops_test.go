package difftest

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/runnel-io/runnel/services/coordinator/jute"
)

// The operations a scenario can perform. Each records one trace line.
// Operations go-zookeeper v1.0.4 cannot send (create2, multiRead,
// addWatch, removeWatches, checkWatches, getAllChildrenNumber,
// getEphemerals, whoAmI, and anything with a path the client would refuse
// itself) need a session from openRaw; the common ones work on both kinds.

func (s *session) trackEphemeral(path string, flags int32) {
	if flags == ephemeral || flags == ephemeralSeq {
		s.ephemerals = append(s.ephemerals, path)
	}
}

func createDesc(op, path, data string, flags int32, acl []zk.ACL) string {
	d := fmt.Sprintf("%s %s %q %s", op, quotePath(path), data, modeName(flags))
	if !slices.Equal(acl, openACL) {
		d += " acl=" + aclString(acl)
	}
	return d
}

// create is ZooKeeper's create (opcode 1) with the given ACL (open when
// none is given).
func (s *session) create(path, data string, flags int32, acl ...zk.ACL) {
	if acl == nil {
		acl = openACL
	}
	s.createACL(path, data, flags, acl)
}

// createACL is create with an ACL list that may be empty or nil.
func (s *session) createACL(path, data string, flags int32, acl []zk.ACL) {
	s.op(createDesc("create", path, data, flags, acl), func() ([]any, error) {
		var created string
		if s.raw != nil {
			var resp jute.CreateResponse
			if err := s.call(jute.OpCreate, &jute.CreateRequest{Path: path, Data: []byte(data), ACL: juteACL(acl),
				Flags: flags}, &resp); err != nil {
				return nil, err
			}
			created = quotePath(resp.Path)
		} else {
			var err error
			if created, err = s.zk.Create(path, []byte(data), flags, acl); err != nil {
				return nil, err
			}
		}
		s.trackEphemeral(created, flags)
		return []any{created}, nil
	})
}

// createNull is create with null data (a -1 length on the wire); raw only.
func (s *session) createNull(path string) {
	if !s.needRaw("createNull") {
		return
	}
	s.op("create "+path+" null persistent", func() ([]any, error) {
		var resp jute.CreateResponse
		if err := s.call(jute.OpCreate, &jute.CreateRequest{Path: path, ACL: jute.OpenACLUnsafe}, &resp); err != nil {
			return nil, err
		}
		return []any{resp.Path}, nil
	})
}

// create2 is create returning the new node's stat (opcode 15); raw only.
func (s *session) create2(path, data string, flags int32) {
	if !s.needRaw("create2") {
		return
	}
	s.op(createDesc("create2", path, data, flags, openACL), func() ([]any, error) {
		var resp jute.Create2Response
		if err := s.call(jute.OpCreate2, &jute.CreateRequest{Path: path, Data: []byte(data),
			ACL: jute.OpenACLUnsafe, Flags: flags}, &resp); err != nil {
			return nil, err
		}
		s.trackEphemeral(resp.Path, flags)
		return append([]any{resp.Path, " "}, statItems(juteStat(&resp.Stat))...), nil
	})
}

// createContainer is opcode 19.
func (s *session) createContainer(path, data string) {
	s.op(fmt.Sprintf("createContainer %s %q", path, data), func() ([]any, error) {
		if s.raw != nil {
			var resp jute.Create2Response
			if err := s.call(jute.OpCreateContainer, &jute.CreateRequest{Path: path, Data: []byte(data),
				ACL: jute.OpenACLUnsafe, Flags: container}, &resp); err != nil {
				return nil, err
			}
			return append([]any{resp.Path, " "}, statItems(juteStat(&resp.Stat))...), nil
		}
		created, err := s.zk.CreateContainer(path, []byte(data), zk.FlagContainer, openACL)
		if err != nil {
			return nil, err
		}
		return []any{created}, nil
	})
}

// createTTL is opcode 21.
func (s *session) createTTL(path, data string, flags int32, ttl time.Duration) {
	s.op(fmt.Sprintf("createTTL %s %q %s ttl=%v", path, data, modeName(flags), ttl), func() ([]any, error) {
		if s.raw != nil {
			var resp jute.Create2Response
			if err := s.call(jute.OpCreateTTL, &jute.CreateTTLRequest{Path: path, Data: []byte(data),
				ACL: jute.OpenACLUnsafe, Flags: flags, TTL: ttl.Milliseconds()}, &resp); err != nil {
				return nil, err
			}
			return append([]any{resp.Path, " "}, statItems(juteStat(&resp.Stat))...), nil
		}
		created, err := s.zk.CreateTTL(path, []byte(data), flags, openACL, ttl)
		if err != nil {
			return nil, err
		}
		return []any{created}, nil
	})
}

func (s *session) getData(path string, watch bool) {
	desc := "get " + quotePath(path)
	if watch {
		desc = "getW " + quotePath(path)
	}
	s.op(desc, func() ([]any, error) {
		var data []byte
		var st *zk.Stat
		if s.raw != nil {
			var resp jute.GetDataResponse
			if err := s.call(jute.OpGetData, &jute.PathWatchRequest{Path: path, Watch: watch}, &resp); err != nil {
				return nil, err
			}
			data, st = resp.Data, juteStat(&resp.Stat)
		} else {
			var err error
			if watch {
				data, st, _, err = s.zk.GetW(path)
			} else {
				data, st, err = s.zk.Get(path)
			}
			if err != nil {
				return nil, err
			}
		}
		return append([]any{dataString(data), " "}, statItems(st)...), nil
	})
}

func (s *session) get(path string)  { s.getData(path, false) }
func (s *session) getW(path string) { s.getData(path, true) }

func (s *session) existsOp(path string, watch bool) {
	desc := "exists " + quotePath(path)
	if watch {
		desc = "existsW " + quotePath(path)
	}
	s.op(desc, func() ([]any, error) {
		var st *zk.Stat
		found := true
		if s.raw != nil {
			var resp jute.StatResponse
			err := s.call(jute.OpExists, &jute.PathWatchRequest{Path: path, Watch: watch}, &resp)
			if err != nil {
				return nil, err
			}
			st = juteStat(&resp.Stat)
		} else {
			var err error
			if watch {
				found, st, _, err = s.zk.ExistsW(path)
			} else {
				found, st, err = s.zk.Exists(path)
			}
			if err != nil {
				return nil, err
			}
		}
		if !found {
			// go-zookeeper reports NoNode as found=false.
			return []any{"absent"}, nil
		}
		return statItems(st), nil
	})
}

func (s *session) exists(path string)  { s.existsOp(path, false) }
func (s *session) existsW(path string) { s.existsOp(path, true) }

func (s *session) childrenOp(path string, watch bool) {
	desc := "children " + quotePath(path)
	if watch {
		desc = "childrenW " + quotePath(path)
	}
	s.op(desc, func() ([]any, error) {
		var kids []string
		var st *zk.Stat
		if s.raw != nil {
			var resp jute.Children2Response
			if err := s.call(jute.OpGetChildren2, &jute.PathWatchRequest{Path: path, Watch: watch}, &resp); err != nil {
				return nil, err
			}
			kids, st = resp.Children, juteStat(&resp.Stat)
		} else {
			var err error
			if watch {
				kids, st, _, err = s.zk.ChildrenW(path)
			} else {
				kids, st, err = s.zk.Children(path)
			}
			if err != nil {
				return nil, err
			}
		}
		return append([]any{sortedChildren(kids), " "}, statItems(st)...), nil
	})
}

func (s *session) children(path string)  { s.childrenOp(path, false) }
func (s *session) childrenW(path string) { s.childrenOp(path, true) }

// getChildren is the old getChildren (opcode 8), without a stat; raw only.
func (s *session) getChildren(path string, watch bool) {
	if !s.needRaw("getChildren") {
		return
	}
	s.op(fmt.Sprintf("getChildren %s watch=%v", path, watch), func() ([]any, error) {
		var resp jute.ChildrenResponse
		if err := s.call(jute.OpGetChildren, &jute.PathWatchRequest{Path: path, Watch: watch}, &resp); err != nil {
			return nil, err
		}
		return []any{sortedChildren(resp.Children)}, nil
	})
}

func (s *session) set(path, data string, version int32) {
	s.op(fmt.Sprintf("set %s %q v=%d", quotePath(path), data, version), func() ([]any, error) {
		if s.raw != nil {
			var resp jute.StatResponse
			if err := s.call(jute.OpSetData, &jute.SetDataRequest{Path: path, Data: []byte(data), Version: version},
				&resp); err != nil {
				return nil, err
			}
			return statItems(juteStat(&resp.Stat)), nil
		}
		st, err := s.zk.Set(path, []byte(data), version)
		if err != nil {
			return nil, err
		}
		return statItems(st), nil
	})
}

func (s *session) delete(path string, version int32) {
	s.op(fmt.Sprintf("delete %s v=%d", quotePath(path), version), func() ([]any, error) {
		if s.raw != nil {
			return nil, s.call(jute.OpDelete, &jute.DeleteRequest{Path: path, Version: version}, nil)
		}
		return nil, s.zk.Delete(path, version)
	})
}

func (s *session) getACL(path string) {
	s.op("getACL "+path, func() ([]any, error) {
		var acl []zk.ACL
		var st *zk.Stat
		if s.raw != nil {
			var resp jute.GetACLResponse
			if err := s.call(jute.OpGetACL, &jute.PathRequest{Path: path}, &resp); err != nil {
				return nil, err
			}
			acl, st = zkACL(resp.ACL), juteStat(&resp.Stat)
		} else {
			var err error
			if acl, st, err = s.zk.GetACL(path); err != nil {
				return nil, err
			}
		}
		return append([]any{aclString(acl), " "}, statItems(st)...), nil
	})
}

func (s *session) setACL(path string, version int32, acl ...zk.ACL) {
	s.op(fmt.Sprintf("setACL %s %s v=%d", path, aclString(acl), version), func() ([]any, error) {
		if s.raw != nil {
			var resp jute.StatResponse
			if err := s.call(jute.OpSetACL, &jute.SetACLRequest{Path: path, ACL: juteACL(acl), Version: version},
				&resp); err != nil {
				return nil, err
			}
			return statItems(juteStat(&resp.Stat)), nil
		}
		st, err := s.zk.SetACL(path, acl, version)
		if err != nil {
			return nil, err
		}
		return statItems(st), nil
	})
}

func (s *session) sync(path string) {
	s.op("sync "+path, func() ([]any, error) {
		if s.raw != nil {
			var resp jute.PathRequest
			if err := s.call(jute.OpSync, &jute.PathRequest{Path: path}, &resp); err != nil {
				return nil, err
			}
			return []any{resp.Path}, nil
		}
		p, err := s.zk.Sync(path)
		if err != nil {
			return nil, err
		}
		return []any{p}, nil
	})
}

func (s *session) addAuth(scheme, auth string) {
	s.op(fmt.Sprintf("addAuth %s %s", scheme, auth), func() ([]any, error) {
		if s.raw != nil {
			code, err := s.raw.AddAuth(scheme, []byte(auth))
			if err != nil {
				return nil, fmt.Errorf("connection: %w", err)
			}
			if code == jute.ErrAuthFailed {
				// The server closes the connection after this answer.
				s.closed = true
			}
			if code != jute.ErrOK {
				return nil, code
			}
			return nil, nil
		}
		return nil, s.zk.AddAuth(scheme, []byte(auth))
	})
}

// mop is one operation of a multi or multiRead.
type mop struct {
	op      jute.Op
	path    string
	data    string
	flags   int32
	version int32
	ttl     time.Duration
}

func mCreate(path, data string, flags int32) mop {
	return mop{op: jute.OpCreate, path: path, data: data, flags: flags}
}
func mCreate2(path, data string, flags int32) mop {
	return mop{op: jute.OpCreate2, path: path, data: data, flags: flags}
}
func mCreateTTL(path, data string, ttl time.Duration) mop {
	return mop{op: jute.OpCreateTTL, path: path, data: data, flags: persistentTTL, ttl: ttl}
}
func mSet(path, data string, version int32) mop {
	return mop{op: jute.OpSetData, path: path, data: data, version: version}
}
func mDelete(path string, version int32) mop {
	return mop{op: jute.OpDelete, path: path, version: version}
}
func mCheck(path string, version int32) mop {
	return mop{op: jute.OpCheck, path: path, version: version}
}
func mGet(path string) mop      { return mop{op: jute.OpGetData, path: path} }
func mChildren(path string) mop { return mop{op: jute.OpGetChildren, path: path} }

func (m mop) String() string {
	switch m.op {
	case jute.OpCreate, jute.OpCreate2:
		return fmt.Sprintf("%s %s %q %s", jute.OpName(m.op), m.path, m.data, modeName(m.flags))
	case jute.OpCreateTTL:
		return fmt.Sprintf("createTTL %s %q ttl=%v", m.path, m.data, m.ttl)
	case jute.OpSetData:
		return fmt.Sprintf("set %s %q v=%d", m.path, m.data, m.version)
	case jute.OpDelete, jute.OpCheck:
		return fmt.Sprintf("%s %s v=%d", jute.OpName(m.op), m.path, m.version)
	}
	return fmt.Sprintf("%s %s", jute.OpName(m.op), m.path)
}

func (m mop) record() jute.MultiOp {
	switch m.op {
	case jute.OpCreate, jute.OpCreate2:
		return jute.MultiOp{Type: m.op, Req: &jute.CreateRequest{Path: m.path, Data: []byte(m.data),
			ACL: jute.OpenACLUnsafe, Flags: m.flags}}
	case jute.OpCreateTTL:
		return jute.MultiOp{Type: m.op, Req: &jute.CreateTTLRequest{Path: m.path, Data: []byte(m.data),
			ACL: jute.OpenACLUnsafe, Flags: m.flags, TTL: m.ttl.Milliseconds()}}
	case jute.OpSetData:
		return jute.MultiOp{Type: m.op, Req: &jute.SetDataRequest{Path: m.path, Data: []byte(m.data), Version: m.version}}
	case jute.OpDelete, jute.OpCheck:
		return jute.MultiOp{Type: m.op, Req: &jute.DeleteRequest{Path: m.path, Version: m.version}}
	}
	return jute.MultiOp{Type: m.op, Req: &jute.PathWatchRequest{Path: m.path}}
}

func (m mop) zkRequest() any {
	switch m.op {
	case jute.OpCreate:
		return &zk.CreateRequest{Path: m.path, Data: []byte(m.data), Acl: openACL, Flags: m.flags}
	case jute.OpSetData:
		return &zk.SetDataRequest{Path: m.path, Data: []byte(m.data), Version: m.version}
	case jute.OpDelete:
		return &zk.DeleteRequest{Path: m.path, Version: m.version}
	case jute.OpCheck:
		return &zk.CheckVersionRequest{Path: m.path, Version: m.version}
	}
	return nil
}

func multiDesc(name string, ops []mop) string {
	parts := make([]string, len(ops))
	for i, m := range ops {
		parts[i] = m.String()
	}
	return name + " [" + strings.Join(parts, "; ") + "]"
}

// multi is opcode 14. On a go-zookeeper session the per-operation results
// of a failed multi are whatever go-zookeeper decodes; a raw session shows
// exactly what the server sent.
func (s *session) multi(ops ...mop) {
	s.op(multiDesc("multi", ops), func() ([]any, error) {
		if s.raw != nil {
			return s.rawMulti(jute.OpMulti, ops)
		}
		reqs := make([]any, len(ops))
		for i, m := range ops {
			if reqs[i] = m.zkRequest(); reqs[i] == nil {
				return nil, fmt.Errorf("scenario error: go-zookeeper cannot send %s in a multi", jute.OpName(m.op))
			}
		}
		res, err := s.zk.Multi(reqs...)
		items := []any{"results=["}
		for i, r := range res {
			if i > 0 {
				items = append(items, "; ")
			}
			switch {
			case r.Error != nil:
				items = append(items, errName(r.Error))
			case r.Stat != nil:
				items = append(items, "OK ")
				items = append(items, statItems(r.Stat)...)
			case r.String != "":
				items = append(items, "OK "+r.String)
			default:
				items = append(items, "OK")
			}
		}
		items = append(items, "]")
		if err != nil {
			items = append([]any{errName(err), " "}, items...)
			return nil, multiError{err, items}
		}
		for i, m := range ops {
			if i < len(res) && res[i].String != "" {
				s.trackEphemeral(res[i].String, m.flags)
			}
		}
		return items, nil
	})
}

// multiError carries the decoded results of a failed multi into the trace.
type multiError struct {
	err   error
	items []any
}

func (e multiError) Error() string { return e.err.Error() }
func (e multiError) Unwrap() error { return e.err }

// multiRead is opcode 22; raw only.
func (s *session) multiRead(ops ...mop) {
	if !s.needRaw("multiRead") {
		return
	}
	s.op(multiDesc("multiRead", ops), func() ([]any, error) {
		return s.rawMulti(jute.OpMultiRead, ops)
	})
}

func (s *session) rawMulti(op jute.Op, ops []mop) ([]any, error) {
	req := &jute.MultiRequest{}
	for _, m := range ops {
		req.Ops = append(req.Ops, m.record())
	}
	var resp jute.MultiResponse
	hdr, err := s.raw.Call(op, req, &resp)
	if err != nil {
		return nil, fmt.Errorf("connection: %w", err)
	}
	items := []any{"results=["}
	for i, res := range resp.Results {
		if i > 0 {
			items = append(items, "; ")
		}
		if res.Type == jute.OpError {
			items = append(items, res.Err.Error())
			continue
		}
		items = append(items, jute.OpName(res.Type), " OK")
		switch v := res.Resp.(type) {
		case *jute.CreateResponse:
			items = append(items, " ", v.Path)
			s.trackEphemeral(v.Path, ops[i].flags)
		case *jute.Create2Response:
			items = append(items, " ", v.Path, " ")
			items = append(items, statItems(juteStat(&v.Stat))...)
			s.trackEphemeral(v.Path, ops[i].flags)
		case *jute.StatResponse:
			items = append(items, " ")
			items = append(items, statItems(juteStat(&v.Stat))...)
		case *jute.GetDataResponse:
			items = append(items, " ", dataString(v.Data), " ")
			items = append(items, statItems(juteStat(&v.Stat))...)
		case *jute.ChildrenResponse:
			items = append(items, " ", sortedChildren(v.Children))
		}
	}
	items = append(items, "]")
	if hdr.Err != jute.ErrOK {
		return nil, multiError{hdr.Err, append([]any{hdr.Err.Error(), " "}, items...)}
	}
	return items, nil
}

// addWatch is opcode 106 (persistent or persistent-recursive); raw only.
func (s *session) addWatch(path string, mode int32) {
	if !s.needRaw("addWatch") {
		return
	}
	name := "persistent"
	if mode == jute.AddWatchPersistentRecursive {
		name = "persistent_recursive"
	}
	s.op(fmt.Sprintf("addWatch %s %s", path, name), func() ([]any, error) {
		return nil, s.call(jute.OpAddWatch, &jute.AddWatchRequest{Path: path, Mode: mode}, nil)
	})
}

var watcherTypeNames = map[int32]string{
	jute.WatcherTypeChildren: "children", jute.WatcherTypeData: "data", jute.WatcherTypeAny: "any",
}

// removeWatches is opcode 18 and checkWatches opcode 17; raw only.
func (s *session) removeWatches(path string, typ int32) { s.watchesOp(jute.OpRemoveWatches, path, typ) }
func (s *session) checkWatches(path string, typ int32)  { s.watchesOp(jute.OpCheckWatches, path, typ) }

func (s *session) watchesOp(op jute.Op, path string, typ int32) {
	if !s.needRaw(jute.OpName(op)) {
		return
	}
	s.op(fmt.Sprintf("%s %s %s", jute.OpName(op), path, watcherTypeNames[typ]), func() ([]any, error) {
		return nil, s.call(op, &jute.RemoveWatchesRequest{Path: path, Type: typ}, nil)
	})
}

// getAllChildrenNumber is opcode 104; raw only.
func (s *session) getAllChildrenNumber(path string) {
	if !s.needRaw("getAllChildrenNumber") {
		return
	}
	s.op("getAllChildrenNumber "+path, func() ([]any, error) {
		var resp jute.CountResponse
		if err := s.call(jute.OpGetAllChildrenNumber, &jute.PathRequest{Path: path}, &resp); err != nil {
			return nil, err
		}
		return []any{fmt.Sprint(resp.TotalNumber)}, nil
	})
}

// getEphemerals is opcode 103; raw only. The server's order is a hash
// set's, so the paths are sorted.
func (s *session) getEphemerals(prefix string) {
	if !s.needRaw("getEphemerals") {
		return
	}
	s.op("getEphemerals "+prefix, func() ([]any, error) {
		var resp jute.PathsResponse
		if err := s.call(jute.OpGetEphemerals, &jute.PathRequest{Path: prefix}, &resp); err != nil {
			return nil, err
		}
		return []any{sortedChildren(resp.Paths)}, nil
	})
}

// whoAmI is opcode 107; raw only.
func (s *session) whoAmI() {
	if !s.needRaw("whoAmI") {
		return
	}
	s.op("whoAmI", func() ([]any, error) {
		var resp jute.WhoAmIResponse
		if err := s.call(jute.OpWhoAmI, nil, &resp); err != nil {
			return nil, err
		}
		ids := make([]string, len(resp.ClientInfo))
		for i, c := range resp.ClientInfo {
			ids[i] = c.AuthScheme + ":" + c.User
		}
		slices.Sort(ids)
		return []any{"[" + strings.Join(ids, " ") + "]"}, nil
	})
}

// rawOp sends an arbitrary opcode with a path body and records the code;
// raw only. It is for opcodes a server must refuse. ZooKeeper answers an
// unknown opcode with Unimplemented and then drops the connection, so the
// session is not used again: this must be its last operation.
func (s *session) rawOp(op jute.Op, path string) {
	if !s.needRaw("rawOp") {
		return
	}
	s.op(fmt.Sprintf("op(%d) %s", op, path), func() ([]any, error) {
		err := s.call(op, &jute.PathRequest{Path: path}, nil)
		s.closed = true
		return nil, err
	})
}

// close ends the session with closeSession and waits until its ephemeral
// nodes are gone, so the events that follow are in the trace.
func (s *session) close() {
	r := s.r
	if r.failed != nil || s.closed {
		return
	}
	s.shutdown()
	r.add(s.name, " close")
	for _, p := range s.ephemerals {
		r.waitFor(p, false, false)
	}
	// ZooKeeper deletes a closing session's ephemerals in the order of a
	// Java hash set, which is no part of its contract: the events this
	// causes are compared as a set.
	r.settleAll(false, true)
}

// waitGone waits until path no longer exists (a server timer removes
// containers and expired TTL nodes) and records the outcome.
func (r *recorder) waitGone(path string) {
	r.waitFor(path, false, true)
	r.settleAll(true, false)
}

func (r *recorder) waitFor(path string, present, traced bool) {
	if r.failed != nil {
		return
	}
	deadline := time.Now().Add(waitTimeout)
	for {
		ok, _, err := r.observer.Exists(path)
		if err != nil {
			r.fail(fmt.Errorf("wait for %s: %w", path, err))
			return
		}
		if ok == present {
			if traced {
				r.add("wait until gone ", path, " -> OK")
			}
			return
		}
		if time.Now().After(deadline) {
			r.add("wait until gone ", path, fmt.Sprintf(" -> still there after %v", waitTimeout))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// sleep lets server timers run, for checks that something is NOT removed.
func (r *recorder) sleep(d time.Duration) {
	if r.failed != nil {
		return
	}
	time.Sleep(d)
	r.add(fmt.Sprintf("sleep %v", d))
	r.settleAll(true, false)
}
