// Command kafkabench measures, in one run on one Kafka broker, how fast spid moves JSON
// messages from a topic to a topic against a plain kafka-go copy loop (issue 10, acceptance 8
// (a) and (b)):
//
//   - (a) a kafka-go Reader per partition feeding one asynchronous Writer, with the fetch
//     sizes of spid's Kafka source and the batching of its sink (BatchSize 1000, BatchTimeout
//     5 ms, BatchBytes 16 MiB, acks=all), in a child process of its own (this binary with
//     -copy-child), as spid runs in a process of its own; -copy-in-process runs it here;
//   - (b) spid, a child process, running $source → $match → $addFields → $emit over the same
//     input topic.
//
// Both copy every message (the $match keeps them all), so each is timed from its start until
// the broker's end offsets of its output topic account for every message; (a) and (b)
// alternate over -rounds rounds, each round writing to output topics of its own that are
// deleted after it, and the median round of each is reported, with the CPU time per message
// of the copying process and of this one (the broker). A round of (b) whose processor
// reported an error, or output other than one message per input, is flagged. Then both run
// again on live topics fed at a steady rate, and each message's end-to-end latency (the time
// it is read from the output topic minus the time the producer stamped into it) gives p50
// and p99.
//
// The broker is kfake (github.com/twmb/franz-go/pkg/kfake), an in-memory implementation of the
// Kafka protocol, running in this process, so the broker, the copier being measured and this
// process share the machine's CPUs: on a machine with few CPUs the ratio of (b) to (a) is
// mostly the ratio of their CPU time per message. kfake keeps each partition's log in an
// in-memory file that grows by doubling, so the broker's CPU per message, and with it the
// ratio, varies from run to run by more than a tenth: read several runs.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/e2e/internal/benchkit"
)

// The batching of spid's Kafka sink and the fetching of its source (connectors/kafka), which
// the copy loop uses too.
const (
	batchSize     = 1000
	batchTimeout  = 5 * time.Millisecond
	batchBytes    = 16 << 20
	fetchMaxBytes = 1 << 20
	fetchMaxWait  = 250 * time.Millisecond
	readerQueue   = 1024
)

type config struct {
	spid       string
	messages   int
	size       int
	partitions int
	rate       int
	latencyDur time.Duration
	copyOnly   bool
	rounds     int
	inProcess  bool
	// child, when set, makes this process the copy loop of (a): "brokers,in,out,partitions".
	child string
}

