// Package ensembletest holds the ensemble's process-level tests: three real
// runnel-coordinator processes started with --id and --peers, one of them
// killed with SIGKILL under load.
package ensembletest
