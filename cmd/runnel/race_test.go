//go:build race

package main

// raceBuild makes TestMain build the binary with the race detector when the
// tests themselves run with -race, so `go test -race` checks runnel dev too.
const raceBuild = true
