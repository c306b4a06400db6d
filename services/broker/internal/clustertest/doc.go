// Package clustertest holds the tests of a replicated cluster: three
// runnel-broker processes against Runnel's coordinator and against Apache
// ZooKeeper 3.8, driven by real clients (franz-go, kcat), through broker
// crashes (kill -9), controlled shutdowns, paused followers, reassignments
// and network partitions made with network namespaces. Each test runs once
// per coordinator kind.
package clustertest
