// Package crashtest holds the coordinator's process-level durability tests:
// the real binary is killed with SIGKILL under a write load, restarted, and
// every write it acknowledged must be there.
package crashtest
