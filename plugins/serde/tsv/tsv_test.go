package tsv_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/runnel-io/runnel/plugins/serde/tsv"
	"github.com/runnel-io/runnel/sdk/serde"
)

func open(t testing.TB, cfg serde.Config) serde.Serde {
	t.Helper()
	s, err := tsv.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestEscapingAndNull(t *testing.T) {
	s := open(t, serde.Config{Options: map[string]string{"columns": "a,b:int,c:bool"}})
	out, err := s.Encode(context.Background(), [][]byte{
		[]byte(`{"a":"x\ty\nz\\w","b":5,"c":true}`),
		[]byte(`{"a":"\\N"}`),
		[]byte(`{}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{`x\ty\nz\\w` + "\t5\ttrue", `\\N` + "\t\\N\t\\N", "\\N\t\\N\t\\N"}
	for i, w := range want {
		if string(out[i]) != w {
			t.Errorf("line %d = %q, want %q", i, out[i], w)
		}
	}
	back, err := s.Decode(context.Background(), out)
	if err != nil {
		t.Fatal(err)
	}
	if string(back[1]) != `{"a":"\\N","b":null,"c":null}` || string(back[2]) != `{"a":null,"b":null,"c":null}` {
		t.Errorf("decoded %s and %s", back[1], back[2])
	}
}

func TestSchemaFileAndHeader(t *testing.T) {
	cfg := serde.Config{Schema: []byte(`{"columns":[{"name":"id","type":"int"},{"name":"name"}],"header":true}`)}
	line, on, err := tsv.HeaderLine(cfg)
	if err != nil || !on || line != "id\tname" {
		t.Errorf("HeaderLine = %q, %v, %v", line, on, err)
	}
	for _, bad := range []serde.Config{
		{},
		{Options: map[string]string{"columns": "a:date"}},
		{Options: map[string]string{"columns": "a,a"}},
		{Options: map[string]string{"colums": "a"}},
		{Schema: []byte(`{"cols":[]}`)},
	} {
		if _, err := tsv.New(bad); !errors.Is(err, serde.ErrBadConfig) {
			t.Errorf("config %+v: %v, want ErrBadConfig", bad, err)
		}
	}
}

func TestDecodeErrorsNameTheColumn(t *testing.T) {
	s := open(t, serde.Config{Options: map[string]string{"columns": "id:int,score:float,ok:bool"}})
	_, err := s.Decode(context.Background(), [][]byte{[]byte("1\t2.5\ttrue"), []byte("1\tlots\ttrue"), []byte("1\t2")})
	var be *serde.BatchError
	if !errors.As(err, &be) || len(be.Records) != 2 {
		t.Fatalf("errors: %v", err)
	}
	if be.Records[0].Index != 1 || be.Records[0].Field != "score" {
		t.Errorf("first error %+v", be.Records[0])
	}
	if !strings.Contains(be.Records[1].Reason, "2 fields, want 3") {
		t.Errorf("second error %+v", be.Records[1])
	}
}

func FuzzDecode(f *testing.F) {
	s := open(f, serde.Config{Options: map[string]string{"columns": "s,i:int,f:float,b:bool,j:json"}})
	f.Add([]byte("a\t1\t1.5\ttrue\t{\"k\":1}"))
	f.Add([]byte(`\N` + "\t\\N\t\\N\t\\N\t\\N"))
	f.Add([]byte("x\\ty\t-3\t1e9\tfalse\t[]"))
	f.Add([]byte("\\"))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := s.Decode(context.Background(), [][]byte{b})
		if err != nil {
			return
		}
		if !json.Valid(out[0]) {
			t.Fatalf("decoded %q to invalid JSON %q", b, out[0])
		}
		again, err := s.Encode(context.Background(), out)
		if err != nil {
			t.Fatalf("decoded %s does not encode: %v", out[0], err)
		}
		back, err := s.Decode(context.Background(), again)
		if err != nil || string(back[0]) != string(out[0]) {
			t.Fatalf("round trip changed %s into %s (%v)", out[0], back, err)
		}
	})
}
