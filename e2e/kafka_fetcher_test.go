package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Tests of the Kafka source's fetchers (a goroutine per partition on a connection to the
// partition's leader): leaders that move while records flow, and transactions read with
// read_committed and read_uncommitted. The records are produced and read back with franz-go
// (kgo), a client independent of the kafka-go the source is built on.

// seqOutputs reads an output topic from its start with kgo in the background for as long as
// the test runs, and keeps, for each output's "seq", how often it came out and its "kind".
// An output record is counted once however often the consumer reads it (kgo may read a
// partition again from its start after kfake moves its leader).
type seqOutputs struct {
	mu    sync.Mutex
	seen  map[[2]int64]bool // output partition and offset
	count map[int64]int
	kind  map[int64]string
	total int
	bad   []string
}

func consumeSeqs(t *testing.T, k *kafkaCluster, topic string, opts ...kgo.Opt) *seqOutputs {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(k.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200 * time.Millisecond)}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo consumer of %s: %v", topic, err)
	}
	o := &seqOutputs{seen: map[[2]int64]bool{}, count: map[int64]int{}, kind: map[int64]string{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { o.add(r.Partition, r.Offset, r.Value) })
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return o
}

func (o *seqOutputs) add(partition int32, offset int64, v []byte) {
	var d struct {
		Seq  json.RawMessage `json:"seq"`
		Kind string          `json:"kind"`
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	pos := [2]int64{int64(partition), offset}
	if o.seen[pos] {
		return
	}
	o.seen[pos] = true
	o.total++
	seq, ok := int64(0), false
	if json.Unmarshal(v, &d) == nil {
		seq, ok = jsonInt(d.Seq)
	}
	if !ok {
		if len(o.bad) < 20 {
			o.bad = append(o.bad, string(v))
		}
		return
	}
	o.count[seq]++
	o.kind[seq] = d.Kind
}

// has reports whether every seq in want has come out.
func (o *seqOutputs) has(want map[int64]string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	for seq := range want {
		if o.count[seq] == 0 {
			return false
		}
	}
	return true
}

// distinct is the number of distinct seqs that have come out.
func (o *seqOutputs) distinct() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.count)
}

// seqRecord is a record of topic whose value is {"seq": seq, "kind": kind}, on partition
// seq % partitions (with kgo's ManualPartitioner).
func seqRecord(topic string, seq int64, kind string, partitions int) *kgo.Record {
	return &kgo.Record{Topic: topic, Partition: int32(seq % int64(partitions)),
		Value: fmt.Appendf(nil, `{"seq": %d, "kind": %q, "note": "record %d"}`, seq, kind, seq)}
}

// kgoProducer is a kgo client that produces to the partition each record names (acks=all),
// with more options (a TransactionalID) when given. It is closed when the test ends.
func kgoProducer(t *testing.T, k *kafkaCluster, opts ...kgo.Opt) *closingProducer {
	t.Helper()
	all := append([]kgo.Opt{kgo.SeedBrokers(k.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks())}, opts...)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		t.Fatalf("kgo producer: %v", err)
	}
	p := &closingProducer{Client: cl, close: sync.OnceFunc(cl.Close)}
	t.Cleanup(p.Close)
	return p
}

// closingProducer is a kgo client that a test may close before it ends.
type closingProducer struct {
	*kgo.Client
	close func()
}

// Close closes the client; it may be called more than once.
func (p *closingProducer) Close() { p.close() }

// produceSync produces records with cl and fails the test on any error.
func produceSync(t *testing.T, cl *closingProducer, recs ...*kgo.Record) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("producing %d records: %v", len(recs), err)
	}
}

