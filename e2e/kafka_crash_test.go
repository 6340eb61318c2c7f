package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// jsonInt reads an integer written as a JSON number or as Extended JSON ({"$numberInt": "5"},
// {"$numberLong": "5"}, {"$numberDouble": "5.0"}).
func jsonInt(raw json.RawMessage) (int64, bool) {
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		if i, err := n.Int64(); err == nil {
			return i, true
		}
		f, err := n.Float64()
		return int64(f), err == nil && f == float64(int64(f))
	}
	var w map[string]string
	if err := json.Unmarshal(raw, &w); err != nil || len(w) != 1 {
		return 0, false
	}
	for k, v := range w {
		switch k {
		case "$numberInt", "$numberLong":
			i, err := strconv.ParseInt(v, 10, 64)
			return i, err == nil
		case "$numberDouble":
			f, err := strconv.ParseFloat(v, 64)
			return int64(f), err == nil && f == float64(int64(f))
		}
	}
	return 0, false
}

// sourceRef is an input record's place: topic, partition, offset.
type sourceRef struct {
	Topic     string
	Partition int64
	Offset    int64
}

// outputCollector reads every partition of an output topic from the beginning, in the
// background, for as long as the test runs (across broker restarts), and counts the outputs
// of each input record by its _stream_meta.source.
type outputCollector struct {
	mu     sync.Mutex
	count  map[sourceRef]int
	seq    map[sourceRef]int64
	total  int
	errors []string
}

func collectOutputs(t *testing.T, k *kafkaCluster, topic string, partitions int) *outputCollector {
	t.Helper()
	oc := &outputCollector{count: map[sourceRef]int{}, seq: map[sourceRef]int64{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: strings.Split(k.Brokers, ","), Topic: topic, Partition: p,
			MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 100 * time.Millisecond, Dialer: &kafka.Dialer{Timeout: 5 * time.Second}})
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					if ctx.Err() != nil {
						return
					}
					time.Sleep(50 * time.Millisecond)
					continue
				}
				oc.add(m.Value)
			}
		}()
		t.Cleanup(func() { _ = r.Close() })
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return oc
}

func (oc *outputCollector) add(v []byte) {
	var d struct {
		Seq     json.RawMessage `json:"seq"`
		Doubled json.RawMessage `json:"doubled"`
		Meta    struct {
			Source struct {
				Topic     string          `json:"topic"`
				Partition json.RawMessage `json:"partition"`
				Offset    json.RawMessage `json:"offset"`
			} `json:"source"`
		} `json:"_stream_meta"`
	}
	oc.mu.Lock()
	defer oc.mu.Unlock()
	oc.total++
	fail := func(why string) {
		if len(oc.errors) < 20 {
			oc.errors = append(oc.errors, why+": "+string(v))
		}
	}
	if err := json.Unmarshal(v, &d); err != nil {
		fail("not JSON")
		return
	}
	seq, ok1 := jsonInt(d.Seq)
	doubled, ok2 := jsonInt(d.Doubled)
	p, ok3 := jsonInt(d.Meta.Source.Partition)
	off, ok4 := jsonInt(d.Meta.Source.Offset)
	if !ok1 || !ok2 || !ok3 || !ok4 || d.Meta.Source.Topic == "" {
		fail("an output without seq, doubled or _stream_meta.source.{topic, partition, offset}")
		return
	}
	if doubled != 2*seq {
		fail("doubled is not twice seq")
	}
	ref := sourceRef{d.Meta.Source.Topic, p, off}
	if prev, ok := oc.seq[ref]; ok && prev != seq {
		fail(fmt.Sprintf("input %v came out with seq %d and %d", ref, prev, seq))
	}
	oc.seq[ref] = seq
	oc.count[ref]++
}

// distinct is the number of input records seen in the output so far.
func (oc *outputCollector) distinct() int {
	oc.mu.Lock()
	defer oc.mu.Unlock()
	return len(oc.count)
}

