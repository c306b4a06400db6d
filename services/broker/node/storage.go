package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/runnel-io/runnel/plugins/storage/file"
	"github.com/runnel-io/runnel/plugins/storage/memory"
	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
)

// builtinBackends are the storage backends linked into the broker.
var builtinBackends = map[string]func(dataDir string) storage.Backend{
	"file":   func(dir string) storage.Backend { return file.New(dir) },
	"memory": func(string) storage.Backend { return memory.New() },
}

// backendSpec says how to run one storage backend: linked in, or as a
// plugin process.
type backendSpec struct {
	name string // as topics name it in runnel.storage.backend
	path string // the plugin binary; empty for a built-in
}

func (s backendSpec) String() string {
	if s.path == "" {
		return s.name
	}
	return fmt.Sprintf("%s (plugin process %s)", s.name, s.path)
}

// storageRouter is the broker's storage.Backend. It sends each partition
// to the backend its topic names in runnel.storage.backend, or to the
// broker's default (--storage, or --storage-plugin). Backends start on
// first use, so a plugin no topic uses never runs; a plugin process serves
// every partition that uses it, and its crash fails only those.
type storageRouter struct {
	dataDir    string
	def        backendSpec
	search     plugin.Search
	cacheBytes int
	// topicBackend returns a topic's runnel.storage.backend ("" when unset
	// or the topic is unknown).
	topicBackend func(topic string) string

	mu      sync.Mutex
	running map[backendSpec]storage.Backend
	opened  map[storage.PartitionID]storage.Backend
	closed  bool
}

var _ storage.Backend = (*storageRouter)(nil)

// newStorageRouter checks the storage flags: --storage names a built-in;
// --storage-plugin, when set, a plugin binary (a path) or a plugin name
// found by discovery, which then becomes the default.
func newStorageRouter(cfg Config, topicBackend func(string) string) (*storageRouter, error) {
	r := &storageRouter{dataDir: cfg.DataDir, cacheBytes: cfg.StorageTailCache, topicBackend: topicBackend,
		running: map[backendSpec]storage.Backend{}, opened: map[storage.PartitionID]storage.Backend{}}
	if cfg.StoragePlugin != "" {
		path, name, err := storage.FindPlugin(cfg.StoragePlugin, r.search)
		if err != nil {
			return nil, fmt.Errorf("--storage-plugin: %w", err)
		}
		if name == "" {
			name = strings.TrimPrefix(filepath.Base(path), plugin.BinaryName(plugin.KindStorage, ""))
		}
		r.def = backendSpec{name: name, path: path}
		return r, nil
	}
	name := cfg.Storage
	if name == "" {
		name = "file"
	}
	if builtinBackends[name] == nil {
		return nil, fmt.Errorf("--storage %q: use file or memory (or --storage-plugin NAME|PATH for a plugin process)", cfg.Storage)
	}
	r.def = backendSpec{name: name}
	return r, nil
}

// Name is the default backend's name.
func (r *storageRouter) Name() string { return r.def.name }

// spec resolves a topic's backend name: empty or the default's name is the
// default; the other built-in names are linked in; any other name is a
// plugin found by discovery.
func (r *storageRouter) spec(name string) (backendSpec, error) {
	switch {
	case name == "" || name == r.def.name:
		return r.def, nil
	case builtinBackends[name] != nil:
		return backendSpec{name: name}, nil
	}
	path, found, err := storage.FindPlugin(name, r.search)
	if err != nil {
		return backendSpec{}, fmt.Errorf("%w: %w", storage.ErrInvalidConfig, err)
	}
	return backendSpec{name: found, path: path}, nil
}

// backend returns the running backend for s, starting it first.
func (r *storageRouter) backend(ctx context.Context, s backendSpec) (storage.Backend, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, storage.ErrClosed
	}
	if b := r.running[s]; b != nil {
		return b, nil
	}
	var b storage.Backend
	if s.path == "" {
		b = builtinBackends[s.name](r.dataDir)
	} else {
		pb, err := storage.StartProcess(ctx, storage.ProcessConfig{Path: s.path, Name: s.name, TailCacheBytes: r.cacheBytes})
		if err != nil {
			return nil, fmt.Errorf("storage backend %s: %w", s, err)
		}
		b = pb
	}
	r.running[s] = b
	return b, nil
}

func (r *storageRouter) Open(ctx context.Context, p storage.PartitionID, cfg storage.Config) (storage.Log, error) {
	s, err := r.spec(r.topicBackend(p.Topic))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	b, err := r.backend(ctx, s)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", p, err)
	}
	l, err := b.Open(ctx, p, cfg)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.opened[p] = b
	r.mu.Unlock()
	return l, nil
}

// Delete goes to the backend that opened the partition, or else to the
// one its topic names (the default once the topic is gone).
func (r *storageRouter) Delete(ctx context.Context, p storage.PartitionID) error {
	r.mu.Lock()
	b := r.opened[p]
	delete(r.opened, p)
	r.mu.Unlock()
	if b == nil {
		s, err := r.spec(r.topicBackend(p.Topic))
		if err != nil {
			s = r.def
		}
		if b, err = r.backend(ctx, s); err != nil {
			return fmt.Errorf("delete %s: %w", p, err)
		}
	}
	return b.Delete(ctx, p)
}

// Close closes every running backend (stopping plugin processes).
func (r *storageRouter) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	r.closed = true
	var errs []error
	for s, b := range r.running {
		if err := b.Close(); err != nil {
			errs = append(errs, fmt.Errorf("storage backend %s: %w", s, err))
		}
	}
	return errors.Join(errs...)
}