// noLastingError waits until processor name is STARTED with no errorMsg, in
// getStreamProcessor and in listStreamProcessors.
func noLastingError(t *testing.T, c *mongo.Client, name string) {
	t.Helper()
	var state, msg, lstate, lmsg string
	deadline := time.Now().Add(time.Minute)
	for {
		state, _, msg = processorState(t, c, name)
		lstate, lmsg = listed(t, c, name)
		if state == "STARTED" && msg == "" && lstate == "STARTED" && lmsg == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processor %s: getStreamProcessor says %s (%q), listStreamProcessors %s (%q); want STARTED without an error",
				name, state, msg, lstate, lmsg)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Leadership moves. Three kfake brokers; a four-partition input topic is produced to at a
// steady pace (20,000 records, each with its own seq) while a processor $source → $emit copies
// it to an output topic. Six times, each once more of the input has come out, every input
// partition's leader moves to another broker (kfake's MoveTopicPartition: the old leader
// answers fetches with NOT_LEADER_FOR_PARTITION from then on); then every partition of both
// topics gets a new leader at random (ShufflePartitionLeaders), and then a broker leaves the
// cluster (RemoveNode: it stops listening, and its partitions get new leaders). In the end
// every seq is in the output, the processor has read each partition to its end, and it is
// STARTED with no error.
func TestKafkaFetcherLeaderMoves(t *testing.T) {
	t.Parallel()
	const in, out, parts, total, moves = "lm-in", "lm-out", 4, 20_000, 6
	k := startKafka(t, 3, kfake.SeedTopics(parts, in, out))
	s := startSpid(t)
	c := kafkaProcessor(t, s, k, "kafka", "leaders", bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: in},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "kafka"}, {Key: "topic", Value: out}}}},
	})
	outs := consumeSeqs(t, k, out)

	// The producer: 50 chunks of 400 records, one every 40 ms.
	prod := kgoProducer(t, k)
	produced := make(chan error, 1)
	go func() {
		for chunk := range total / 400 {
			recs := make([]*kgo.Record, 400)
			for i := range recs {
				recs[i] = seqRecord(in, int64(chunk*400+i), "plain", parts)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			err := prod.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				produced <- fmt.Errorf("chunk %d: %w", chunk, err)
				return
			}
			time.Sleep(40 * time.Millisecond)
		}
		produced <- nil
	}()

	nodes := []int32{0, 1, 2}
	for i := range moves {
		target := total * (i + 1) / (moves + 4)
		waitUntil(t, fmt.Sprintf("%d distinct outputs before move %d", target, i+1), func() bool { return outs.distinct() >= target })
		var moved []string
		for p := range int32(parts) {
			from := k.LeaderFor(in, p)
			to := nodes[(slices.Index(nodes, from)+1+int(p+int32(i))%2)%len(nodes)]
			if err := k.MoveTopicPartition(in, p, to); err != nil {
				t.Fatalf("moving the leader of %s/%d to node %d: %v", in, p, to, err)
			}
			if got := k.LeaderFor(in, p); got != to || got == from {
				t.Fatalf("the leader of %s/%d is node %d after moving it from %d to %d", in, p, got, from, to)
			}
			moved = append(moved, fmt.Sprintf("%d: %d→%d", p, from, to))
		}
		t.Logf("move %d after %d distinct outputs: %v", i+1, outs.distinct(), moved)
	}
	// Then an election of every partition's leader, the output topic's too; then one broker
	// leaves the cluster (kfake's RemoveNode: it stops listening and leads nothing).
	waitUntil(t, "more outputs before the election", func() bool { return outs.distinct() >= total*(moves+1)/(moves+4) })
	k.ShufflePartitionLeaders()
	t.Logf("every leader elected again after %d distinct outputs", outs.distinct())
	waitUntil(t, "more outputs before a broker leaves", func() bool { return outs.distinct() >= total*(moves+2)/(moves+4) })
	if err := k.RemoveNode(2); err != nil {
		t.Fatalf("removing node 2: %v", err)
	}
	for p := range int32(parts) {
		if l := k.LeaderFor(in, p); l == 2 {
			t.Fatalf("%s/%d is led by the removed node", in, p)
		}
	}
	t.Logf("node 2 removed after %d distinct outputs", outs.distinct())
	if err := <-produced; err != nil {
		t.Fatalf("producing the input: %v", err)
	}
	want := map[int64]string{}
	for seq := range int64(total) {
		want[seq] = "plain"
	}
	waitUntil(t, "every input seq in the output", func() bool { return outs.has(want) })
	waitAtEnds(t, k, c, "leaders", in)
	noLastingError(t, c, "leaders")
	outs.mu.Lock()
	defer outs.mu.Unlock()
	for _, b := range outs.bad {
		t.Errorf("an output without a seq: %s", b)
	}
	for seq := range outs.count {
		if seq < 0 || seq >= total {
			t.Errorf("an output with seq %d, which no input has", seq)
		}
	}
	t.Logf("%d inputs, %d outputs (%d distinct)", total, outs.total, len(outs.count))
	// The source's fetchers retry by themselves; an $emit that meets a moved leader of the
	// output topic may fail the attempt, which the runtime retries from the last checkpoint.
	for _, l := range strings.Split(s.Stderr.String(), "\n") {
		if strings.Contains(l, "processor error; retrying") {
			t.Logf("the processor retried: %.300s", l)
		}
	}
}