func main() {
	var cfg config
	flag.StringVar(&cfg.spid, "spid", "../bin/spid", "path of the spid binary")
	flag.IntVar(&cfg.messages, "messages", 200_000, "messages per throughput measurement")
	flag.IntVar(&cfg.size, "size", 1024, "approximate size of each JSON message in bytes")
	flag.IntVar(&cfg.partitions, "partitions", 4, "partitions of the input topics")
	flag.IntVar(&cfg.rate, "rate", 2000, "messages per second of the latency measurement")
	flag.DurationVar(&cfg.latencyDur, "latency-duration", 5*time.Second, "length of the latency measurement")
	flag.BoolVar(&cfg.copyOnly, "copy-only", false, "measure only (a), the kafka-go copy loop, without spid")
	flag.IntVar(&cfg.rounds, "rounds", 5, "rounds of (a) and (b); the median is reported")
	flag.BoolVar(&cfg.inProcess, "copy-in-process", false, "run (a) in this process, beside the broker, rather than in a process of its own as spid is")
	flag.StringVar(&cfg.child, "copy-child", "", "internal: run as the copy loop of (a), given brokers,in,out,partitions")
	flag.Parse()
	if cfg.child != "" {
		if err := runCopyChild(cfg.child); err != nil {
			fmt.Fprintln(os.Stderr, "kafkabench copy loop:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(cfg); err != nil {
		fmt.Fprintln(os.Stderr, "kafkabench:", err)
		os.Exit(1)
	}
}

func run(cfg config) error {
	if cfg.messages < 1 || cfg.size < 100 || cfg.partitions < 1 || cfg.rate < 1 || cfg.rounds < 1 {
		return errors.New("-messages, -partitions, -rate and -rounds must be positive, -size at least 100")
	}
	// Each round writes to output topics of its own, deleted after it: kfake keeps every
	// record in memory, and a log grown over many rounds makes later rounds slower for both.
	topics := []string{"bench-in", "lat-in-a", "lat-out-a", "lat-in-b", "lat-out-b"}
	for r := range cfg.rounds {
		topics = append(topics, fmt.Sprintf("copy-out-%d", r+1), fmt.Sprintf("spid-out-%d", r+1))
	}
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(cfg.partitions), topics...))
	if err != nil {
		return fmt.Errorf("starting kfake: %w", err)
	}
	defer cluster.Close()
	brokers := cluster.ListenAddrs()

	start := time.Now()
	if err := fill(brokers, "bench-in", cfg); err != nil {
		return err
	}
	fmt.Printf("Kafka topic to topic: %d JSON messages of %d bytes over %d partitions, one kfake broker (in memory, in this process), produced in %s\n",
		cfg.messages, cfg.size, cfg.partitions, time.Since(start).Round(time.Millisecond))
	fmt.Printf("writers: BatchSize %d, BatchTimeout %s, acks=all; %d CPUs shared by broker, spid and this process\n\n", batchSize, batchTimeout, benchkit.NProc())

	var sp *spidChild
	if !cfg.copyOnly {
		if sp, err = startSpid(cfg.spid, brokers); err != nil {
			return err
		}
		defer sp.Stop()
		if err := sp.connection(); err != nil {
			return err
		}
	}
	// (a) and (b) alternate within each round, over the same input, so that drift in the
	// machine's load hits both alike; the median round of each is reported.
	var as, bs, cpuA, cpuB, brokerA, brokerB []time.Duration
	for r := range cfg.rounds {
		copyOut, spidOut := fmt.Sprintf("copy-out-%d", r+1), fmt.Sprintf("spid-out-%d", r+1)
		var child time.Duration
		broker0 := benchkit.ProcCPU(os.Getpid())
		a, err := timeCopy(brokers, "bench-in", copyOut, cfg.messages, copier(cfg, brokers, "bench-in", copyOut, &child))
		if err != nil {
			return fmt.Errorf("(a): %w", err)
		}
		as, cpuA, brokerA = append(as, a), append(cpuA, child), append(brokerA, benchkit.ProcCPU(os.Getpid())-broker0)
		deleteTopic(brokers, copyOut)
		if sp == nil {
			continue
		}
		cpu0, broker0 := benchkit.ProcCPU(sp.Cmd.Process.Pid), benchkit.ProcCPU(os.Getpid())
		name := fmt.Sprintf("throughput-%d", r+1)
		b, err := timeCopy(brokers, "bench-in", spidOut, cfg.messages, func(ctx context.Context) (func(), error) {
			return sp.processor(ctx, name, "bench-in", spidOut)
		})
		if err != nil {
			return fmt.Errorf("(b): %w", err)
		}
		bs, cpuB, brokerB = append(bs, b), append(cpuB, benchkit.ProcCPU(sp.Cmd.Process.Pid)-cpu0), append(brokerB, benchkit.ProcCPU(os.Getpid())-broker0)
		deleteTopic(brokers, spidOut)
		// A run whose processor failed on the way (and replayed from its checkpoint) does
		// not measure a copy: say so.
		if sp.lastErr != "" || sp.lastOut != int64(cfg.messages) {
			fmt.Printf("warning: (b) round %d is not a clean copy: the processor output %d messages for %d inputs; errorMsg %q\n\n",
				r+1, sp.lastOut, cfg.messages, sp.lastErr)
		}
	}

	// Latency at a steady rate, each on its own live topics.
	la, err := latency(brokers, "lat-in-a", "lat-out-a", cfg, copier(cfg, brokers, "lat-in-a", "lat-out-a", nil))
	if err != nil {
		return fmt.Errorf("(a) latency: %w", err)
	}
	rows := []benchRow{{"(a) kafka-go Reader → Writer copy loop", benchkit.Median(as), la, benchkit.Median(cpuA), benchkit.Median(brokerA)}}
	if sp != nil {
		lb, err := latency(brokers, "lat-in-b", "lat-out-b", cfg, func(ctx context.Context) (func(), error) {
			return sp.processor(ctx, "latency", "lat-in-b", "lat-out-b")
		})
		if err != nil {
			return fmt.Errorf("(b) latency: %w", err)
		}
		rows = append(rows, benchRow{"(b) spid $source → $match → $addFields → $emit", benchkit.Median(bs), lb, benchkit.Median(cpuB), benchkit.Median(brokerB)})
	}

	mb := float64(cfg.messages*cfg.size) / 1e6
	where := "in a process of its own, as spid is"
	if cfg.inProcess {
		where = "in this process, beside the broker"
	}
	fmt.Printf("%d round(s), (a) and (b) alternating; median round reported; (a) runs %s\n", cfg.rounds, where)
	perMsg := func(d time.Duration) string {
		if d <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(d.Nanoseconds())/1e3/float64(cfg.messages))
	}
	fmt.Printf("%-52s  %10s  %8s  %9s  %9s  %9s  %12s  %12s\n", "pipeline", "msgs/s", "MB/s", "elapsed", "p50", "p99", "CPU µs/msg", "broker µs/msg")
	for _, row := range rows {
		fmt.Printf("%-52s  %10.0f  %8.1f  %9s  %9s  %9s  %12s  %12s\n", row.name, float64(cfg.messages)/row.d.Seconds(), mb/row.d.Seconds(),
			row.d.Round(time.Millisecond), pct(row.lat, 50), pct(row.lat, 99), perMsg(row.cpu), perMsg(row.broker))
	}
	if len(rows) == 2 {
		fmt.Printf("ratio (b)/(a): %.2fx   (goal: >= 0.80x); CPU per message (b)/(a): %.2fx\n", rows[0].d.Seconds()/rows[1].d.Seconds(),
			float64(rows[1].cpu)/float64(max(rows[0].cpu, 1)))
	}
	fmt.Println("CPU: the copying process's user+system time (/proc), median round; broker: this process's, which is the broker's and the timer's")
	fmt.Printf("latency: %d messages/s for %s, from the producer's timestamp in the message to its read from the output topic\n", cfg.rate, cfg.latencyDur)
	return nil
}

