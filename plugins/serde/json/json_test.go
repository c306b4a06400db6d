package json_test

import (
	"context"
	stdjson "encoding/json"
	"errors"
	"testing"

	"github.com/runnel-io/runnel/plugins/serde/json"
	"github.com/runnel-io/runnel/sdk/serde"
)

func TestNormalises(t *testing.T) {
	s, _ := json.New(serde.Config{})
	out, err := s.Encode(context.Background(), [][]byte{[]byte(" { \"b\" : 1.50 ,\n \"a\":[ 1 , \"\\u00e9\" ] } ")})
	if err != nil {
		t.Fatal(err)
	}
	// Whitespace goes, member order and number spelling stay.
	if string(out[0]) != `{"b":1.50,"a":[1,"\u00e9"]}` {
		t.Errorf("normalised to %s", out[0])
	}
	sorted, _ := json.New(serde.Config{Options: map[string]string{"sort_keys": "true"}})
	out, err = sorted.Encode(context.Background(), [][]byte{[]byte(`{"b":1.50,"a":{"d":1,"c":2}}`)})
	if err != nil || string(out[0]) != `{"a":{"c":2,"d":1},"b":1.50}` {
		t.Errorf("sort_keys: %s, %v", out[0], err)
	}
}

func TestTopAndOptions(t *testing.T) {
	s, err := json.New(serde.Config{Options: map[string]string{"top": "object"}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Encode(context.Background(), [][]byte{[]byte(`{}`), []byte(`[1]`)})
	var be *serde.BatchError
	if !errors.As(err, &be) || len(be.Records) != 1 || be.Records[0].Index != 1 {
		t.Errorf("top=object: %v", err)
	}
	if _, err := json.New(serde.Config{Options: map[string]string{"top": "string"}}); !errors.Is(err, serde.ErrBadConfig) {
		t.Errorf("bad top: %v", err)
	}
	_, err = s.Encode(context.Background(), [][]byte{{'"', 0xff, '"'}})
	if !errors.As(err, &be) || be.Records[0].Reason != "not valid UTF-8" {
		t.Errorf("invalid UTF-8: %v", err)
	}
}

func FuzzNormalise(f *testing.F) {
	s, _ := json.New(serde.Config{Options: map[string]string{"sort_keys": "true"}})
	for _, seed := range []string{`{"a":[1,{"b":null}]}`, `[1,2`, `{"a":1,}`, `"\ud800"`, `1e999`, ` `} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := s.Decode(context.Background(), [][]byte{b})
		if err != nil {
			var be *serde.BatchError
			if !errors.As(err, &be) {
				t.Fatalf("a bad value failed the whole batch: %v", err)
			}
			return
		}
		if !stdjson.Valid(out[0]) {
			t.Fatalf("normalised %q to invalid JSON %q", b, out[0])
		}
		again, err := s.Decode(context.Background(), out)
		if err != nil || string(again[0]) != string(out[0]) {
			t.Fatalf("normalising is not idempotent: %s then %s", out[0], again[0])
		}
	})
}
