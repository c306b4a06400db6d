package metadata

import (
	"reflect"
	"testing"
)

func TestParseConnect(t *testing.T) {
	cases := []struct {
		in      string
		servers []string
		chroot  string
	}{
		{"127.0.0.1:2181", []string{"127.0.0.1:2181"}, ""},
		{"a:1,b:2/kafka", []string{"a:1", "b:2"}, "/kafka"},
		{"zk1,zk2:2182/kafka/prod/", []string{"zk1:2181", "zk2:2182"}, "/kafka/prod"},
	}
	for _, c := range cases {
		s, r, err := ParseConnect(c.in)
		if err != nil || !reflect.DeepEqual(s, c.servers) || r != c.chroot {
			t.Errorf("%q: %v %q %v", c.in, s, r, err)
		}
	}
	for _, bad := range []string{"", "/kafka", "a:1/k//x"} {
		if _, _, err := ParseConnect(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