// benchRow is one pipeline's figures: the time to copy every message and the latencies.
type benchRow struct {
	name string
	d    time.Duration
	lat  []time.Duration
	// cpu is the copying process's CPU time (0 when (a) runs in this process), broker this
	// process's over the same round.
	cpu, broker time.Duration
}

// payload is one message of about size bytes, JSON, with seq and the time it was made.
func payload(seq, size int, sent time.Time) []byte {
	b := fmt.Appendf(nil, `{"seq": %d, "sent": %d, "sensor": "s%d", "temp": %.1f, "ok": true, "tags": ["a", "b", "c"], "note": "`,
		seq, sent.UnixNano(), seq%97, float64(seq%400)/10)
	pad := max(size-len(b)-2, 0)
	b = append(b, bytes.Repeat([]byte("x"), pad)...)
	return append(b, `"}`...)
}

// fill writes cfg.messages messages to topic.
func fill(brokers []string, topic string, cfg config) error {
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: topic, BatchSize: batchSize, BatchTimeout: batchTimeout, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	now := time.Now()
	for i := 0; i < cfg.messages; i += batchSize * 5 {
		msgs := make([]kafka.Message, 0, batchSize*5)
		for j := i; j < min(i+batchSize*5, cfg.messages); j++ {
			msgs = append(msgs, kafka.Message{Value: payload(j, cfg.size, now)})
		}
		if err := w.WriteMessages(context.Background(), msgs...); err != nil {
			return fmt.Errorf("filling %s: %w", topic, err)
		}
	}
	return nil
}

// deleteTopic deletes a topic a round has finished with, so the broker frees its records.
func deleteTopic(brokers []string, topic string) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	_, _ = cl.DeleteTopics(context.Background(), &kafka.DeleteTopicsRequest{Topics: []string{topic}})
}

// endOffsets sums the end offsets of topic's partitions.
func endOffsets(ctx context.Context, brokers []string, topic string) (int64, error) {
	cl := &kafka.Client{Addr: kafka.TCP(brokers...)}
	md, err := cl.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, err
	}
	if len(md.Topics) != 1 || md.Topics[0].Error != nil {
		return 0, fmt.Errorf("metadata of %s: %+v", topic, md.Topics)
	}
	var reqs []kafka.OffsetRequest
	for _, p := range md.Topics[0].Partitions {
		reqs = append(reqs, kafka.LastOffsetOf(p.ID))
	}
	res, err := cl.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, p := range res.Topics[topic] {
		if p.Error != nil {
			return 0, p.Error
		}
		sum += p.LastOffset
	}
	return sum, nil
}

