package ensemble

import (
	"bufio"
	"bytes"
	"fmt"
	"io"

	"github.com/hashicorp/raft"

	"github.com/runnel-io/runnel/services/coordinator/znode"
)

// fsm applies committed raft entries to the znode.DB. Raft calls it from one
// goroutine, in log order, on every member.
type fsm struct{ e *Ensemble }

var _ raft.BatchingFSM = (*fsm)(nil)

// Apply implements raft.FSM.
func (f *fsm) Apply(l *raft.Log) any {
	f.apply(l)
	return nil
}

// ApplyBatch implements raft.BatchingFSM.
func (f *fsm) ApplyBatch(logs []*raft.Log) []any {
	for _, l := range logs {
		f.apply(l)
	}
	return make([]any, len(logs))
}

func (f *fsm) apply(l *raft.Log) {
	if l.Type != raft.LogCommand {
		return
	}
	e := f.e
	origin, body, err := parseEnvelope(l.Data)
	if err != nil {
		// Every member skips the same entry, so their states stay equal.
		e.lg.Error("skipping undecodable raft entry", "index", l.Index, "err", err)
		return
	}
	var t znode.Txn
	if err := t.UnmarshalBinary(body); err != nil {
		e.lg.Error("skipping undecodable transaction", "index", l.Index, "err", err)
		if e.ours(origin) {
			e.fail(origin, fmt.Errorf("ensemble: decode transaction at index %d: %w", l.Index, err))
		}
		return
	}
	// Raft indexes are strictly increasing and identical on every member:
	// they are the zxids.
	t.Zxid = int64(l.Index)
	t.Origin = origin
	res := e.db.Apply(&t)
	if e.ours(origin) {
		e.complete(origin, res)
	}
}

// Snapshot implements raft.FSM. Raft calls it between applies, so the tree
// cannot change while it is serialised; the bytes are written out later by
// Persist, off the apply path.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	var buf bytes.Buffer
	if err := f.e.db.WriteSnapshot(&buf); err != nil {
		return nil, fmt.Errorf("ensemble: serialise snapshot: %w", err)
	}
	return &snapshot{data: buf.Bytes()}, nil
}

// Restore implements raft.FSM: on start from the newest local snapshot, and
// when the leader sends one because this member fell too far behind.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	if err := f.e.db.ReadSnapshot(bufio.NewReaderSize(rc, 256<<10)); err != nil {
		return fmt.Errorf("ensemble: restore snapshot: %w", err)
	}
	// Entries up to the snapshot will never be applied here one by one,
	// so their proposals would wait forever.
	f.e.failAll(ErrSnapshotInstalled)
	f.e.lg.Info("state restored from snapshot", "zxid", fmt.Sprintf("0x%x", f.e.db.LastZxid()))
	return nil
}

type snapshot struct{ data []byte }

// Persist implements raft.FSMSnapshot.
func (s *snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s.data); err != nil {
		_ = sink.Cancel()
		return fmt.Errorf("ensemble: write snapshot: %w", err)
	}
	return sink.Close()
}

// Release implements raft.FSMSnapshot.
func (s *snapshot) Release() {}
