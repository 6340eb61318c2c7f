package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"

	"github.com/spi-streams/spi/pipeline"
)

// Helpers for the Kafka tests of issue 10 that pin records to partitions, read stats'
// kafkaPartitions and compute what the engine alone makes of a topic.

// producePinned writes msgs with kafka-go (acks=all), each to its own m.Partition, and returns
// once the broker has them all.
func producePinned(t *testing.T, k *kafkaCluster, topic string, msgs []kafkaMsg) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Topic: topic,
		Balancer:     kafka.BalancerFunc(func(m kafka.Message, _ ...int) int { return m.Partition }),
		BatchTimeout: 2 * time.Millisecond, BatchSize: 1000, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	out := make([]kafka.Message, len(msgs))
	for i, m := range msgs {
		out[i] = kafka.Message{Partition: m.Partition, Key: m.Key, Value: m.Value, Time: m.Time}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	if err := w.WriteMessages(ctx, out...); err != nil {
		t.Fatalf("producing to %s: %v", topic, err)
	}
}

// topicEnds is the end offset (the next offset to be written) of each partition of topic.
func topicEnds(t *testing.T, k *kafkaCluster, topic string) map[int]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	// A transport of its own: kafka-go's default one pools connections, which a restarted
	// broker has closed.
	tr := &kafka.Transport{}
	defer tr.CloseIdleConnections()
	cl := &kafka.Client{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Transport: tr}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil || len(md.Topics) != 1 || md.Topics[0].Error != nil {
		t.Fatalf("metadata of %s: %v %+v", topic, err, md)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		t.Fatalf("end offsets of %s: %v", topic, err)
	}
	ends := map[int]int64{}
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			t.Fatalf("end offset of %s/%d: %v", topic, p.Partition, p.Error)
		}
		ends[p.Partition] = p.LastOffset
	}
	return ends
}

// readToEnd reads every record of topic up to the end offsets the broker gives when it is
// called, partition by partition, in offset order.
func readToEnd(t *testing.T, k *kafkaCluster, topic string) []kafkaMsg {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	var msgs []kafkaMsg
	for p, end := range topicEnds(t, k, topic) {
		if end == 0 {
			continue
		}
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(k.Brokers, ","), Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond})
		for {
			m, err := r.ReadMessage(ctx)
			if err != nil {
				_ = r.Close()
				t.Fatalf("reading %s/%d up to offset %d: %v", topic, p, end, err)
			}
			msgs = append(msgs, kafkaMsg{Topic: m.Topic, Partition: m.Partition, Offset: m.Offset, Key: m.Key, Value: m.Value, Time: m.Time})
			if m.Offset+1 >= end {
				break
			}
		}
		_ = r.Close()
	}
	slices.SortStableFunc(msgs, func(a, b kafkaMsg) int { return a.Partition - b.Partition })
	return msgs
}

// kafkaPartitionStat is one entry of stats.kafkaPartitions.
type kafkaPartitionStat struct {
	Topic                           string
	Partition                       int
	CurrentOffset, CheckpointOffset int64
	HasCheckpoint                   bool
	IsIdle                          bool
}

// kafkaPartitionsOf reads getStreamProcessorStats' kafkaPartitions (in stats, or at the top
// level) of processor name.
func kafkaPartitionsOf(t *testing.T, c *mongo.Client, name string) []kafkaPartitionStat {
	t.Helper()
	var reply struct {
		Top   []bson.M `bson:"kafkaPartitions"`
		Stats struct {
			Parts []bson.M `bson:"kafkaPartitions"`
		} `bson:"stats"`
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&reply); err != nil {
		t.Fatalf("getStreamProcessorStats %s: %v", name, err)
	}
	parts := reply.Stats.Parts
	if parts == nil {
		parts = reply.Top
	}
	var out []kafkaPartitionStat
	for _, m := range parts {
		s := kafkaPartitionStat{}
		s.Topic, _ = m["topic"].(string)
		p, _ := asInt64(m["partition"])
		s.Partition = int(p)
		s.CurrentOffset, _ = asInt64(m["currentOffset"])
		s.CheckpointOffset, s.HasCheckpoint = asInt64(m["checkpointOffset"])
		s.IsIdle, _ = m["isIdle"].(bool)
		out = append(out, s)
	}
	return out
}

