package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The Kafka connector's basic round trip through the Go driver: records produced to a
// topic come out transformed on another, stats carry kafkaPartitions with the checkpoint's
// offsets, and a missing topic is an error that says so.
func TestKafkaConnectorRoundTrip(t *testing.T) {
	t.Parallel()
	k := startKafka(t, 1, kfake.SeedTopics(3, "in", "out"))
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("k", k))
	var in []kafkaMsg
	for i := range 30 {
		in = append(in, kafkaMsg{Key: []byte(fmt.Sprint("key", i)), Value: []byte(fmt.Sprintf(`{"n": %d, "odd": %v}`, i, i%2 == 1))})
	}
	produce(t, k, "in", in, nil, nil)
	c := connectGo(t, s.Admin(t, "", ""))
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "in"},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$match", Value: bson.D{{Key: "odd", Value: false}}}},
		bson.D{{Key: "$addFields", Value: bson.D{{Key: "twice", Value: bson.D{{Key: "$multiply", Value: bson.A{"$n", 2}}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "out"}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "rt"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "rt"}})
	out := readTopic(t, k, "out", 15, time.Minute, nil, nil)
	seen := map[int]bool{}
	for _, m := range out {
		var d struct {
			N, Twice int
			Meta     struct {
				Source struct {
					Type, Topic string
					Partition   int
					Offset      int64
				}
			} `json:"_stream_meta"`
		}
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("output %q: %v", m.Value, err)
		}
		if d.N%2 != 0 || d.Twice != 2*d.N || d.Meta.Source.Type != "kafka" || d.Meta.Source.Topic != "in" {
			t.Errorf("output %s", m.Value)
		}
		seen[d.N] = true
	}
	if len(seen) != 15 {
		t.Errorf("saw %d distinct outputs, want 15", len(seen))
	}
	// Stats: every partition's checkpoint offset reaches its current offset.
	var parts []struct {
		Topic                           string
		Partition                       int32
		CurrentOffset, CheckpointOffset int64
		IsIdle                          bool
	}
	waitUntil(t, "checkpointed offsets", func() bool {
		var st struct {
			Stats struct {
				KafkaPartitions []struct {
					Topic                           string
					Partition                       int32
					CurrentOffset, CheckpointOffset int64
					IsIdle                          bool
				}
			}
		}
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: "rt"}}).Decode(&st); err != nil {
			t.Fatal(err)
		}
		parts = st.Stats.KafkaPartitions
		if len(parts) != 3 {
			return false
		}
		var total int64
		for _, p := range parts {
			if p.CheckpointOffset != p.CurrentOffset {
				return false
			}
			total += p.CurrentOffset
		}
		return total == 30
	})
	t.Logf("kafkaPartitions %v", parts)

	// A missing topic: the error says so while retrying, then the processor is FAILED.
	pipe[0] = bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "nope"}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "missing"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "missing"}})
	waitUntil(t, "FAILED", func() bool {
		state, _, msg := processorState(t, c, "missing")
		return state == "FAILED" && strings.Contains(msg, `topic "nope" does not exist`)
	})
}
