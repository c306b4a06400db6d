package controller

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"

	"github.com/runnel-io/runnel/services/broker/metadata"
)

// ErrReplicationFactor means a replication factor cannot be placed on the
// live brokers (INVALID_REPLICATION_FACTOR, 38).
var ErrReplicationFactor = errors.New("controller: replication factor larger than the number of live brokers")

// Assign places the replicas of partitions first to first+count-1 on
// brokers, as Kafka's replica assignment does:
//
//   - the first replicas go round-robin over the brokers from a random
//     start, so leaders are spread evenly;
//   - the other replicas of a partition follow its first at a distance
//     that grows by one after each full round, so that the followers of
//     one broker's partitions are spread too;
//   - when brokers have racks (--rack), the brokers are ordered so that
//     racks alternate, and a partition takes a broker of a rack it has no
//     replica on yet while there is one, so a partition survives the loss
//     of a whole rack. Brokers without a rack count as one more rack.
//
// rnd may be nil (a random source is used).
func Assign(brokers []metadata.Broker, first, count int32, rf int16, rnd *rand.Rand) ([][]int32, error) {
	n := len(brokers)
	if rf < 1 || int(rf) > n {
		return nil, fmt.Errorf("%w: replication factor %d with %d live brokers", ErrReplicationFactor, rf, n)
	}
	if rnd == nil {
		rnd = rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	}
	order, racks := rackOrder(brokers)
	start := rnd.IntN(n)
	shift := rnd.IntN(n)
	out := make([][]int32, count)
	for i := range out {
		pi := int(first) + i
		if pi > 0 && pi%n == 0 {
			shift++
		}
		lead := (start + pi) % n
		replicas := []int32{order[lead].ID}
		usedRacks := map[string]bool{rackOf(order[lead]): true}
		for j := 1; j < int(rf); j++ {
			pick := -1
			fallback := -1
			// Walk the brokers after the first at a growing distance:
			// the first that is free (and of a new rack, while one is
			// left) takes the replica.
			for k := 0; k < n-1; k++ {
				idx := (lead + 1 + (shift+j-1+k)%(n-1)) % n
				b := order[idx]
				if slices.Contains(replicas, b.ID) {
					continue
				}
				if fallback < 0 {
					fallback = idx
				}
				if len(usedRacks) >= racks || !usedRacks[rackOf(b)] {
					pick = idx
					break
				}
			}
			if pick < 0 {
				pick = fallback
			}
			replicas = append(replicas, order[pick].ID)
			usedRacks[rackOf(order[pick])] = true
		}
		out[i] = replicas
	}
	return out, nil
}

func rackOf(b metadata.Broker) string {
	if b.Rack == nil {
		return ""
	}
	return *b.Rack
}

// rackOrder sorts brokers by id and, when any has a rack, interleaves the
// racks (rack a's first broker, rack b's first, ..., rack a's second, ...).
// It returns the order and the number of racks.
func rackOrder(brokers []metadata.Broker) ([]metadata.Broker, int) {
	sorted := slices.Clone(brokers)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ID < sorted[j].ID })
	byRack := map[string][]metadata.Broker{}
	var names []string
	for _, b := range sorted {
		r := rackOf(b)
		if _, ok := byRack[r]; !ok {
			names = append(names, r)
		}
		byRack[r] = append(byRack[r], b)
	}
	if len(names) <= 1 {
		return sorted, 1
	}
	sort.Strings(names)
	out := make([]metadata.Broker, 0, len(sorted))
	for i := 0; len(out) < len(sorted); i++ {
		for _, r := range names {
			if i < len(byRack[r]) {
				out = append(out, byRack[r][i])
			}
		}
	}
	return out, len(names)
}
