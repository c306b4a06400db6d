// Package zktest holds test helpers for code that talks to a
// ZooKeeper-compatible server: it starts Apache ZooKeeper or Runnel's
// coordinator through package launch (data in t.TempDir(), stopped by
// t.Cleanup, logs printed when the test fails), connects go-zookeeper
// clients, records the notifications each session receives in order, and
// offers RawConn, a minimal client over package jute for the requests
// go-zookeeper cannot send (addWatch, multiRead, getEphemerals,
// getAllChildrenNumber, whoAmI, removeWatches, invalid paths).
//
// A test that needs ZooKeeper skips when it is not installed, except under
// CI=true, where it fails: a skipped compatibility test proves nothing.
package zktest
