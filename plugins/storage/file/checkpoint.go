package file

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/runnel-io/runnel/sdk/storage"
)

// Checkpoint files hold one offset for the partition in Kafka's offset
// checkpoint text format (the format of Kafka's log-start-offset-checkpoint
// and recovery-point-offset-checkpoint, which Kafka keeps once per log
// directory; Runnel keeps them per partition directory so that each
// partition, and each plugin process, stands alone):
//
//	0                      format version
//	1                      number of entries
//	<topic> <partition> <offset>
const (
	startCheckpoint    = "log-start-offset-checkpoint"
	recoveryCheckpoint = "recovery-point-offset-checkpoint"
	cleanShutdownFile  = ".kafka_cleanshutdown"
	tmpSuffix          = ".tmp"
)

func encodeCheckpoint(p storage.PartitionID, offset int64) []byte {
	return fmt.Appendf(nil, "0\n1\n%s %d %d\n", p.Topic, p.Partition, offset)
}

// decodeCheckpoint parses a checkpoint file for partition p.
func decodeCheckpoint(b []byte, p storage.PartitionID) (int64, error) {
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	if len(lines) != 3 || lines[0] != "0" || lines[1] != "1" {
		return 0, fmt.Errorf("%w: checkpoint header", storage.ErrCorrupt)
	}
	f := strings.Split(lines[2], " ")
	if len(f) != 3 || f[0] != p.Topic || f[1] != strconv.Itoa(int(p.Partition)) {
		return 0, fmt.Errorf("%w: checkpoint entry %q", storage.ErrCorrupt, lines[2])
	}
	off, err := strconv.ParseInt(f[2], 10, 64)
	if err != nil || off < 0 {
		return 0, fmt.Errorf("%w: checkpoint offset %q", storage.ErrCorrupt, f[2])
	}
	return off, nil
}

// readCheckpoint returns the offset in dir/name, or found=false when the
// file does not exist.
func readCheckpoint(dir, name string, p storage.PartitionID) (offset int64, found bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if os.IsNotExist(err) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("file: read %s: %w", name, err)
	}
	off, err := decodeCheckpoint(b, p)
	if err != nil {
		return 0, false, fmt.Errorf("file: %s/%s: %w", dir, name, err)
	}
	return off, true, nil
}

// writeCheckpoint replaces dir/name atomically and durably: write a
// temporary file, fsync it, rename it over the old one, fsync the directory.
func writeCheckpoint(dir, name string, p storage.PartitionID, offset int64) error {
	path := filepath.Join(dir, name)
	if err := writeFileSync(path+tmpSuffix, encodeCheckpoint(p, offset)); err != nil {
		return err
	}
	if err := os.Rename(path+tmpSuffix, path); err != nil {
		return fmt.Errorf("file: install %s: %w", name, err)
	}
	return syncDir(dir)
}

func writeFileSync(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("file: create %s: %w", path, err)
	}
	if _, err := f.Write(b); err != nil {
		_ = f.Close()
		return fmt.Errorf("file: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		_ = f.Close()
		return fmt.Errorf("file: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("file: close %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("file: open dir %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("file: sync dir %s: %w", dir, err)
	}
	return nil
}
