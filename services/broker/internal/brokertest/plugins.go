package brokertest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/runnel-io/runnel/sdk/plugin"
)

// StoragePluginEnv names the storage plugin (file or memory) that every
// broker a test starts uses when its options name none, so that the whole
// compatibility suite runs against a plugin process:
//
//	RUNNEL_TEST_STORAGE_PLUGIN=file go test ./internal/compat/
const StoragePluginEnv = "RUNNEL_TEST_STORAGE_PLUGIN"

// StoragePlugin builds the storage plugin binary runnel-storage-NAME from
// the plugins module (once per test process) and returns its path.
func StoragePlugin(t testing.TB, name string) string {
	t.Helper()
	return build(t, filepath.Join(moduleDir(), "..", "..", "plugins"), "./cmd/"+plugin.BinaryName(plugin.KindStorage, name))
}

// storagePluginArgs are the broker flags for a storage plugin process.
func storagePluginArgs(t testing.TB, name string) []string {
	t.Helper()
	if name == "" {
		name = os.Getenv(StoragePluginEnv)
	}
	if name == "" {
		return nil
	}
	return []string{"--storage-plugin", StoragePlugin(t, name)}
}
