package znode_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel-io/runnel/services/coordinator/jute"
	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// The scripts in testdata/*.txt drive a DB through commands and compare
// what it answers (results, stats, watch events with watcher names) with
// the expected output written below each command, in the style of
// etcd-io/raft's data-driven tests. Run with -rewrite to regenerate the
// expected output after a deliberate change, then review the diff.
//
// A case is one or more command lines (a multi's operations are indented
// under it), a line "----", and the expected output up to a blank line.
// Lines starting with '#' are comments. The commands are documented on
// (*scriptEnv).run. Every write goes through Txn.MarshalBinary and
// UnmarshalBinary before Apply, and the DB's invariants are checked after
// every command.
var rewrite = flag.Bool("rewrite", false, "rewrite testdata/*.txt with the actual output")

func TestScripts(t *testing.T) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil || len(files) == 0 {
		t.Fatalf("no scripts: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".txt"), func(t *testing.T) { runScript(t, f) })
	}
}

type scriptCase struct {
	pre      []string // comments and blank lines before the case
	line     int      // line number of the first command line
	cmd      []string
	expected []string
}

func parseScript(t *testing.T, file string) (cases []scriptCase, trailer []string) {
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	var cur scriptCase
	state := 0 // 0: before a case, 1: command, 2: expected output
	for i, l := range lines {
		switch state {
		case 0:
			if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
				cur.pre = append(cur.pre, l)
				continue
			}
			cur.line = i + 1
			cur.cmd = []string{l}
			state = 1
		case 1:
			if l == "----" {
				state = 2
				continue
			}
			cur.cmd = append(cur.cmd, l)
		case 2:
			if strings.TrimSpace(l) == "" {
				cases = append(cases, cur)
				cur = scriptCase{pre: []string{l}}
				state = 0
				continue
			}
			cur.expected = append(cur.expected, l)
		}
	}
	switch state {
	case 1:
		t.Fatalf("%s:%d: command without ----", file, cur.line)
	case 2:
		cases = append(cases, cur)
		cur = scriptCase{}
	}
	return cases, cur.pre
}