// asInt64 reads a BSON number as an int64.
func asInt64(v any) (int64, bool) {
	switch n := v.(type) {
	case int32:
		return int64(n), true
	case int64:
		return n, true
	case float64:
		return int64(n), true
	}
	return 0, false
}

// kafkaProcessor creates a Kafka connection named conn to k on s (Admin API), then the
// processor name with pipeline (Go driver), and starts it.
func kafkaProcessor(t *testing.T, s *spid, k *kafkaCluster, conn, name string, pipe bson.A) *mongo.Client {
	t.Helper()
	a := newAPI(t, s.Creds(t))
	if status, _ := a.call("GET", "/streams/default/connections/"+conn, nil); status != 200 {
		a.ok("POST", "/streams/default/connections", kafkaConnection(conn, k))
	}
	c := connectGo(t, s.Admin(t, "", ""))
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
	return c
}

// engineRun is what the pipeline engine alone outputs for records, each pushed as the
// connector does (one input per record, with the record's partition and time and the Kafka
// source metadata); after the pushes, the partitions in idle are declared idle. pipe is the
// processor's own pipeline. The records go in the order given: a test whose partitions each
// rise in event time gives them merged by time, since the engine counts a partition in the
// watermark only from its first document on.
func engineRun(t *testing.T, pipe bson.A, records []kafkaMsg, idle []int) []bson.Raw {
	t.Helper()
	_, raw, err := bson.MarshalValue(pipe)
	if err != nil {
		t.Fatal(err)
	}
	plan, err := pipeline.Parse(raw, pipeline.ParseOptions{RequireSink: true})
	if err != nil {
		t.Fatalf("the engine refuses the processor's pipeline: %v", err)
	}
	eng := pipeline.NewEngine(plan, pipeline.Options{ProcessorName: "reference"})
	var out []bson.Raw
	keep := func(r pipeline.Result) {
		for _, d := range r.DLQ {
			t.Errorf("the engine dead-lettered input: %s", d)
		}
		for _, d := range r.Out {
			out = append(out, slices.Clone(d))
		}
	}
	for _, m := range records {
		var doc bson.Raw
		if err := bson.UnmarshalExtJSON(m.Value, false, &doc); err != nil {
			t.Fatalf("record %s/%d@%d is not JSON: %v", m.Topic, m.Partition, m.Offset, err)
		}
		meta, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "kafka"},
			{Key: "topic", Value: m.Topic}, {Key: "partition", Value: int32(m.Partition)}, {Key: "offset", Value: m.Offset},
			{Key: "ts", Value: bson.DateTime(m.Time.UnixMilli())}}}})
		keep(eng.Push([]pipeline.Input{{Doc: doc, Meta: meta, Time: m.Time.UnixMilli(), Partition: int32(m.Partition)}}))
	}
	for _, p := range idle {
		keep(eng.Idle(int32(p)))
	}
	return out
}

// canonicalOf parses a canonical Extended JSON document into plain Go values, with every
// double as a float64 in a map of its own ({"$numberDouble": f}) so that how a writer spells
// a double does not matter, only its value and type.
func canonicalOf(t *testing.T, doc []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, doc)
	}
	var walk func(any) any
	walk = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			if s, ok := x["$numberDouble"].(string); ok && len(x) == 1 {
				var f float64
				if _, err := fmt.Sscan(s, &f); err != nil && s != "NaN" && s != "Infinity" && s != "-Infinity" {
					t.Fatalf("$numberDouble %q", s)
				}
				return map[string]any{"$numberDouble": f}
			}
			for k, e := range x {
				x[k] = walk(e)
			}
		case []any:
			for i, e := range x {
				x[i] = walk(e)
			}
		}
		return v
	}
	return walk(v)
}

// windowResults keys window results (canonical Extended JSON) by window start and group _id.
func windowResults(t *testing.T, docs [][]byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, d := range docs {
		v := canonicalOf(t, d)
		m, _ := v.(map[string]any)
		meta, _ := m["_stream_meta"].(map[string]any)
		win, _ := meta["window"].(map[string]any)
		id, _ := json.Marshal(m["_id"])
		start, _ := json.Marshal(win["start"])
		key := string(start) + " " + string(id)
		if _, dup := out[key]; dup {
			t.Errorf("window result %s appears twice", key)
		}
		out[key] = v
	}
	return out
}

