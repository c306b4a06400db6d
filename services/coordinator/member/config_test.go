package member

import (
	"reflect"
	"testing"
)

func TestParsePeers(t *testing.T) {
	got, err := ParsePeers("1=127.0.0.1:2888, 2=127.0.0.1:2889,3=h3:2890")
	if err != nil {
		t.Fatal(err)
	}
	want := map[int]string{1: "127.0.0.1:2888", 2: "127.0.0.1:2889", 3: "h3:2890"}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(PeerIDs(got), []int{1, 2, 3}) {
		t.Fatalf("got %v", got)
	}
	if m, err := ParsePeers(""); err != nil || len(m) != 0 {
		t.Fatalf("empty: %v %v", m, err)
	}
	for _, bad := range []string{"1", "x=h:1", "0=h:1", "255=h:1", "1=h:1,1=h:2", "1="} {
		if _, err := ParsePeers(bad); err == nil {
			t.Errorf("%q: want an error", bad)
		}
	}
}
