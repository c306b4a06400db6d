// Package plugin is the plumbing every kind of Runnel plugin shares: the
// go-plugin handshake, the naming and discovery of plugin binaries, the
// `describe` subcommand, and a supervisor that restarts a crashed plugin
// process with backoff.
//
// A contract package (sdk/serde, sdk/storage) builds on it: it declares its
// Kind, its protocol versions and its go-plugin plugin set, and calls
// ClientConfig and ServeConfig here so that every kind of plugin speaks the
// same handshake, negotiates versions the same way and carries trace
// context across its gRPC calls.
//
// # Naming and discovery
//
// A plugin of kind K named N is an executable called runnel-K-N (for
// example runnel-serde-json). Discover looks for them, in this order:
//
//  1. the folders listed in RUNNEL_PLUGIN_PATH (separated like PATH);
//  2. a folder named plugins beside the running binary (bin/plugins for
//     bin/runnel);
//  3. the built-ins the host was compiled with.
//
// The first one found under a name wins; later ones with the same name are
// reported as shadowed, so `runnel plugins list` can show why a plugin is
// not the one used.
//
// # describe
//
// Every plugin binary answers `runnel-K-N describe` by printing its
// Description as JSON on stdout and exiting 0, without starting the
// go-plugin server (as Packer's plugins do). That is how hosts list plugins
// cheaply. Preamble implements it for plugin authors.
//
// # Crashes
//
// A Process runs one plugin binary. When the process dies, the call in
// flight fails with an error matching ErrCrashed that names the plugin and
// how it ended; it never hangs, since the gRPC connection closes with the
// process. The next call starts the binary again after a backoff that
// doubles with each consecutive crash (up to a ceiling) and resets after a
// call succeeds.
package plugin
