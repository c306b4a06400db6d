// Package crashtest holds the coordinator's process-level stop tests: the
// real binary is killed with SIGKILL under a write load, restarted, and
// every write it acknowledged must be there; and a graceful stop (SIGTERM)
// closes the sessions of its clients, so their ephemeral nodes go at once.
package crashtest
