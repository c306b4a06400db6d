package replica

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/runnel-io/runnel/sdk/storage"
)

// ErrCheckpoint means a checkpoint file does not follow Kafka's format.
var ErrCheckpoint = errors.New("replica: malformed checkpoint file")

// Names of Kafka's checkpoint files.
const (
	// LeaderEpochFile lives in each partition's directory.
	LeaderEpochFile = "leader-epoch-checkpoint"
	// HighWatermarkFile lives in the data directory.
	HighWatermarkFile = "replication-offset-checkpoint"
)

// EpochEntry is one line of the leader-epoch checkpoint: the first offset
// written under a leader epoch.
type EpochEntry struct {
	Epoch       int32
	StartOffset int64
}

// ParseCheckpoint parses Kafka's checkpoint text format: a version line
// (0), a count line, then count lines of space-separated fields. It
// returns the entries' fields.
func ParseCheckpoint(data []byte, fields int) ([][]string, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	next := func() (string, bool) {
		if !sc.Scan() {
			return "", false
		}
		return strings.TrimSpace(sc.Text()), true
	}
	v, ok := next()
	if !ok || v != "0" {
		return nil, fmt.Errorf("%w: version %q", ErrCheckpoint, v)
	}
	c, ok := next()
	n, err := strconv.Atoi(c)
	if !ok || err != nil || n < 0 || n > len(data) {
		return nil, fmt.Errorf("%w: count %q", ErrCheckpoint, c)
	}
	out := make([][]string, 0, n)
	for i := 0; i < n; i++ {
		line, ok := next()
		if !ok {
			return nil, fmt.Errorf("%w: %d of %d entries", ErrCheckpoint, i, n)
		}
		f := strings.Fields(line)
		if len(f) != fields {
			return nil, fmt.Errorf("%w: line %q", ErrCheckpoint, line)
		}
		out = append(out, f)
	}
	return out, nil
}

// ParseEpochs parses a leader-epoch checkpoint.
func ParseEpochs(data []byte) ([]EpochEntry, error) {
	lines, err := ParseCheckpoint(data, 2)
	if err != nil {
		return nil, err
	}
	out := make([]EpochEntry, 0, len(lines))
	for _, f := range lines {
		e, err1 := strconv.ParseInt(f[0], 10, 32)
		o, err2 := strconv.ParseInt(f[1], 10, 64)
		if err1 != nil || err2 != nil || e < 0 || o < 0 {
			return nil, fmt.Errorf("%w: entry %q", ErrCheckpoint, strings.Join(f, " "))
		}
		out = append(out, EpochEntry{Epoch: int32(e), StartOffset: o})
	}
	return out, nil
}

// FormatEpochs renders a leader-epoch checkpoint.
func FormatEpochs(entries []EpochEntry) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(entries))
	for _, e := range entries {
		fmt.Fprintf(&b, "%d %d\n", e.Epoch, e.StartOffset)
	}
	return b.Bytes()
}

// ParseOffsets parses an offset checkpoint (replication-offset-checkpoint:
// "topic partition offset" lines).
func ParseOffsets(data []byte) (map[storage.PartitionID]int64, error) {
	lines, err := ParseCheckpoint(data, 3)
	if err != nil {
		return nil, err
	}
	out := make(map[storage.PartitionID]int64, len(lines))
	for _, f := range lines {
		p, err1 := strconv.ParseInt(f[1], 10, 32)
		o, err2 := strconv.ParseInt(f[2], 10, 64)
		if err1 != nil || err2 != nil || p < 0 {
			return nil, fmt.Errorf("%w: entry %q", ErrCheckpoint, strings.Join(f, " "))
		}
		out[storage.PartitionID{Topic: f[0], Partition: int32(p)}] = o
	}
	return out, nil
}

// FormatOffsets renders an offset checkpoint, sorted for stable files.
func FormatOffsets(offsets map[storage.PartitionID]int64) []byte {
	ids := make([]storage.PartitionID, 0, len(offsets))
	for id := range offsets {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		if ids[i].Topic != ids[j].Topic {
			return ids[i].Topic < ids[j].Topic
		}
		return ids[i].Partition < ids[j].Partition
	})
	var b bytes.Buffer
	fmt.Fprintf(&b, "0\n%d\n", len(ids))
	for _, id := range ids {
		fmt.Fprintf(&b, "%s %d %d\n", id.Topic, id.Partition, offsets[id])
	}
	return b.Bytes()
}

// writeFileAtomic writes data to a temporary file, syncs it and renames it
// over path, as Kafka writes its checkpoints, so a crash leaves either the
// old file or the new one.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return fmt.Errorf("replica: checkpoint: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("replica: checkpoint %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("replica: checkpoint %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("replica: checkpoint %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("replica: checkpoint %s: %w", path, err)
	}
	return nil
}
