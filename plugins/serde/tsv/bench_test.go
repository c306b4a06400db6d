package tsv_test

import (
	"context"
	"testing"

	"github.com/runnel-io/runnel/sdk/serde"
)

func BenchmarkEncode(b *testing.B) {
	s := open(b, serde.Config{Options: map[string]string{"columns": "id:int,name,email,score:float,tags:json"}})
	v := []byte(`{"id":123456,"name":"user-123456","email":"user@example.com","score":1.5,"tags":["a","b","c"]}`)
	batch := make([][]byte, 256)
	for i := range batch {
		batch[i] = v
	}
	b.SetBytes(int64(len(v)) * 256)
	for range b.N {
		if _, err := s.Encode(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
}
