package config

import "errors"

// StorageBackend is the topic setting that names the storage backend of
// the topic's partitions: a backend linked into the broker (file, memory)
// or a storage plugin found by name (runnel-storage-NAME on the plugin
// path). Empty, its default, means the broker's own (--storage or
// --storage-plugin), which the broker reports as the static broker value
// of the same name. It takes effect when a partition's log is opened, so
// set it when creating the topic: a later change applies from the next
// broker start and does not move data already stored.
const StorageBackend = "runnel.storage.backend"

// backendName accepts what a plugin name may be (lower-case letters,
// digits, '-' and '_', not starting with a separator): the value becomes
// part of a file name, and a path must never come from a topic setting.
func backendName(v string) error {
	for i, c := range v {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')) {
			return errors.New("must be a backend name: lower-case letters, digits, '-' and '_'")
		}
	}
	return nil
}