// kafkaConnectionWith is kafkaConnection with a config of Kafka properties.
func kafkaConnectionWith(name string, k *kafkaCluster, config map[string]string) map[string]any {
	body := kafkaConnection(name, k)
	body["config"] = config
	return body
}

// Transactions. A franz-go transactional producer writes committed and aborted transactions
// into a two-partition topic, and a plain producer writes records between them and while they
// are open, so that the log interleaves plain records, transactional records and transaction
// markers. Two processors copy the topic, through connections whose config sets
// isolation.level read_uncommitted or nothing (read_uncommitted, the default): both output
// every record, and neither turns a transaction marker into a dead letter. Then, after they
// have caught up, more plain records and a committed transaction arrive: the fetchers went on
// past the markers. A third connection sets read_committed, which createStreamProcessor
// refuses with 420 and the reason: kafka-go's fetch keeps the records of aborted transactions
// (a read_committed fetch stops at the last stable offset and lists the aborted transactions
// for the client to drop, which kafka-go does not read; segmentio/kafka-go#1332), so spid
// would pass aborted records off as committed ones. kfake implements transactions as Kafka
// does.
func TestKafkaFetcherTransactions(t *testing.T) {
	t.Parallel()
	const in, parts = "tx-in", 2
	k := startKafka(t, 1, kfake.SeedTopics(parts, in, "tx-rc", "tx-ru", "tx-dflt"))
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnectionWith("rc", k, map[string]string{"isolation.level": "read_committed"}))
	a.ok("POST", "/streams/default/connections", kafkaConnectionWith("ru", k, map[string]string{"isolation.level": "read_uncommitted"}))
	a.ok("POST", "/streams/default/connections", kafkaConnection("dflt", k))
	c := connectGo(t, s.Admin(t, "", ""))
	err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "createStreamProcessor", Value: "rc"}, {Key: "pipeline", Value: bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "rc"}, {Key: "topic", Value: in}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "rc"}, {Key: "topic", Value: "tx-rc"}}}},
	}}}).Err()
	var ce mongo.CommandError
	if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, "read_committed is not supported") {
		t.Fatalf("createStreamProcessor through a read_committed connection: %v, want 420 saying read_committed is not supported", err)
	}
	// A sample cursor per processor, opened before the records are produced, shows what a
	// dead letter says.
	cursors := map[string]int64{}
	for _, name := range []string{"ru", "dflt"} {
		createKafkaCopy(t, c, name, name, in, "tx-"+name)
		m := mustAdmin(t, c, bson.D{{Key: "startSampleStreamProcessor", Value: name}})
		id, ok := m["cursorId"].(int64)
		if !ok || id == 0 {
			t.Fatalf("startSampleStreamProcessor %s: %v", name, m)
		}
		cursors[name] = id
	}
	ru, dflt := consumeSeqs(t, k, "tx-ru"), consumeSeqs(t, k, "tx-dflt")

	plain := kgoProducer(t, k)
	txn := kgoProducer(t, k, kgo.TransactionalID("spid-e2e-txn"), kgo.TransactionTimeout(30*time.Second))
	all := map[int64]string{}
	seq := int64(0)
	next := func(kind string, n int) []*kgo.Record {
		var recs []*kgo.Record
		for range n {
			recs = append(recs, seqRecord(in, seq, kind, parts))
			all[seq] = kind
			seq++
		}
		return recs
	}
	// transaction produces n records in a transaction with plain records written while it is
	// open, and commits or aborts it.
	transaction := func(commit bool, n int) {
		t.Helper()
		if err := txn.BeginTransaction(); err != nil {
			t.Fatalf("BeginTransaction: %v", err)
		}
		kind, end := "aborted", kgo.TryAbort
		if commit {
			kind, end = "committed", kgo.TryCommit
		}
		produceSync(t, txn, next(kind, n/2)...)
		produceSync(t, plain, next("plain", 3)...)
		produceSync(t, txn, next(kind, n-n/2)...)
		ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
		defer cancel()
		if err := txn.EndTransaction(ctx, end); err != nil {
			t.Fatalf("EndTransaction(commit %v): %v", commit, err)
		}
	}
	for round := range 6 {
		produceSync(t, plain, next("plain", 10)...)
		transaction(round%2 == 0, 20)
		if round%3 == 2 {
			transaction(false, 8) // two transactions in a row, the second aborted
		}
	}
	waitUntil(t, "every record from read_uncommitted", func() bool { return ru.has(all) && dflt.has(all) })

	// After the last marker: more plain records, and a committed transaction.
	produceSync(t, plain, next("plain", 10)...)
	transaction(true, 10)
	waitUntil(t, "the records after the last markers from read_uncommitted", func() bool { return ru.has(all) && dflt.has(all) })

	for _, name := range []string{"ru", "dflt"} {
		noLastingError(t, c, name)
		if _, _, dlq := statsCounts(t, c, name); dlq != 0 {
			got := drainSample(t, c, name, cursors[name], func(s sampled) bool { return int64(len(s.dead)) >= dlq })
			t.Errorf("processor %s has %d dead letters; transaction markers are not records. The first: %s", name, dlq, got.dead[0])
		}
	}
	check := func(name string, o *seqOutputs, want map[int64]string) {
		o.mu.Lock()
		defer o.mu.Unlock()
		for _, b := range o.bad {
			t.Errorf("%s: an output without a seq: %s", name, b)
		}
		var extra []int64
		for seq := range o.count {
			if _, ok := want[seq]; !ok {
				extra = append(extra, seq)
			}
		}
		slices.Sort(extra)
		if len(extra) > 0 {
			kinds := map[string]int{}
			for _, seq := range extra {
				kinds[all[seq]]++
			}
			t.Errorf("%s: %d outputs that should not be there (by kind %v): seqs %v", name, len(extra), kinds, extra)
		}
		for seq, kind := range want {
			if o.kind[seq] != kind {
				t.Errorf("%s: seq %d came out as %q, want %q", name, seq, o.kind[seq], kind)
			}
		}
		t.Logf("%s: %d outputs, %d distinct, %d wanted", name, o.total, len(o.count), len(want))
	}
	check("read_uncommitted", ru, all)
	check("default isolation", dflt, all)
	kinds := map[string]int{}
	for _, kind := range all {
		kinds[kind]++
	}
	t.Logf("input: %v", kinds)
}

