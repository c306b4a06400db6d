package node

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-io/runnel/sdk/plugin"
	"github.com/runnel-io/runnel/sdk/storage"
	"github.com/runnel-io/runnel/sdk/storage/conformance"
)

// fakePlugin puts an executable runnel-storage-NAME in dir (never run here).
func fakePlugin(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, plugin.BinaryName(plugin.KindStorage, name))
	if err := os.WriteFile(p, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestStorageFlags(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(plugin.PathEnv, dir)
	tiered := fakePlugin(t, dir, "tiered")
	none := func(string) string { return "" }

	if _, err := newStorageRouter(Config{Storage: "tape"}, none); err == nil {
		t.Fatal("--storage tape accepted")
	}
	if _, err := newStorageRouter(Config{StoragePlugin: "nosuch"}, none); !errors.Is(err, plugin.ErrNotFound) {
		t.Fatalf("--storage-plugin nosuch: %v", err)
	}
	if _, err := newStorageRouter(Config{StoragePlugin: filepath.Join(dir, "missing")}, none); err == nil {
		t.Fatal("--storage-plugin with a missing path accepted")
	}
	r, err := newStorageRouter(Config{Storage: "memory"}, none)
	if err != nil || r.Name() != "memory" || r.def.path != "" {
		t.Fatalf("--storage memory: %v %+v", err, r)
	}
	r, err = newStorageRouter(Config{Storage: "memory", StoragePlugin: "tiered"}, none)
	if err != nil || r.Name() != "tiered" || r.def.path != tiered {
		t.Fatalf("--storage-plugin tiered (found by name) must win over --storage: %v %+v", err, r)
	}
	r, err = newStorageRouter(Config{StoragePlugin: tiered}, none)
	if err != nil || r.Name() != "tiered" || r.def.path != tiered {
		t.Fatalf("--storage-plugin PATH: %v %+v", err, r)
	}
}

// TestTopicBackends checks how a topic's runnel.storage.backend resolves:
// the default, a built-in linked in, a plugin found by name, or an error.
func TestTopicBackends(t *testing.T) {
	dir := t.TempDir()
	t.Setenv(plugin.PathEnv, dir)
	fileBin := fakePlugin(t, dir, "file")
	tiered := fakePlugin(t, dir, "tiered")
	r, err := newStorageRouter(Config{StoragePlugin: "file"}, func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		topic, path string
	}{
		{"", fileBin},      // the default: the file plugin process
		{"file", fileBin},  // the default's own name
		{"memory", ""},     // a built-in, linked in
		{"tiered", tiered}, // another plugin, by name
	} {
		s, err := r.spec(c.topic)
		if err != nil || s.path != c.path {
			t.Errorf("topic backend %q: %+v %v, want path %q", c.topic, s, err, c.path)
		}
	}
	if _, err := r.spec("nosuch"); !errors.Is(err, storage.ErrInvalidConfig) {
		t.Errorf("an unknown backend name: %v", err)
	}
}

// TestRouterOpensPerTopic opens partitions of two topics on two linked-in
// backends and checks that each partition's data and deletion go to its
// own.
func TestRouterOpensPerTopic(t *testing.T) {
	ctx := context.Background()
	dataDir := t.TempDir()
	backendOf := map[string]string{"on-memory": "memory"}
	r, err := newStorageRouter(Config{DataDir: dataDir}, func(topic string) string { return backendOf[topic] })
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, topic := range []string{"on-file", "on-memory"} {
		p := storage.PartitionID{Topic: topic, Partition: 0}
		l, err := r.Open(ctx, p, storage.Config{Dir: dataDir})
		if err != nil {
			t.Fatal(err)
		}
		_, statErr := os.Stat(filepath.Join(dataDir, p.String()))
		if onDisk := statErr == nil; onDisk != (topic == "on-file") {
			t.Errorf("%s: partition directory on disk = %v", topic, onDisk)
		}
		if _, err := l.Append(ctx, conformance.Batch(0, 1, []byte("x"))); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		// The topic is gone from the metadata by the time it is deleted:
		// the deletion still reaches the backend that opened it.
		delete(backendOf, topic)
		if err := r.Delete(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if len(r.running) != 2 {
		t.Fatalf("running backends: %v", r.running)
	}
	// The memory backend's data went: a new log of the partition is empty.
	l, err := r.running[backendSpec{name: "memory"}].Open(ctx, storage.PartitionID{Topic: "on-memory", Partition: 0}, storage.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != 0 {
		t.Fatalf("the memory partition after Delete ends at %d", l.EndOffset())
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Open(ctx, storage.PartitionID{Topic: "late", Partition: 0}, storage.Config{Dir: dataDir}); !errors.Is(err, storage.ErrClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
}