// engineWindowResults is windowResults of the engine's outputs.
func engineWindowResults(t *testing.T, outs []bson.Raw) map[string]any {
	t.Helper()
	var docs [][]byte
	for _, o := range outs {
		j, err := bson.MarshalExtJSON(o, true, false)
		if err != nil {
			t.Fatal(err)
		}
		docs = append(docs, j)
	}
	return windowResults(t, docs)
}

// compareWindows reports every difference between got (the processor's) and want (the
// engine's) window results.
func compareWindows(t *testing.T, what string, got, want map[string]any) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		switch {
		case !ok:
			t.Errorf("%s: window result %s is missing; the engine outputs %v", what, k, w)
		case !reflect.DeepEqual(g, w):
			t.Errorf("%s: window result %s:\n got  %v\n want %v", what, k, g, w)
		}
	}
	for k, g := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: window result %s is not one the engine outputs: %v", what, k, g)
		}
	}
}

// values returns the values of msgs.
func values(msgs []kafkaMsg) [][]byte {
	out := make([][]byte, len(msgs))
	for i, m := range msgs {
		out[i] = m.Value
	}
	return out
}

// Windows over partitions (issue 10, acceptance 2). Two processors read the same
// four-partition topic on a three-broker cluster through a 10-second tumbling window grouped
// by sensor, one with partitionIdleTimeout and one without, and emit to topics of their own in
// canonical Extended JSON. Each partition's event times rise, so no document is late
// whichever way the partitions interleave. First every partition gets a minute of readings;
// then partition 3 falls silent while the others go on until stats show it idle, and all end on
// one last common event time.
//
// The reference is the pipeline engine alone, fed the same records (read back from the topic)
// the way the connector feeds it: without the idle timeout, partition 3 holds the watermark
// at its last event time and only the windows before it close; with it, the engine is told the
// partition is idle and every window up to the common last event time closes. The processors'
// results must equal the engine's, window by window, value by value.
func TestKafkaWindowsOverPartitions(t *testing.T) {
	t.Parallel()
	const in, silent = "readings", 3
	k := startKafka(t, 3, kfake.SeedTopics(4, in), kfake.SeedTopics(1, "win-idle", "win-stalled"))
	s := startSpid(t, "--checkpoint-interval", "1s")

	base := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	seq := 0
	reading := func(p int, at time.Duration) kafkaMsg {
		seq++
		ts := base.Add(at)
		v := fmt.Sprintf(`{"sensor": "s%d", "ts": %q, "v": %d, "x": %.2f}`, seq%3, ts.Format(time.RFC3339), seq%17, float64(seq%8)*0.25)
		return kafkaMsg{Partition: p, Value: []byte(v), Time: ts}
	}
	// A minute of readings on every partition, every partition's last one at 60 s.
	var first []kafkaMsg
	for p := range 4 {
		for i := 0; i <= 30; i++ {
			first = append(first, reading(p, time.Duration(2*i)*time.Second))
		}
	}
	producePinned(t, k, in, first)

	window := func(idle bool) bson.A {
		src := bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: in},
			{Key: "timeField", Value: bson.D{{Key: "$dateFromString", Value: bson.D{{Key: "dateString", Value: "$ts"}}}}},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}
		out := "win-stalled"
		if idle {
			src = append(src, bson.E{Key: "partitionIdleTimeout", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}})
			out = "win-idle"
		}
		return bson.A{
			bson.D{{Key: "$source", Value: src}},
			bson.D{{Key: "$tumblingWindow", Value: bson.D{
				{Key: "interval", Value: bson.D{{Key: "size", Value: 10}, {Key: "unit", Value: "second"}}},
				{Key: "allowedLateness", Value: 0},
				{Key: "pipeline", Value: bson.A{bson.D{{Key: "$group", Value: bson.D{
					{Key: "_id", Value: "$sensor"},
					{Key: "n", Value: bson.D{{Key: "$sum", Value: 1}}},
					{Key: "total", Value: bson.D{{Key: "$sum", Value: "$v"}}},
					{Key: "hi", Value: bson.D{{Key: "$max", Value: "$v"}}},
					{Key: "mean", Value: bson.D{{Key: "$avg", Value: "$x"}}}}}}}},
			}}},
			bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: out},
				{Key: "config", Value: bson.D{{Key: "outputFormat", Value: "canonicalJson"}}}}}},
		}
	}
	c := kafkaProcessor(t, s, k, "kafka", "idle", window(true))
	kafkaProcessor(t, s, k, "kafka", "stalled", window(false))

	// Partition 3 stays silent; the others go on, a reading each every 100 ms, until the idle
	// processor's stats say partition 3 is idle and the others are not.
	at := 62 * time.Second
	sawIdle := false
	for i := 0; i < 600 && !sawIdle; i++ {
		var batch []kafkaMsg
		for p := range 3 {
			batch = append(batch, reading(p, at))
		}
		at += 2 * time.Second
		producePinned(t, k, in, batch)
		time.Sleep(100 * time.Millisecond)
		idle := map[int]bool{}
		for _, st := range kafkaPartitionsOf(t, c, "idle") {
			idle[st.Partition] = st.IsIdle
		}
		sawIdle = idle[silent] && len(idle) == 4 && !idle[0] && !idle[1] && !idle[2]
	}
	if !sawIdle {
		t.Fatalf("stats never showed partition %d idle and the others active: %+v", silent, kafkaPartitionsOf(t, c, "idle"))
	}
	// One last reading at the same event time on each active partition, so that the watermark
	// they leave is the same whichever of them falls idle last; kcat produces these.
	var last []kafkaMsg
	for p := range 3 {
		last = append(last, reading(p, at+10*time.Second))
	}
	kcatProduce(t, k, in, last)

	// The reference, from what the topic holds.
	ends := topicEnds(t, k, in)
	total := 0
	for _, e := range ends {
		total += int(e)
	}
	records := readToEnd(t, k, in)
	if len(records) != total {
		t.Fatalf("read %d records of %s, want %d", len(records), in, total)
	}
	// Each partition rises in event time: merged by event time, no record is late whichever
	// partitions the engine has seen.
	eventTime := func(m kafkaMsg) time.Time {
		var v struct {
			TS time.Time `json:"ts"`
		}
		if err := json.Unmarshal(m.Value, &v); err != nil {
			t.Fatalf("record %d@%d: %v", m.Partition, m.Offset, err)
		}
		return v.TS
	}
	slices.SortStableFunc(records, func(a, b kafkaMsg) int {
		if c := eventTime(a).Compare(eventTime(b)); c != 0 {
			return c
		}
		return a.Partition - b.Partition
	})
	wantIdle := engineWindowResults(t, engineRun(t, window(true), records, []int{silent}))
	wantStalled := engineWindowResults(t, engineRun(t, window(false), records, nil))
	if len(wantStalled) == 0 || len(wantIdle) <= len(wantStalled) {
		t.Fatalf("the reference is degenerate: %d window results with the idle timeout, %d without", len(wantIdle), len(wantStalled))
	}

	// With partitionIdleTimeout every window up to the last common event time closes.
	waitUntil(t, "the idle processor's window results", func() bool {
		return topicEnds(t, k, "win-idle")[0] >= int64(len(wantIdle))
	})
	// The engine dead-letters none of the records: every one is on time.
	for _, name := range []string{"idle", "stalled"} {
		var st struct {
			Stats struct {
				DLQ int64 `bson:"dlqMessageCount"`
			} `bson:"stats"`
		}
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st); err != nil {
			t.Fatal(err)
		}
		if n := st.Stats.DLQ; n != 0 {
			t.Errorf("processor %s dead-lettered %d records the engine takes on time (partitions' event times only rise)", name, n)
		}
	}
	got := readToEnd(t, k, "win-idle")
	compareWindows(t, "with partitionIdleTimeout", windowResults(t, values(got)), wantIdle)

	// Without it, partition 3 holds the watermark back: once the processor has read
	// everything, and has had as long again as the other processor needed for its idle
	// timeout, the windows after partition 3's last event time are still open.
	waitUntil(t, "the stalled processor to read every record", func() bool {
		st := kafkaPartitionsOf(t, c, "stalled")
		done := 0
		for _, p := range st {
			if p.Topic == in && p.CurrentOffset >= ends[p.Partition] {
				done++
			}
		}
		return done == 4
	})
	time.Sleep(2 * time.Second)
	for _, p := range kafkaPartitionsOf(t, c, "stalled") {
		if p.IsIdle {
			t.Errorf("without partitionIdleTimeout, stats show partition %d idle", p.Partition)
		}
	}
	got = readToEnd(t, k, "win-stalled")
	compareWindows(t, "without partitionIdleTimeout", windowResults(t, values(got)), wantStalled)
	t.Logf("%d window results with partitionIdleTimeout, %d without; %d records over 4 partitions", len(wantIdle), len(wantStalled), total)
}