// A topic deleted and created again while a processor reads it. 1,000 records go through;
// the topic is deleted, and once the fetchers have met the missing topic (a fetch of it after
// the deletion, observed at the broker), it is created again with the same two partitions and
// 100 new records, fewer than the old log held: the fetchers' offsets are past the new log's
// end, so the attempt ends with OFFSET_OUT_OF_RANGE, the runtime retries, and the source resumes
// at the new log's start (auto_offset_reset earliest). Every new record comes out, the source
// reads the new partitions to their end, and the processor is STARTED with no error.
//
// Like Kafka's consumers that do not track topic IDs, the source cannot tell a recreated topic
// that has grown past its old offsets from the old one; the test does not go there.
func TestKafkaFetcherTopicRecreated(t *testing.T) {
	t.Parallel()
	const in, out, parts = "rec-in", "rec-out", 2
	k := startKafka(t, 1, kfake.SeedTopics(parts, in, out))
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("kafka", k))
	c := connectGo(t, s.Admin(t, "", ""))
	createKafkaCopy(t, c, "recreated", "kafka", in, out)
	outs := consumeSeqs(t, k, out)
	// The first producer is closed before the deletion, so that only the source asks the
	// broker about the deleted topic.
	prod := kgoProducer(t, k)

	before, after := map[int64]string{}, map[int64]string{}
	var recs []*kgo.Record
	for seq := range int64(1000) {
		recs = append(recs, seqRecord(in, seq, "before", parts))
		before[seq] = "before"
	}
	produceSync(t, prod, recs...)
	waitUntil(t, "the records produced before the deletion", func() bool { return outs.has(before) })
	prod.Close()

	if err := k.DeleteTopic(in); err != nil {
		t.Fatalf("deleting %s: %v", in, err)
	}
	// The source has met the missing topic once it fetches it, or looks its leader up (as a
	// fetcher does after a failed fetch, and Open does), after the deletion.
	met := k.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Fetch, kmsg.Metadata}, Topic: in, Observe: true, Count: -1})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	if err := met.Wait(ctx, 2); err != nil {
		t.Fatalf("waiting for the source to fetch or look up the deleted topic: %v (%d seen)", err, met.Hits())
	}
	cancel()
	met.Remove()
	if err := k.CreateTopic(in, parts, nil); err != nil {
		t.Fatalf("creating %s again: %v", in, err)
	}
	recs = nil
	for seq := int64(1000); seq < 1100; seq++ {
		recs = append(recs, seqRecord(in, seq, "after", parts))
		after[seq] = "after"
	}
	// A new producer: the first one knows the old topic's ID.
	produceSync(t, kgoProducer(t, k), recs...)
	waitUntil(t, "the records produced after the topic was created again", func() bool { return outs.has(after) })
	ends := waitAtEnds(t, k, c, "recreated", in)
	noLastingError(t, c, "recreated")
	outs.mu.Lock()
	defer outs.mu.Unlock()
	for _, b := range outs.bad {
		t.Errorf("an output without a seq: %s", b)
	}
	t.Logf("%d outputs, %d distinct; the topic's new ends %v", outs.total, len(outs.count), ends)
}

