// Package launch starts and stops ZooKeeper-compatible servers as operating
// system processes on 127.0.0.1, for tests and benchmarks that must talk to a
// real server over a real socket.
//
// Two kinds of server are supported, behind the same handle:
//
//   - Apache ZooKeeper from the Debian package (ZooKeeper and
//     ZooKeeperEnsemble), the reference that Runnel's coordinator is measured
//     against. It runs in the foreground through zkServer.sh so that its
//     process is ours to signal, with every four-letter word enabled, the
//     AdminServer off and extended types (TTL nodes) on.
//   - Runnel's coordinator binary (Coordinator and CoordinatorEnsemble),
//     usually produced by Build.
//
// Every server gets free loopback ports, its own directory holding its
// configuration, data and a log file with everything the process printed,
// and is reported ready only once it answers "imok" to "ruok" on its client
// port (and, for ZooKeeper, claims a mode in "srvr", which an ensemble member
// does only after it has joined a quorum). Errors about a server that failed
// to start carry the tail of its log, because that is where the reason is.
//
// A Cluster is the handle for one or more members; Member controls a single
// process: Stop (SIGTERM, then SIGKILL after a grace period), Kill (SIGKILL,
// to simulate a crash), Start and Restart (same ports, same data).
package launch