// timeCopy starts a copier of in to out and times it until out has grown by n messages.
func timeCopy(brokers []string, in, out string, n int, start func(context.Context) (func(), error)) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	base, err := endOffsets(ctx, brokers, out)
	if err != nil {
		return 0, err
	}
	t0 := time.Now()
	stop, err := start(ctx)
	if err != nil {
		return 0, err
	}
	defer stop()
	for {
		end, err := endOffsets(ctx, brokers, out)
		if err != nil {
			return 0, err
		}
		if end-base >= int64(n) {
			return time.Since(t0), nil
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// copier starts (a) from in to out: by default in a child process of its own, as spid runs
// beside the broker's process, and then stores the child's CPU time in *cpu when it stops
// (cpu may be nil); with -copy-in-process, in this process.
func copier(cfg config, brokers []string, in, out string, cpu *time.Duration) func(context.Context) (func(), error) {
	if cfg.inProcess {
		return func(ctx context.Context) (func(), error) { return copyLoop(ctx, brokers, in, out, cfg.partitions) }
	}
	return func(ctx context.Context) (func(), error) {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(ctx, self, "-copy-child", fmt.Sprintf("%s,%s,%s,%d", strings.Join(brokers, ";"), in, out, cfg.partitions))
		cmd.Stderr = os.Stderr
		stdin, err := cmd.StdinPipe()
		if err != nil {
			return nil, err
		}
		if err := cmd.Start(); err != nil {
			return nil, err
		}
		return func() {
			_ = stdin.Close() // the child stops at the end of its input
			if cmd.Wait() == nil && cpu != nil {
				*cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
			}
		}, nil
	}
}

// runCopyChild is the child process of (a): the copy loop until its standard input ends.
func runCopyChild(spec string) error {
	f := strings.Split(spec, ",")
	if len(f) != 4 {
		return fmt.Errorf("-copy-child %q: want brokers,in,out,partitions", spec)
	}
	var partitions int
	if _, err := fmt.Sscan(f[3], &partitions); err != nil {
		return err
	}
	stop, err := copyLoop(context.Background(), strings.Split(f[0], ";"), f[1], f[2], partitions)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, os.Stdin)
	stop()
	return nil
}

// copyLoop is (a): a Reader per partition of in, from the first offset, feeding one Writer to
// out in slices of up to batchSize messages.
func copyLoop(ctx context.Context, brokers []string, in, out string, partitions int) (func(), error) {
	ctx, cancel := context.WithCancel(ctx)
	ch := make(chan kafka.Message, 4*batchSize)
	var wg sync.WaitGroup
	for p := range partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: in, Partition: p, MinBytes: 1, MaxBytes: fetchMaxBytes,
			MaxWait: fetchMaxWait, QueueCapacity: readerQueue, StartOffset: kafka.FirstOffset})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = r.Close() }()
			for {
				m, err := r.ReadMessage(ctx)
				if err != nil {
					return
				}
				select {
				case ch <- kafka.Message{Key: m.Key, Value: m.Value, Headers: m.Headers}:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	// Asynchronous, as spid's sink is: WriteMessages queues, the Writer batches and sends.
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: out, BatchSize: batchSize, BatchTimeout: batchTimeout, BatchBytes: batchBytes,
		RequiredAcks: kafka.RequireAll, Async: true, Completion: func(_ []kafka.Message, err error) {
			if err != nil {
				fmt.Fprintln(os.Stderr, "copy loop:", err)
			}
		}}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer func() { _ = w.Close() }()
		var batch []kafka.Message
		for {
			select {
			case m := <-ch:
				batch = append(make([]kafka.Message, 0, batchSize), m)
			case <-ctx.Done():
				return
			}
		more:
			for len(batch) < batchSize {
				select {
				case m := <-ch:
					batch = append(batch, m)
				default:
					break more
				}
			}
			if err := w.WriteMessages(ctx, batch...); err != nil {
				if ctx.Err() == nil {
					fmt.Fprintln(os.Stderr, "copy loop:", err)
				}
				return
			}
		}
	}()
	return func() { cancel(); wg.Wait() }, nil
}

