package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// The Kafka connector's basic round trip through the Go driver: records produced to a
// topic come out transformed on another, stats carry kafkaPartitions with the checkpoint's
// offsets, and a missing topic is an error that says so.
func TestKafkaConnectorRoundTrip(t *testing.T) {
	t.Parallel()
	k := startKafka(t, 1, kfake.SeedTopics(3, "in", "out"), kfake.SeedTopics(33, "wide"))
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

	// The offsets reach the consumer group (asp-<processorId>-consumer), as Kafka tooling reads
	// them, so the group's lag is 0; stats and /metrics say the same.
	var info struct {
		Result struct{ ID string } `bson:"result"`
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessor", Value: "rt"}}).Decode(&info); err != nil || info.Result.ID == "" {
		t.Fatalf("getStreamProcessor: %v %+v", err, info)
	}
	group := "asp-" + info.Result.ID + "-consumer"
	cl := &kafka.Client{Addr: kafka.TCP(k.Brokers)}
	waitUntil(t, "the group's committed offsets", func() bool {
		resp, err := cl.OffsetFetch(t.Context(), &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{"in": {0, 1, 2}}})
		if err != nil {
			return false
		}
		var total int64
		for _, po := range resp.Topics["in"] {
			total += po.CommittedOffset
		}
		return total == 30
	})
	waitUntil(t, "consumerGroupLag 0 in stats and /metrics", func() bool {
		var st struct {
			Stats struct {
				KafkaPartitions []struct{ ConsumerGroupLag int64 }
			}
		}
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: "rt"}}).Decode(&st); err != nil {
			t.Fatal(err)
		}
		fams := scrape(t, s.AdminURL+"/metrics")
		for _, p := range st.Stats.KafkaPartitions {
			if p.ConsumerGroupLag != 0 {
				return false
			}
		}
		for p := range 3 {
			l := map[string]string{"workspace": "default", "processor": "rt", "topic": "in", "partition": fmt.Sprint(p)}
			lag, ok1 := metricValue(fams, "spi_processor_kafka_consumer_group_lag", l)
			ckp, ok2 := metricValue(fams, "spi_processor_kafka_checkpoint_offset", l)
			_, ok3 := metricValue(fams, "spi_processor_kafka_partition_watermark_lag_seconds", l)
			if !ok1 || !ok2 || !ok3 || lag != 0 || ckp != float64(parts[p].CheckpointOffset) {
				return false
			}
		}
		return len(st.Stats.KafkaPartitions) == 3
	})

	// The Admin API's processor carries the same partitions.
	got := a.ok("GET", "/streams/default/processor/rt", nil)
	if kp, _ := got["stats"].(map[string]any)["kafkaPartitions"].([]any); len(kp) != 3 || kp[0].(map[string]any)["topic"] != "in" {
		t.Errorf("Admin API stats.kafkaPartitions: %v", got["stats"])
	}

	// A connection that a running processor uses cannot be changed or deleted (Atlas refuses
	// it too): 409 naming the processor.
	for _, method := range []string{"PATCH", "DELETE"} {
		status, body := a.call(method, "/streams/default/connections/k", map[string]any{"bootstrapServers": "127.0.0.1:1"})
		if status != 409 || !strings.Contains(string(body), "running processors rt use it") {
			t.Errorf("%s of a connection in use: %d %s", method, status, body)
		}
	}

	// After stop(), stats show the final checkpoint's offsets (a new user saw -1 there).
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "rt"}})
	var stopped struct {
		Stats struct {
			KafkaPartitions []struct{ CurrentOffset, CheckpointOffset int64 }
		}
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: "rt"}}).Decode(&stopped); err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, p := range stopped.Stats.KafkaPartitions {
		if p.CheckpointOffset != p.CurrentOffset {
			t.Errorf("stopped: kafkaPartitions %+v", stopped.Stats.KafkaPartitions)
		}
		total += p.CheckpointOffset
	}
	if total != 30 {
		t.Errorf("stopped: checkpointed offsets sum to %d, want 30", total)
	}

	// A missing topic: the error says so while retrying, then the processor is FAILED.
	pipe[0] = bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "nope"}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "missing"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "missing"}})
	waitUntil(t, "FAILED", func() bool {
		state, _, msg := processorState(t, c, "missing")
		return state == "FAILED" && strings.Contains(msg, `topic "nope" does not exist`)
	})
	// The listing carries the code and whether it is retryable, as getStreamProcessor does.
	var list struct {
		StreamProcessors []struct {
			Name, ErrorMsg string
			ErrorCode      int32
			ErrorRetryable bool
		}
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "listStreamProcessors", Value: 1}, {Key: "filter", Value: bson.D{{Key: "name", Value: "missing"}}}}).Decode(&list); err != nil {
		t.Fatal(err)
	}
	if len(list.StreamProcessors) != 1 || list.StreamProcessors[0].ErrorCode != 419 || !list.StreamProcessors[0].ErrorRetryable {
		t.Errorf("listStreamProcessors: %+v", list.StreamProcessors)
	}

	// A missing output topic on a broker that does not create topics (kfake by default, as
	// many managed clusters): the error names the topic while the runtime retries.
	emitMissing := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "in"},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "nope-out"}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "missingOut"}, {Key: "pipeline", Value: emitMissing}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "missingOut"}})
	waitUntil(t, "the missing output topic named", func() bool {
		_, code, msg := processorState(t, c, "missingOut")
		return code == 419 && strings.Contains(msg, `topic "nope-out" does not exist`)
	})
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "missingOut"}})

	// The tier's partition limit (spec §10): an SP2 processor reads at most 32 partitions; the
	// failure is permanent, so the processor fails at once, with code 420.
	pipe[0] = bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "wide"}}}}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "wide"}, {Key: "pipeline", Value: pipe}, {Key: "options", Value: bson.D{{Key: "tier", Value: "SP2"}}}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "wide"}})
	waitUntil(t, "FAILED on the partition limit", func() bool {
		state, code, msg := processorState(t, c, "wide")
		return state == "FAILED" && code == 420 && strings.Contains(msg, "33 partitions, more than the 32 a processor of tier SP2 may read")
	})
}