// A broker that stays down. One broker, on a data directory; 500 records go through, then the
// broker is shut down and stays down until the processor, still STARTED, reports the outage in
// errorMsg (getStreamProcessor and listStreamProcessors): the fetchers retry by themselves and
// the source reports a broker it has failed to reach for 30 seconds (stallTimeout). The broker
// then starts again on the same ports and data; 500 more records come out, the source reads
// every partition to its end, and the error is gone.
func TestKafkaFetcherBrokerOutage(t *testing.T) {
	t.Parallel()
	const in, out, parts = "down-in", "down-out", 2
	k := startKafka(t, 1, kfake.DataDir(t.TempDir()), kfake.SeedTopics(parts, in, out))
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("kafka", k))
	c := connectGo(t, s.Admin(t, "", ""))
	createKafkaCopy(t, c, "outage", "kafka", in, out)
	outs := consumeSeqs(t, k, out)

	batch := func(from, n int64, kind string) ([]*kgo.Record, map[int64]string) {
		var recs []*kgo.Record
		want := map[int64]string{}
		for seq := from; seq < from+n; seq++ {
			recs = append(recs, seqRecord(in, seq, kind, parts))
			want[seq] = kind
		}
		return recs, want
	}
	recs, before := batch(0, 500, "before")
	produceSync(t, kgoProducer(t, k), recs...)
	waitUntil(t, "the records produced before the outage", func() bool { return outs.has(before) })
	noLastingError(t, c, "outage")

	k.Close()
	var state, msg, lstate, lmsg string
	waitUntil(t, "the outage in errorMsg while STARTED", func() bool {
		state, _, msg = processorState(t, c, "outage")
		lstate, lmsg = listed(t, c, "outage")
		if state != "STARTED" || lstate != "STARTED" {
			t.Fatalf("during the outage the processor is %s (%q) in getStreamProcessor, %s (%q) in listStreamProcessors; want STARTED while it retries",
				state, msg, lstate, lmsg)
		}
		return msg != "" && lmsg != ""
	})
	t.Logf("during the outage: errorMsg %q", msg)
	for _, addr := range strings.Split(k.Brokers, ",") { // a closed kfake cluster does not answer ListenAddrs
		if !strings.Contains(msg, addr) {
			t.Errorf("errorMsg %q does not name the broker %s", msg, addr)
		}
	}

	k.restart(t, 0)
	recs, after := batch(500, 500, "after")
	produceSync(t, kgoProducer(t, k), recs...)
	waitUntil(t, "the records produced after the outage", func() bool { return outs.has(after) && outs.has(before) })
	ends := topicEnds(t, k, in)
	waitUntil(t, "the source at the end of every partition", func() bool {
		for _, p := range kafkaPartitionsOf(t, c, "outage") {
			if p.Topic == in && p.CurrentOffset != ends[p.Partition] {
				return false
			}
		}
		return true
	})
	noLastingError(t, c, "outage")
	outs.mu.Lock()
	defer outs.mu.Unlock()
	for _, b := range outs.bad {
		t.Errorf("an output without a seq: %s", b)
	}
	t.Logf("%d outputs, %d distinct", outs.total, len(outs.count))
}

// waitAtEnds waits until processor name's source stands at the end of every partition of
// topic (its kafkaPartitions' currentOffset), and returns the ends.
func waitAtEnds(t *testing.T, k *kafkaCluster, c *mongo.Client, name, topic string) map[int]int64 {
	t.Helper()
	ends := topicEnds(t, k, topic)
	waitUntil(t, "the source of "+name+" at the end of every partition of "+topic, func() bool {
		for _, p := range kafkaPartitionsOf(t, c, name) {
			if p.Topic == topic && p.CurrentOffset != ends[p.Partition] {
				return false
			}
		}
		return true
	})
	return ends
}
