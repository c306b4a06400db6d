package metadata

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/go-zookeeper/zk"
)

// producerIDBlockSize is how many producer ids a broker reserves at a time
// (Kafka's PidBlockSize).
const producerIDBlockSize = 1000

// blockJSON is /latest_producer_id_block.
type blockJSON struct {
	Version    int    `json:"version"`
	Broker     int32  `json:"broker"`
	BlockStart string `json:"block_start"`
	BlockEnd   string `json:"block_end"`
}

// NextProducerID returns a producer id unique in the cluster. Ids come
// from blocks reserved with a conditional update of
// /latest_producer_id_block, as Kafka's brokers reserve them.
func (s *Store) NextProducerID(ctx context.Context) (int64, error) {
	s.pidMu.Lock()
	defer s.pidMu.Unlock()
	if s.pidNext <= s.pidEnd && s.pidEnd > 0 {
		id := s.pidNext
		s.pidNext++
		return id, nil
	}
	for ctx.Err() == nil {
		p := s.p("/latest_producer_id_block")
		data, st, err := s.conn.Get(p)
		start := int64(0)
		switch {
		case errors.Is(err, zk.ErrNoNode):
			if _, err := s.conn.Create(p, nil, 0, acl); err != nil && !errors.Is(err, zk.ErrNodeExists) {
				return -1, fmt.Errorf("metadata: create %s: %w", p, err)
			}
			continue
		case err != nil:
			return -1, fmt.Errorf("metadata: read %s: %w", p, err)
		case len(data) > 0:
			var b blockJSON
			if err := json.Unmarshal(data, &b); err != nil {
				return -1, fmt.Errorf("metadata: %s: %w", p, err)
			}
			end, err := strconv.ParseInt(b.BlockEnd, 10, 64)
			if err != nil {
				return -1, fmt.Errorf("metadata: %s: block_end %q", p, b.BlockEnd)
			}
			start = end + 1
		}
		end := start + producerIDBlockSize - 1
		body, _ := json.Marshal(blockJSON{Version: 1, Broker: s.cfg.Self.ID, BlockStart: strconv.FormatInt(start, 10), BlockEnd: strconv.FormatInt(end, 10)})
		if _, err := s.conn.Set(p, body, st.Version); errors.Is(err, zk.ErrBadVersion) {
			continue
		} else if err != nil {
			return -1, fmt.Errorf("metadata: reserve producer ids: %w", err)
		}
		s.pidNext, s.pidEnd = start+1, end
		return start, nil
	}
	return -1, ctx.Err()
}