// latency feeds in at cfg.rate for cfg.latencyDur while a copier runs, and returns each
// message's time from its producer's stamp to its read from out.
func latency(brokers []string, in, out string, cfg config, start func(context.Context) (func(), error)) ([]time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	stop, err := start(ctx)
	if err != nil {
		return nil, err
	}
	defer stop()
	var (
		mu   sync.Mutex
		lats []time.Duration
		wg   sync.WaitGroup
	)
	rctx, rcancel := context.WithCancel(ctx)
	for p := range cfg.partitions {
		r := kafka.NewReader(kafka.ReaderConfig{Brokers: brokers, Topic: out, Partition: p, MinBytes: 1, MaxBytes: 16 << 20,
			MaxWait: 50 * time.Millisecond, StartOffset: kafka.FirstOffset})
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { _ = r.Close() }()
			for {
				m, err := r.ReadMessage(rctx)
				if err != nil {
					return
				}
				now := time.Now()
				var v struct {
					Sent int64 `json:"sent"`
				}
				if json.Unmarshal(m.Value, &v) == nil && v.Sent > 0 {
					mu.Lock()
					lats = append(lats, now.Sub(time.Unix(0, v.Sent)))
					mu.Unlock()
				}
			}
		}()
	}
	// Give the copier time to be reading before the clock starts.
	time.Sleep(time.Second)
	w := &kafka.Writer{Addr: kafka.TCP(brokers...), Topic: in, BatchSize: batchSize, BatchTimeout: time.Millisecond,
		RequiredAcks: kafka.RequireAll, Async: true}
	total := int(cfg.latencyDur.Seconds() * float64(cfg.rate))
	tick := time.Second / 100 // 100 sends per second, rate/100 messages each
	per := max(cfg.rate/100, 1)
	t0 := time.Now()
	for seq := 0; seq < total; {
		for i := 0; i < per && seq < total; i++ {
			_ = w.WriteMessages(ctx, kafka.Message{Value: payload(seq, cfg.size, time.Now())})
			seq++
		}
		time.Sleep(time.Until(t0.Add(time.Duration(seq/per) * tick)))
	}
	_ = w.Close()
	deadline := time.Now().Add(time.Minute)
	for {
		mu.Lock()
		n := len(lats)
		mu.Unlock()
		if n >= total || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	rcancel()
	wg.Wait()
	if len(lats) < total {
		return nil, fmt.Errorf("only %d of %d messages came out", len(lats), total)
	}
	slices.Sort(lats)
	return lats, nil
}

func pct(sorted []time.Duration, p int) string {
	if len(sorted) == 0 {
		return "-"
	}
	return sorted[min(len(sorted)*p/100, len(sorted)-1)].Round(10 * time.Microsecond).String()
}

// spidChild is spid running as a child process (benchkit.Spid) with the Kafka connection to
// the bench's broker.
type spidChild struct {
	*benchkit.Spid
	// brokers is the bootstrap list of the Kafka connection.
	brokers   string
	connected bool
	// lastErr and lastOut are the errorMsg and outputMessageCount of the last processor
	// dropped.
	lastErr string
	lastOut int64
}

func startSpid(path string, brokers []string) (*spidChild, error) {
	sp, err := benchkit.StartSpid(path, "kafkabench", 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &spidChild{Spid: sp, brokers: strings.Join(brokers, ",")}, nil
}

// connection creates the Kafka connection "bench" to the broker through the Admin API, once.
func (s *spidChild) connection() error {
	if s.connected {
		return nil
	}
	if err := s.CreateConnection(map[string]any{"name": "bench", "type": "Kafka", "bootstrapServers": s.brokers,
		"security": map[string]any{"protocol": "PLAINTEXT"}}); err != nil {
		return err
	}
	s.connected = true
	return nil
}

// processor is (b): it creates and starts processor name, $source in → $match → $addFields
// → $emit out, and returns the function that drops it.
func (s *spidChild) processor(ctx context.Context, name, in, out string) (func(), error) {
	if err := s.connection(); err != nil {
		return nil, err
	}
	pipe := bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "bench"}, {Key: "topic", Value: in},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$match", Value: bson.D{{Key: "ok", Value: true}}}},
		bson.D{{Key: "$addFields", Value: bson.D{{Key: "fahrenheit", Value: bson.D{{Key: "$add", Value: bson.A{32, bson.D{{Key: "$multiply", Value: bson.A{"$temp", 1.8}}}}}}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "bench"}, {Key: "topic", Value: out}}}},
	}
	db := s.Client.Database("admin")
	if err := db.RunCommand(ctx, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipe}}).Err(); err != nil {
		return nil, fmt.Errorf("createStreamProcessor: %w", err)
	}
	if err := db.RunCommand(ctx, bson.D{{Key: "startStreamProcessor", Value: name}}).Err(); err != nil {
		return nil, fmt.Errorf("startStreamProcessor: %w", err)
	}
	return func() {
		c := context.Background()
		var st struct {
			ErrorMsg string `bson:"errorMsg"`
			Stats    struct {
				Out int64 `bson:"outputMessageCount"`
			} `bson:"stats"`
		}
		_ = db.RunCommand(c, bson.D{{Key: "getStreamProcessorStats", Value: name}}).Decode(&st)
		s.lastErr, s.lastOut = st.ErrorMsg, st.Stats.Out
		_ = db.RunCommand(c, bson.D{{Key: "stopStreamProcessor", Value: name}}).Err()
		_ = db.RunCommand(c, bson.D{{Key: "dropStreamProcessor", Value: name}}).Err()
	}, nil
}