func runScript(t *testing.T, file string) {
	cases, trailer := parseScript(t, file)
	env := newScriptEnv(t)
	var out strings.Builder
	for _, c := range cases {
		got := env.run(c.cmd)
		if err := znode.CheckInvariants(env.db); err != nil {
			t.Fatalf("%s:%d: %s: invariant broken: %v", file, c.line, c.cmd[0], err)
		}
		for _, l := range c.pre {
			out.WriteString(l + "\n")
		}
		for _, l := range c.cmd {
			out.WriteString(l + "\n")
		}
		out.WriteString("----\n")
		for _, l := range got {
			out.WriteString(l + "\n")
		}
		if !*rewrite && !slices.Equal(got, c.expected) {
			t.Errorf("%s:%d: %s\n--- want\n%s\n--- got\n%s", file, c.line, strings.Join(c.cmd, "\n"),
				strings.Join(c.expected, "\n"), strings.Join(got, "\n"))
		}
	}
	for _, l := range trailer {
		out.WriteString(l + "\n")
	}
	if *rewrite {
		if err := os.WriteFile(file, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// recWatcher records its notifications in the shared event log.
type recWatcher struct {
	name    string
	session int64
	env     *scriptEnv
}

func (w *recWatcher) Notify(ev jute.WatcherEvent, zxid int64) {
	if ev.State != jute.StateSyncConnected {
		w.env.t.Errorf("event with state %d", ev.State)
	}
	w.env.events = append(w.env.events, fmt.Sprintf("event %s %s %s zxid=%d", w.name, eventName(ev.Type), ev.Path, zxid))
}

func (w *recWatcher) WatcherSession() int64 { return w.session }

func eventName(t int32) string {
	switch t {
	case jute.EventNodeCreated:
		return "NodeCreated"
	case jute.EventNodeDeleted:
		return "NodeDeleted"
	case jute.EventNodeDataChanged:
		return "NodeDataChanged"
	case jute.EventNodeChildrenChanged:
		return "NodeChildrenChanged"
	case jute.EventDataWatchRemoved:
		return "DataWatchRemoved"
	case jute.EventChildWatchRemoved:
		return "ChildWatchRemoved"
	case jute.EventPersistentWatchRemoved:
		return "PersistentWatchRemoved"
	}
	return "Event(" + strconv.Itoa(int(t)) + ")"
}

type scriptEnv struct {
	t        *testing.T
	db       *znode.DB
	zxid     int64
	now      int64
	watchers map[string]*recWatcher
	idents   map[string][]jute.Id
	events   []string
}

// defaultAuth is what every ZooKeeper connection carries: its address.
var defaultAuth = []jute.Id{{Scheme: "ip", ID: "127.0.0.1"}}

func newScriptEnv(t *testing.T) *scriptEnv {
	return &scriptEnv{
		t:        t,
		db:       znode.New(),
		now:      1000,
		watchers: map[string]*recWatcher{},
		idents:   map[string][]jute.Id{},
	}
}

// args is a parsed command line: positional words and key=value options.
type args struct {
	pos  []string
	opts map[string]string
	used map[string]bool
	env  *scriptEnv
	cmd  string
}

type token struct {
	text   string
	quoted bool // a positional string, even if it contains '='
}

// tokenize splits on spaces, keeping double-quoted strings (Go syntax)
// together; key="quoted value" works too.
func tokenize(l string) ([]token, error) {
	var out []token
	l = strings.TrimSpace(l)
	for l != "" {
		i := 0
		for i < len(l) && l[i] != ' ' {
			if l[i] == '"' {
				q, err := strconv.QuotedPrefix(l[i:])
				if err != nil {
					return nil, err
				}
				i += len(q)
				continue
			}
			i++
		}
		tok := token{text: l[:i]}
		if k, v, ok := strings.Cut(tok.text, "="); ok && strings.HasPrefix(v, "\"") {
			u, err := strconv.Unquote(v)
			if err != nil {
				return nil, err
			}
			tok.text = k + "=" + u
		} else if strings.HasPrefix(tok.text, "\"") {
			u, err := strconv.Unquote(tok.text)
			if err != nil {
				return nil, err
			}
			tok = token{text: u, quoted: true}
		}
		out = append(out, tok)
		l = strings.TrimSpace(l[i:])
	}
	return out, nil
}

func (e *scriptEnv) parse(l string) *args {
	toks, err := tokenize(l)
	if err != nil || len(toks) == 0 {
		e.t.Fatalf("bad command line %q: %v", l, err)
	}
	a := &args{cmd: toks[0].text, opts: map[string]string{}, used: map[string]bool{}, env: e}
	for _, tok := range toks[1:] {
		if k, v, ok := strings.Cut(tok.text, "="); ok && !tok.quoted && k != "" && !strings.HasPrefix(tok.text, "/") {
			a.opts[k] = v
		} else {
			a.pos = append(a.pos, tok.text)
		}
	}
	return a
}

func (a *args) arg(i int) string {
	if i >= len(a.pos) {
		a.env.t.Fatalf("%s: missing argument %d", a.cmd, i+1)
	}
	return a.pos[i]
}

func (a *args) opt(k, def string) string {
	a.used[k] = true
	if v, ok := a.opts[k]; ok {
		return v
	}
	return def
}

func (a *args) has(k string) bool { a.used[k] = true; _, ok := a.opts[k]; return ok }

func (a *args) int(k string, def int64) int64 {
	v := a.opt(k, "")
	if v == "" {
		return def
	}
	n, err := strconv.ParseInt(v, 0, 64)
	if err != nil {
		u, err2 := strconv.ParseUint(v, 0, 64)
		if err2 != nil {
			a.env.t.Fatalf("%s: bad number %s=%s", a.cmd, k, v)
		}
		n = int64(u)
	}
	return n
}

func (a *args) done() {
	for k := range a.opts {
		if !a.used[k] {
			a.env.t.Fatalf("%s: unknown option %s", a.cmd, k)
		}
	}
}

// auth resolves as=NAME to an identity set (default: just the ip id).
func (a *args) auth() []jute.Id {
	name := a.opt("as", "")
	if name == "" {
		return defaultAuth
	}
	ids, ok := a.env.idents[name]
	if !ok {
		a.env.t.Fatalf("unknown identity %s", name)
	}
	return ids
}

func (a *args) watcher() znode.Watcher {
	name := a.opt("watch", "")
	if name == "" {
		return nil
	}
	return a.env.watcher(name)
}

func (e *scriptEnv) watcher(name string) *recWatcher {
	w, ok := e.watchers[name]
	if !ok {
		w = &recWatcher{name: name, env: e}
		e.watchers[name] = w
	}
	return w
}

// parseID reads scheme:id, with "digestpw:user:password" for a digest id
// computed by DigestID.
func parseID(s string) jute.Id {
	scheme, id, _ := strings.Cut(s, ":")
	if scheme == "digestpw" {
		user, pw, _ := strings.Cut(id, ":")
		return jute.Id{Scheme: "digest", ID: znode.DigestID(user, pw)}
	}
	return jute.Id{Scheme: scheme, ID: id}
}

// parseACL reads open, read, creator, none, or a comma list of
// perms:scheme:id where perms are letters of "rwcda" or a number.
func (e *scriptEnv) parseACL(s string) []jute.ACL {
	switch s {
	case "open":
		return jute.OpenACLUnsafe
	case "read":
		return jute.ReadACLUnsafe
	case "creator":
		return jute.CreatorAllACL
	case "none":
		return []jute.ACL{}
	case "nil":
		return nil
	}
	var out []jute.ACL
	for _, part := range strings.Split(s, ",") {
		perms, rest, ok := strings.Cut(part, ":")
		if !ok {
			e.t.Fatalf("bad ACL %q", part)
		}
		out = append(out, jute.ACL{Perms: parsePerms(e.t, perms), ID: parseID(rest)})
	}
	return out
}

func parsePerms(t *testing.T, s string) int32 {
	if n, err := strconv.Atoi(s); err == nil {
		return int32(n)
	}
	var p int32
	for _, c := range s {
		switch c {
		case 'r':
			p |= jute.PermRead
		case 'w':
			p |= jute.PermWrite
		case 'c':
			p |= jute.PermCreate
		case 'd':
			p |= jute.PermDelete
		case 'a':
			p |= jute.PermAdmin
		case '-':
		default:
			t.Fatalf("bad perms %q", s)
		}
	}
	return p
}

func permString(p int32) string {
	var b strings.Builder
	for _, x := range []struct {
		bit int32
		c   byte
	}{{jute.PermCreate, 'c'}, {jute.PermDelete, 'd'}, {jute.PermRead, 'r'}, {jute.PermWrite, 'w'}, {jute.PermAdmin, 'a'}} {
		if p&x.bit != 0 {
			b.WriteByte(x.c)
		}
	}
	if rest := p &^ jute.PermAll; rest != 0 {
		b.WriteString("+" + strconv.Itoa(int(rest)))
	}
	if b.Len() == 0 {
		return "-"
	}
	return b.String()
}

var modeFlags = map[string]int32{
	"persistent": 0, "ephemeral": 1, "sequential": 2, "ephemeral-sequential": 3,
	"container": 4, "ttl": 5, "ttl-sequential": 6,
}

func (e *scriptEnv) flags(a *args) int32 {
	f := a.opt("flags", "persistent")
	if v, ok := modeFlags[f]; ok {
		return v
	}
	n, err := strconv.Atoi(f)
	if err != nil {
		e.t.Fatalf("bad flags %q", f)
	}
	return int32(n)
}

// writeOp builds the request of a create, set, delete, check or setacl
// command, for a top-level Txn or a multi operation.
func (e *scriptEnv) writeOp(a *args) (int32, jute.Record) {
	switch a.cmd {
	case "create":
		flags := e.flags(a)
		var data []byte
		if len(a.pos) > 1 {
			data = []byte(a.pos[1])
		}
		if a.has("nodata") {
			data = nil
		}
		acl := e.parseACL(a.opt("acl", "open"))
		op := map[int32]string{4: "container", 5: "ttl", 6: "ttl"}[flags]
		if op == "" {
			op = "create"
		}
		op = a.opt("op", op)
		switch op {
		case "create":
			return jute.OpCreate, &jute.CreateRequest{Path: a.arg(0), Data: data, ACL: acl, Flags: flags}
		case "create2":
			return jute.OpCreate2, &jute.CreateRequest{Path: a.arg(0), Data: data, ACL: acl, Flags: flags}
		case "container":
			return jute.OpCreateContainer, &jute.CreateRequest{Path: a.arg(0), Data: data, ACL: acl, Flags: flags}
		case "ttl":
			return jute.OpCreateTTL, &jute.CreateTTLRequest{Path: a.arg(0), Data: data, ACL: acl, Flags: flags, TTL: a.int("ttl", -1)}
		}
		e.t.Fatalf("bad op %q", op)
	case "set":
		var data []byte
		if len(a.pos) > 1 {
			data = []byte(a.pos[1])
		}
		return jute.OpSetData, &jute.SetDataRequest{Path: a.arg(0), Data: data, Version: int32(a.int("version", -1))}
	case "delete":
		return jute.OpDelete, &jute.DeleteRequest{Path: a.arg(0), Version: int32(a.int("version", -1))}
	case "check":
		return jute.OpCheck, &jute.DeleteRequest{Path: a.arg(0), Version: int32(a.int("version", -1))}
	case "setacl":
		return jute.OpSetACL, &jute.SetACLRequest{Path: a.arg(0), ACL: e.parseACL(a.opt("acl", "open")), Version: int32(a.int("version", -1))}
	case "get":
		return jute.OpGetData, &jute.PathWatchRequest{Path: a.arg(0), Watch: a.opt("watch", "") != ""}
	case "ls":
		return jute.OpGetChildren, &jute.PathWatchRequest{Path: a.arg(0), Watch: a.opt("watch", "") != ""}
	}
	e.t.Fatalf("%s is not an operation", a.cmd)
	return 0, nil
}

// apply runs one Txn, after sending it through its binary encoding as the
// log or raft would.
func (e *scriptEnv) apply(op int32, session int64, auth []jute.Id, req jute.Record) znode.Result {
	e.zxid++
	txn := &znode.Txn{Zxid: e.zxid, Time: e.now, SessionID: session, Cxid: int32(e.zxid), Op: op, Req: req, Auth: auth, Origin: uint64(e.zxid)}
	b, err := txn.MarshalBinary()
	if err != nil {
		e.t.Fatalf("marshal %s: %v", jute.OpName(op), err)
	}
	var back znode.Txn
	if err := back.UnmarshalBinary(b); err != nil {
		e.t.Fatalf("unmarshal %s: %v", jute.OpName(op), err)
	}
	if !reflect.DeepEqual(txn, &back) {
		e.t.Fatalf("txn roundtrip changed it:\n%#v\n%#v", txn, &back)
	}
	return e.db.Apply(&back)
}

func (e *scriptEnv) session(a *args) int64 { return a.int("session", 0) }

// run executes one command and returns its output lines.
//
// Writes (each a Txn with the next zxid and the current time):
//
//	create PATH [DATA] [flags=MODE|N] [ttl=MS] [acl=ACL] [op=create|create2|container|ttl] [nodata] [session=ID] [as=IDENT]
//	set PATH [DATA] [version=N]      delete PATH [version=N]
//	check PATH [version=N]           setacl PATH acl=ACL [version=N]
//	multi [session=ID] [as=IDENT]    (indented operations follow)
//	open-session ID [timeout=MS]     close-session ID
//	delete-container PATH            noop | sync PATH
//	raw-txn OP                       (a Txn with no body, for error codes)
//
// Reads (watch=NAME registers a watch for watcher NAME):
//
//	get PATH   exists PATH   ls PATH   ls2 PATH   getacl PATH   count PATH
//	ephemerals PREFIX session=ID     multiread (indented get and ls)
//	addwatch PATH mode=persistent|recursive watch=NAME
//	checkwatches|removewatches PATH type=children|data|any|persistent|recursive watch=NAME
//	setwatches [v2] rel=ZXID [data=P,..] [exist=..] [child=..] [persistent=..] [recursive=..] watch=NAME
//	read OP PATH                     (an op with a PathRequest body)
//
// State and reports:
//
//	identity NAME SCHEME:ID...       watcher NAME session=ID
//	tick MS                          remove-watcher NAME
//	expirable [now=MS]   stats   sessions   wchc   wchp   dump   tree
//	snapshot-roundtrip
func (e *scriptEnv) run(lines []string) []string {
	e.events = nil
	a := e.parse(lines[0])
	var out []string
	add := func(format string, v ...any) { out = append(out, fmt.Sprintf(format, v...)) }
	switch a.cmd {
	case "create", "set", "delete", "check", "setacl":
		op, req := e.writeOp(a)
		r := e.apply(op, e.session(a), a.auth(), req)
		out = append(out, fmtResult(r)...)
	case "multi":
		m := &jute.MultiRequest{}
		for _, l := range lines[1:] {
			sub := e.parse(l)
			op, req := e.writeOp(sub)
			if op == jute.OpGetData || op == jute.OpGetChildren {
				e.t.Fatalf("multi cannot hold %s", sub.cmd)
			}
			sub.done()
			m.Ops = append(m.Ops, jute.MultiOp{Type: op, Req: req})
		}
		r := e.apply(jute.OpMulti, e.session(a), a.auth(), m)
		out = append(out, fmtResult(r)...)
	case "multiread":
		m := &jute.MultiRequest{}
		var w znode.Watcher
		for _, l := range lines[1:] {
			sub := e.parse(l)
			op, req := e.writeOp(sub)
			if sub.has("watch") {
				w = sub.watcher()
			}
			sub.done()
			m.Ops = append(m.Ops, jute.MultiOp{Type: op, Req: req})
		}
		resp, code := e.db.Read(e.session(a), a.auth(), jute.OpMultiRead, m, w)
		out = append(out, fmtResp(code, resp)...)
	case "open-session":
		id, err := strconv.ParseInt(a.arg(0), 0, 64)
		if err != nil {
			e.t.Fatal(err)
		}
		e.zxid++
		r := e.applyTxn(&znode.Txn{Zxid: e.zxid, Time: e.now, SessionID: id, Op: jute.OpCreateSession,
			Timeout: int32(a.int("timeout", 30000)), Passwd: []byte("secret")})
		out = append(out, fmtResult(r)...)
	case "close-session":
		id, err := strconv.ParseInt(a.arg(0), 0, 64)
		if err != nil {
			e.t.Fatal(err)
		}
		r := e.apply(jute.OpCloseSession, id, nil, nil)
		out = append(out, fmtResult(r)...)
	case "delete-container":
		r := e.apply(jute.OpDeleteContainer, 0, nil, &jute.DeleteRequest{Path: a.arg(0), Version: -1})
		out = append(out, fmtResult(r)...)
	case "noop":
		r := e.apply(znode.OpNoop, 0, nil, nil)
		out = append(out, fmtResult(r)...)
	case "sync":
		r := e.apply(jute.OpSync, e.session(a), nil, &jute.PathRequest{Path: a.arg(0)})
		out = append(out, fmtResult(r)...)
	case "raw-txn":
		op, err := strconv.ParseInt(a.arg(0), 0, 32)
		if err != nil {
			e.t.Fatal(err)
		}
		r := e.apply(int32(op), e.session(a), nil, nil)
		out = append(out, fmtResult(r)...)
	case "get", "exists", "ls", "ls2":
		op := map[string]int32{"get": jute.OpGetData, "exists": jute.OpExists, "ls": jute.OpGetChildren, "ls2": jute.OpGetChildren2}[a.cmd]
		w := a.watcher()
		resp, code := e.db.Read(e.session(a), a.auth(), op, &jute.PathWatchRequest{Path: a.arg(0), Watch: w != nil}, w)
		out = append(out, fmtResp(code, resp)...)
	case "getacl", "count", "ephemerals", "read":
		op := map[string]int32{"getacl": jute.OpGetACL, "count": jute.OpGetAllChildrenNumber, "ephemerals": jute.OpGetEphemerals}[a.cmd]
		path := ""
		if a.cmd == "read" {
			n, err := strconv.ParseInt(a.arg(0), 0, 32)
			if err != nil {
				e.t.Fatal(err)
			}
			op = int32(n)
			path = a.arg(1)
		} else {
			path = a.arg(0)
		}
		resp, code := e.db.Read(e.session(a), a.auth(), op, &jute.PathRequest{Path: path}, a.watcher())
		out = append(out, fmtResp(code, resp)...)
	case "addwatch":
		mode := map[string]int32{"persistent": jute.AddWatchPersistent, "recursive": jute.AddWatchPersistentRecursive}[a.opt("mode", "persistent")]
		if m := a.opt("mode", ""); m != "" && m != "persistent" && m != "recursive" {
			n, _ := strconv.Atoi(m)
			mode = int32(n)
		}
		resp, code := e.db.Read(e.session(a), a.auth(), jute.OpAddWatch, &jute.AddWatchRequest{Path: a.arg(0), Mode: mode}, a.watcher())
		out = append(out, fmtResp(code, resp)...)
	case "checkwatches", "removewatches":
		op := jute.OpCheckWatches
		if a.cmd == "removewatches" {
			op = jute.OpRemoveWatches
		}
		typ := map[string]int32{"children": 1, "data": 2, "any": 3, "persistent": 4, "recursive": 5}[a.opt("type", "any")]
		resp, code := e.db.Read(e.session(a), a.auth(), op, &jute.RemoveWatchesRequest{Path: a.arg(0), Type: typ}, a.watcher())
		out = append(out, fmtResp(code, resp)...)
	case "setwatches":
		list := func(k string) []string {
			if v := a.opt(k, ""); v != "" {
				return strings.Split(v, ",")
			}
			return nil
		}
		var req jute.Record = &jute.SetWatches{RelativeZxid: a.int("rel", 0),
			DataWatches: list("data"), ExistWatches: list("exist"), ChildWatches: list("child")}
		op := jute.OpSetWatches
		if len(a.pos) > 0 && a.pos[0] == "v2" {
			op = jute.OpSetWatches2
			req = &jute.SetWatches2{RelativeZxid: a.int("rel", 0),
				DataWatches: list("data"), ExistWatches: list("exist"), ChildWatches: list("child"),
				PersistentWatches: list("persistent"), PersistentRecursiveWatches: list("recursive")}
		}
		resp, code := e.db.Read(e.session(a), a.auth(), op, req, a.watcher())
		out = append(out, fmtResp(code, resp)...)
	case "identity":
		var ids []jute.Id
		for _, s := range a.pos[1:] {
			ids = append(ids, parseID(s))
		}
		e.idents[a.arg(0)] = ids
		for _, id := range ids {
			add("%s:%s", id.Scheme, id.ID)
		}
	case "watcher":
		e.watcher(a.arg(0)).session = a.int("session", 0)
		add("ok")
	case "remove-watcher":
		e.db.RemoveWatcher(e.watcher(a.arg(0)))
		add("ok")
	case "tick":
		n, err := strconv.ParseInt(a.arg(0), 0, 64)
		if err != nil {
			e.t.Fatal(err)
		}
		e.now += n
		add("now=%d", e.now)
	case "expirable":
		add("%v", e.db.Expirable(a.int("now", e.now)))
	case "stats":
		s := e.db.Stats()
		add("nodes=%d watches=%d watch-paths=%d ephemerals=%d data-size=%d sessions=%d last-zxid=%d",
			s.Nodes, s.Watches, s.WatchPaths, s.Ephemerals, s.ApproxDataSize, s.Sessions, e.db.LastZxid())
	case "sessions":
		for _, s := range e.db.Sessions() {
			add("0x%x timeout=%d passwd=%q", s.ID, s.Timeout, s.Passwd)
		}
		if len(out) == 0 {
			add("none")
		}
	case "wchc":
		m := e.db.WatchesBySession()
		for _, id := range sortedKeys(m) {
			add("0x%x %v", id, m[id])
		}
		if len(out) == 0 {
			add("none")
		}
	case "wchp":
		m := e.db.WatchesByPath()
		for _, p := range sortedKeys(m) {
			ids := make([]string, len(m[p]))
			for i, id := range m[p] {
				ids[i] = fmt.Sprintf("0x%x", id)
			}
			add("%s %v", p, ids)
		}
		if len(out) == 0 {
			add("none")
		}
	case "dump":
		m := e.db.EphemeralsBySession()
		for _, id := range sortedKeys(m) {
			add("0x%x %v", id, m[id])
		}
		if len(out) == 0 {
			add("none")
		}
	case "tree":
		out = append(out, dumpTree(e.t, e.db)...)
	case "snapshot-roundtrip":
		out = append(out, e.snapshotRoundtrip()...)
	default:
		e.t.Fatalf("unknown command %q", a.cmd)
	}
	a.done()
	out = append(out, e.events...)
	if len(out) == 0 {
		out = append(out, "ok")
	}
	return out
}

func (e *scriptEnv) applyTxn(txn *znode.Txn) znode.Result {
	b, err := txn.MarshalBinary()
	if err != nil {
		e.t.Fatal(err)
	}
	var back znode.Txn
	if err := back.UnmarshalBinary(b); err != nil {
		e.t.Fatal(err)
	}
	if !reflect.DeepEqual(txn, &back) {
		e.t.Fatalf("txn roundtrip changed it:\n%#v\n%#v", txn, &back)
	}
	return e.db.Apply(&back)
}

func sortedKeys[K int64 | string, V any](m map[K]V) []K {
	keys := make([]K, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// snapshotRoundtrip writes a snapshot, loads it into a new DB and into the
// same DB, and checks that nothing observable changed and that the restored
// DB writes the same bytes.
func (e *scriptEnv) snapshotRoundtrip() []string {
	before := stateDump(e.t, e.db)
	var buf bytes.Buffer
	if err := e.db.WriteSnapshot(&buf); err != nil {
		e.t.Fatalf("write snapshot: %v", err)
	}
	fresh := znode.New()
	if err := fresh.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		e.t.Fatalf("read snapshot: %v", err)
	}
	if err := znode.CheckInvariants(fresh); err != nil {
		e.t.Fatalf("restored DB: %v", err)
	}
	if got := stateDump(e.t, fresh); !slices.Equal(got, before) {
		e.t.Fatalf("restored state differs:\n%s\n---\n%s", strings.Join(before, "\n"), strings.Join(got, "\n"))
	}
	var again bytes.Buffer
	if err := fresh.WriteSnapshot(&again); err != nil {
		e.t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), again.Bytes()) {
		e.t.Fatalf("restored DB writes a different snapshot")
	}
	if err := e.db.ReadSnapshot(bytes.NewReader(buf.Bytes())); err != nil {
		e.t.Fatalf("read snapshot in place: %v", err)
	}
	if got := stateDump(e.t, e.db); !slices.Equal(got, before) {
		e.t.Fatalf("state changed by an in-place restore")
	}
	st := fresh.Stats()
	return []string{fmt.Sprintf("snapshot ok nodes=%d sessions=%d last-zxid=%d", st.Nodes, st.Sessions, fresh.LastZxid())}
}

// superAuth reads everything regardless of ACLs.
var superAuth = []jute.Id{{Scheme: "super", ID: ""}}

// stateDump lists what a snapshot must preserve: every node with its data,
// stat and ACL, the sessions, LastZxid and the counters.
func stateDump(t *testing.T, db *znode.DB) []string {
	out := dumpTree(t, db)
	for _, s := range db.Sessions() {
		out = append(out, fmt.Sprintf("session 0x%x %d %q", s.ID, s.Timeout, s.Passwd))
	}
	st := db.Stats()
	out = append(out, fmt.Sprintf("zxid=%d nodes=%d eph=%d size=%d sessions=%d", db.LastZxid(), st.Nodes, st.Ephemerals, st.ApproxDataSize, st.Sessions))
	m := db.EphemeralsBySession()
	for _, id := range sortedKeys(m) {
		out = append(out, fmt.Sprintf("eph 0x%x %v", id, m[id]))
	}
	out = append(out, fmt.Sprintf("expirable %v", db.Expirable(1<<62)))
	return out
}

// dumpTree walks the tree through Read only.
func dumpTree(t *testing.T, db *znode.DB) []string {
	var out []string
	var walk func(path string)
	walk = func(path string) {
		resp, code := db.Read(0, superAuth, jute.OpGetData, &jute.PathWatchRequest{Path: path}, nil)
		if code != jute.ErrOK {
			t.Fatalf("tree: get %s: %v", path, code)
		}
		gd := resp.(*jute.GetDataResponse)
		aclResp, code := db.Read(0, superAuth, jute.OpGetACL, &jute.PathRequest{Path: path}, nil)
		if code != jute.ErrOK {
			t.Fatalf("tree: getACL %s: %v", path, code)
		}
		out = append(out, fmt.Sprintf("%s %s %s %s", path, fmtData(gd.Data), fmtStat(&gd.Stat), fmtACL(aclResp.(*jute.GetACLResponse).ACL)))
		resp, code = db.Read(0, superAuth, jute.OpGetChildren, &jute.PathWatchRequest{Path: path}, nil)
		if code != jute.ErrOK {
			t.Fatalf("tree: ls %s: %v", path, code)
		}
		for _, c := range resp.(*jute.ChildrenResponse).Children {
			if path == "/" {
				walk("/" + c)
			} else {
				walk(path + "/" + c)
			}
		}
	}
	walk("/")
	return out
}

func fmtData(b []byte) string {
	if b == nil {
		return "data=<nil>"
	}
	return fmt.Sprintf("data=%q", b)
}

func fmtStat(s *jute.Stat) string {
	return fmt.Sprintf("stat{czxid=%d mzxid=%d pzxid=%d ctime=%d mtime=%d version=%d cversion=%d aversion=%d owner=0x%x len=%d children=%d}",
		s.Czxid, s.Mzxid, s.Pzxid, s.Ctime, s.Mtime, s.Version, s.Cversion, s.Aversion, uint64(s.EphemeralOwner), s.DataLength, s.NumChildren)
}

func fmtACL(acl []jute.ACL) string {
	parts := make([]string, len(acl))
	for i, a := range acl {
		parts[i] = permString(a.Perms) + ":" + a.ID.Scheme + ":" + a.ID.ID
	}
	return "acl=[" + strings.Join(parts, ",") + "]"
}

func fmtResult(r znode.Result) []string {
	lines := fmtResp(r.Err, r.Resp)
	lines[0] = fmt.Sprintf("zxid=%d %s", r.Zxid, lines[0])
	if h := r.HeaderErr(); h != r.Err {
		lines[0] += " header=" + h.Error()
	}
	return lines
}

// fmtResp renders a code and a response body; the first line starts with
// the code.
func fmtResp(code jute.Err, resp jute.Record) []string {
	head := code.Error()
	if code != jute.ErrOK && resp != nil {
		if _, multi := resp.(*jute.MultiResponse); !multi {
			head += fmt.Sprintf(" UNEXPECTED BODY %T", resp)
		}
	}
	if code == jute.ErrOK && resp == nil {
		head += " UNEXPECTED NIL BODY"
	}
	switch r := resp.(type) {
	case nil, *jute.Empty:
		return []string{head}
	case *jute.MultiResponse:
		lines := []string{head}
		for i, res := range r.Results {
			if res.Type == jute.OpError {
				lines = append(lines, fmt.Sprintf("  %d error %s", i, res.Err))
				continue
			}
			body := ""
			if res.Resp != nil {
				body = " " + fmtBody(res.Resp)
			}
			lines = append(lines, fmt.Sprintf("  %d %s%s", i, jute.OpName(res.Type), body))
		}
		return lines
	}
	return []string{head + " " + fmtBody(resp)}
}

func fmtBody(resp jute.Record) string {
	switch r := resp.(type) {
	case *jute.CreateResponse:
		return "path=" + r.Path
	case *jute.Create2Response:
		return "path=" + r.Path + " " + fmtStat(&r.Stat)
	case *jute.StatResponse:
		return fmtStat(&r.Stat)
	case *jute.GetDataResponse:
		return fmtData(r.Data) + " " + fmtStat(&r.Stat)
	case *jute.ChildrenResponse:
		return fmt.Sprintf("children=%v", r.Children)
	case *jute.Children2Response:
		return fmt.Sprintf("children=%v %s", r.Children, fmtStat(&r.Stat))
	case *jute.GetACLResponse:
		return fmtACL(r.ACL) + " " + fmtStat(&r.Stat)
	case *jute.CountResponse:
		return fmt.Sprintf("count=%d", r.TotalNumber)
	case *jute.PathsResponse:
		return fmt.Sprintf("paths=%v", r.Paths)
	case *jute.PathRequest:
		return "path=" + r.Path
	case *jute.ErrorResponse:
		return "body=ErrorResponse(" + r.Err.Error() + ")"
	}
	return fmt.Sprintf("%T", resp)
}