// At-least-once (issue 10, acceptance 4). 100,000 input messages, each with a unique sequence
// number, are produced at a steady pace over four partitions while a processor $source →
// $addFields → $emit copies them to an output topic, with a checkpoint every second. At four
// random points, each after a checkpoint newer than the previous point's, spid is killed with
// SIGKILL and restarted on the same data directory (three times) or the broker is restarted on
// its data directory (once). Before each, the test records the partitions' checkpointOffsets
// from stats.
//
// In the end, every input offset is in the output, with its own sequence number; and an input
// offset comes out more than once only if it is at or after its partition's checkpoint offset
// at one of those points: at most once more per kill (the replay from the checkpoint), twice
// more for the broker restart (the producer's retry of a batch the broker stored but did not
// acknowledge, and the replay).
func TestKafkaAtLeastOnce(t *testing.T) {
	t.Parallel()
	const in, out, parts, total = "alo-in", "alo-out", 4, 100_000
	k := startKafka(t, 1, kfake.DataDir(t.TempDir()), kfake.SeedTopics(parts, in, out))
	dir := t.TempDir()
	args := []string{"--checkpoint-interval", "1s"}
	s := startSpidIn(t, dir, args...)
	c := kafkaProcessor(t, s, k, "kafka", "copy", bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: in},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$addFields", Value: bson.D{{Key: "doubled", Value: bson.D{{Key: "$multiply", Value: bson.A{"$seq", 2}}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: out}}}},
	})
	oc := collectOutputs(t, k, out, parts)

	// The producer: chunks of 1,000 every 50 ms; the broker's restart holds the lock.
	var produceMu sync.Mutex
	produced := make(chan error, 1)
	go func() {
		w := &kafka.Writer{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Topic: in, BatchTimeout: 2 * time.Millisecond,
			BatchSize: 1000, RequiredAcks: kafka.RequireAll}
		defer func() { _ = w.Close() }()
		for chunk := 0; chunk < total/1000; chunk++ {
			msgs := make([]kafka.Message, 1000)
			for i := range msgs {
				seq := chunk*1000 + i
				msgs[i] = kafka.Message{Value: fmt.Appendf(nil, `{"seq": %d, "note": "reading %d of %d"}`, seq, seq, total)}
			}
			var err error
			for try := 0; try < 50; try++ {
				produceMu.Lock()
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				err = w.WriteMessages(ctx, msgs...)
				cancel()
				produceMu.Unlock()
				if err == nil {
					break
				}
				time.Sleep(200 * time.Millisecond)
			}
			if err != nil {
				produced <- fmt.Errorf("chunk %d: %w", chunk, err)
				return
			}
			time.Sleep(50 * time.Millisecond)
		}
		produced <- nil
	}()

	seed := time.Now().UnixNano()
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	brokerAt := rng.IntN(4)
	t.Logf("seed %d: the broker restarts at point %d", seed, brokerAt+1)
	type point struct {
		what string
		cp   map[int]int64 // partition → checkpointOffset (absent: none yet)
	}
	var points []point
	checkpoints := func() (map[int]int64, int64) {
		cp, sum := map[int]int64{}, int64(0)
		for _, p := range kafkaPartitionsOf(t, c, "copy") {
			if p.Topic == in && p.HasCheckpoint {
				cp[p.Partition] = p.CheckpointOffset
				sum += p.CheckpointOffset
			}
		}
		return cp, sum
	}
	_, lastSum := checkpoints()
	for i := range 4 {
		target := 20_000*(i+1) + rng.IntN(10_000)
		waitUntil(t, fmt.Sprintf("%d inputs in the output and a new checkpoint", target), func() bool {
			if oc.distinct() < target {
				return false
			}
			_, sum := checkpoints()
			return sum > lastSum
		})
		cp, sum := checkpoints()
		lastSum = sum
		if i == brokerAt {
			produceMu.Lock()
			points = append(points, point{"broker restart", cp})
			k.restart(t, 500*time.Millisecond)
			produceMu.Unlock()
			t.Logf("point %d: broker restarted after %d distinct outputs; checkpoints %v", i+1, oc.distinct(), cp)
			continue
		}
		s.Kill(t)
		points = append(points, point{"kill -9", cp})
		t.Logf("point %d: spid killed after %d distinct outputs; checkpoints %v", i+1, oc.distinct(), cp)
		s = startSpidIn(t, dir, args...)
		c = connectGo(t, s.Admin(t, "", ""))
		if state, _, msg := processorState(t, c, "copy"); state != "STARTED" {
			t.Fatalf("after kill -9 and restart the processor is %s (%s), want STARTED", state, msg)
		}
	}
	if err := <-produced; err != nil {
		t.Fatalf("producing the input: %v", err)
	}

	ends := topicEnds(t, k, in)
	inputs := 0
	for _, e := range ends {
		inputs += int(e)
	}
	if inputs < total {
		t.Fatalf("the input topic holds %d records, want at least %d", inputs, total)
	}
	waitUntil(t, "every input offset in the output", func() bool { return oc.distinct() >= inputs })

	// Every input record, by offset, with its own sequence number.
	records := readToEnd(t, k, in)
	oc.mu.Lock()
	defer oc.mu.Unlock()
	for _, e := range oc.errors {
		t.Error(e)
	}
	seen := map[int64]bool{}
	for _, r := range records {
		var v struct {
			Seq int64 `json:"seq"`
		}
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("input %s/%d@%d: %v", r.Topic, r.Partition, r.Offset, err)
		}
		seen[v.Seq] = true
		ref := sourceRef{in, int64(r.Partition), r.Offset}
		if n := oc.count[ref]; n == 0 {
			t.Errorf("input %v (seq %d) is not in the output", ref, v.Seq)
		} else if oc.seq[ref] != v.Seq {
			t.Errorf("input %v has seq %d, its output %d", ref, v.Seq, oc.seq[ref])
		}
	}
	if len(seen) != total {
		t.Errorf("the input holds %d distinct sequence numbers, want %d", len(seen), total)
	}
	// Repeats only after a point's checkpoint, and no more than the points allow.
	repeats, extra := 0, 0
	for ref, n := range oc.count {
		if ref.Topic != in || ref.Offset >= ends[int(ref.Partition)] {
			t.Errorf("output for an input record that does not exist: %v", ref)
			continue
		}
		if n == 1 {
			continue
		}
		repeats++
		extra += n - 1
		allowed := 0
		for _, pt := range points {
			if ref.Offset >= pt.cp[int(ref.Partition)] {
				allowed++
				if pt.what == "broker restart" {
					allowed++
				}
			}
		}
		if n-1 > allowed {
			t.Errorf("input %v came out %d times; the checkpoints before the kills and the broker restart allow %d repeats", ref, n, allowed)
		}
	}
	t.Logf("%d inputs, %d outputs; %d inputs repeated (%d extra outputs) after %d points", inputs, oc.total, repeats, extra, len(points))
}