// A broker that comes back without its data (a recreated topic, a lost log): the saved offsets
// are past the end of the new log. The processor resets per auto_offset_reset and says so in the
// log, rather than waiting for the log to grow back to the old offsets and skipping what came
// before them (a new user found that). Records that reach the new log before the reader looks
// again cannot be told from the old ones by offset alone (kafka-go has no topic ids or leader
// epochs), so the test produces them once the reset is logged.
func TestKafkaOffsetsOutOfRange(t *testing.T) {
	t.Parallel()
	k := startKafka(t, 1, kfake.SeedTopics(1, "in", "out"))
	s := startSpid(t, "--checkpoint-interval", "300ms")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("k", k))
	c := connectGo(t, s.Admin(t, "", ""))
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "in"},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "out"}}}},
	}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "oor"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "oor"}})
	var five []kafkaMsg
	for i := range 5 {
		five = append(five, kafkaMsg{Value: []byte(fmt.Sprintf(`{"before": %d}`, i))})
	}
	produce(t, k, "in", five, nil, nil)
	checkpointed := func(want int64) func() bool {
		return func() bool {
			var st struct {
				Stats struct {
					KafkaPartitions []struct{ CheckpointOffset int64 }
				}
			}
			if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: "oor"}}).Decode(&st); err != nil {
				t.Fatal(err)
			}
			return len(st.Stats.KafkaPartitions) == 1 && st.Stats.KafkaPartitions[0].CheckpointOffset == want
		}
	}
	waitUntil(t, "checkpoint at offset 5", checkpointed(5))
	k.restart(t, 200*time.Millisecond) // no data directory: the broker comes back empty
	// The reader meets an offset past the end of the new log: the attempt ends, and the
	// next one resets to the log's start (auto_offset_reset earliest), and logs it.
	waitUntil(t, "the reset in the log", func() bool {
		return strings.Contains(s.Stderr.String(), "the saved offset of a Kafka partition is out of range")
	})
	var six []kafkaMsg
	for i := range 6 {
		six = append(six, kafkaMsg{Value: []byte(fmt.Sprintf(`{"after": %d}`, i))})
	}
	produce(t, k, "in", six, nil, nil)
	// The processor notices within its retry backoff; then all six come out.
	seen := map[string]bool{}
	waitUntil(t, "the six records produced after the broker lost its log", func() bool {
		for _, m := range kcatAll(t, k, "out") {
			var d map[string]any
			if err := json.Unmarshal(m.Value, &d); err != nil {
				t.Fatal(err)
			}
			if v, ok := d["after"]; ok {
				seen[fmt.Sprint(v)] = true
			}
		}
		return len(seen) == 6
	})
}
