package config

import (
	"errors"
	"testing"
)

func TestStorageBackendSetting(t *testing.T) {
	for _, ok := range []string{"", "file", "memory", "tiered-s3", "x_2"} {
		if err := CheckTopic(map[string]string{StorageBackend: ok}); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"../x", "/usr/bin/evil", "File", "-x", "a b", "a/b"} {
		if err := CheckTopic(map[string]string{StorageBackend: bad}); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q accepted (%v): a topic setting must never name a path", bad, err)
		}
	}
	b, err := NewBroker(nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Set(StorageBackend, "file")
	for _, e := range b.DescribeTopic(map[string]string{StorageBackend: "memory"}) {
		if e.Name == StorageBackend {
			if *e.Value != "memory" || e.Source != SourceDynamicTopic || *e.Synonyms[1].Value != "file" || e.Synonyms[1].Source != SourceStaticBroker {
				t.Fatalf("described as %+v", e)
			}
			return
		}
	}
	t.Fatalf("%s is not described", StorageBackend)
}
