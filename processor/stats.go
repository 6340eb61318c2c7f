package processor

import (
	"math"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/metrics"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// stats are one processor's counters. They are updated by the runner's goroutines and read by
// commands; every counter also feeds its Prometheus series, so /metrics and stats() agree.
type stats struct {
	inCount, inBytes, outCount, outBytes, dlqCount, dlqBytes atomic.Int64
	stateSize                                                atomic.Int64
	// srcDLQ and sinkDLQ are the dead letters of $source and of the sink, for operatorStats.
	srcDLQ, sinkDLQ atomic.Int64
	watermark       atomic.Int64

	opsMu sync.Mutex
	ops   []pipeline.OperatorStats

	lat latency

	partsMu sync.Mutex
	parts   []KafkaPartition

	// retry is the error the runner is retrying after, shown as errorMsg while the processor
	// is still STARTED; a committed checkpoint clears it.
	retry atomic.Pointer[Error]

	m                                         *metrics.Metrics
	ws, name                                  string
	pIn, pInB, pOut, pOutB, pDLQ, pDLQB, pCkp prometheus.Counter
	pState, pLag                              prometheus.Gauge
	pLat                                      prometheus.Observer
}

func newStats(m *metrics.Metrics, ws, name string) *stats {
	s := &stats{m: m, ws: ws, name: name}
	s.watermark.Store(math.MinInt64)
	if m != nil {
		l := prometheus.Labels{"workspace": ws, "processor": name}
		s.pIn = m.ProcessorInputMessages.With(l)
		s.pInB = m.ProcessorInputBytes.With(l)
		s.pOut = m.ProcessorOutputMessages.With(l)
		s.pOutB = m.ProcessorOutputBytes.With(l)
		s.pDLQ = m.ProcessorDLQMessages.With(l)
		s.pDLQB = m.ProcessorDLQBytes.With(l)
		s.pCkp = m.ProcessorCheckpoints.With(l)
		s.pState = m.ProcessorStateBytes.With(l)
		s.pLat = m.ProcessorLatency.With(l)
	}
	return s
}

// restore sets the counters to a checkpoint's, so that stats survive a restart; the
// Prometheus counters are raised to match.
func (s *stats) restore(c store.Counters, watermark int64) {
	s.add(&s.inCount, s.pIn, c.InputCount-s.inCount.Load())
	s.add(&s.inBytes, s.pInB, c.InputSize-s.inBytes.Load())
	s.add(&s.outCount, s.pOut, c.OutputCount-s.outCount.Load())
	s.add(&s.outBytes, s.pOutB, c.OutputSize-s.outBytes.Load())
	s.add(&s.dlqCount, s.pDLQ, c.DLQCount-s.dlqCount.Load())
	s.add(&s.dlqBytes, s.pDLQB, c.DLQSize-s.dlqBytes.Load())
	if watermark != 0 {
		s.watermark.Store(watermark)
	}
}

// add moves a counter by d; Prometheus counters only ever grow, so a counter set back by a
// restore after a crash keeps its Prometheus value until the counter passes it again.
func (s *stats) add(a *atomic.Int64, c prometheus.Counter, d int64) {
	a.Add(d)
	if c != nil && d > 0 {
		c.Add(float64(d))
	}
}

func (s *stats) input(n, bytes int64) {
	s.add(&s.inCount, s.pIn, n)
	s.add(&s.inBytes, s.pInB, bytes)
}

func (s *stats) output(n, bytes int64) {
	s.add(&s.outCount, s.pOut, n)
	s.add(&s.outBytes, s.pOutB, bytes)
}

func (s *stats) dlq(n, bytes int64) {
	s.add(&s.dlqCount, s.pDLQ, n)
	s.add(&s.dlqBytes, s.pDLQB, bytes)
}

func (s *stats) checkpointed() {
	s.retry.Store(nil)
	if s.pCkp != nil {
		s.pCkp.Inc()
	}
}

// KafkaPartition is one partition of a Kafka source in stats (spec §5.1 kafkaPartitions).
type KafkaPartition struct {
	Topic     string
	Partition int32
	// CurrentOffset is the offset after the last record read; CheckpointOffset the offset in
	// the last committed checkpoint (-1 before the first).
	CurrentOffset, CheckpointOffset int64
	// ConsumerGroupLag is the high watermark minus the group's committed offset (-1 unknown).
	ConsumerGroupLag int64
	IsIdle           bool
	// Watermark is the partition's latest event time in ms (math.MinInt64: none yet).
	Watermark int64
}

// refreshOffsets updates the partitions' offsets, lag and idleness from the source, keeping
// their watermarks (which only the engine's goroutine may read): after a checkpoint, so that a
// stopped processor shows its final checkpoint.
func (s *stats) refreshOffsets(ps []connectors.PartitionStats) {
	type topicPartition struct {
		topic     string
		partition int32
	}
	s.partsMu.Lock()
	wm := map[topicPartition]int64{}
	for _, p := range s.parts {
		wm[topicPartition{p.Topic, p.Partition}] = p.Watermark
	}
	s.partsMu.Unlock()
	s.setPartitions(kafkaPartitions(ps, func(p connectors.PartitionStats) int64 {
		if w, ok := wm[topicPartition{p.Topic, p.Partition}]; ok {
			return w
		}
		return math.MinInt64
	}))
}

// kafkaPartitions turns a source's partitions into stats, with each one's watermark.
func kafkaPartitions(ps []connectors.PartitionStats, watermark func(connectors.PartitionStats) int64) []KafkaPartition {
	out := make([]KafkaPartition, len(ps))
	for i, p := range ps {
		out[i] = KafkaPartition{Topic: p.Topic, Partition: p.Partition, CurrentOffset: p.CurrentOffset, CheckpointOffset: p.CheckpointOffset,
			ConsumerGroupLag: p.ConsumerGroupLag, IsIdle: p.IsIdle, Watermark: watermark(p)}
	}
	return out
}

func (s *stats) setPartitions(parts []KafkaPartition) {
	s.partsMu.Lock()
	s.parts = parts
	s.partsMu.Unlock()
	if s.m == nil {
		return
	}
	for _, p := range parts {
		l := prometheus.Labels{"workspace": s.ws, "processor": s.name, "topic": p.Topic, "partition": strconv.Itoa(int(p.Partition))}
		s.m.KafkaCurrentOffset.With(l).Set(float64(p.CurrentOffset))
		s.m.KafkaCheckpointOffset.With(l).Set(float64(p.CheckpointOffset))
		s.m.KafkaConsumerGroupLag.With(l).Set(float64(p.ConsumerGroupLag))
		idle := 0.0
		if p.IsIdle {
			idle = 1
		}
		s.m.KafkaPartitionIdle.With(l).Set(idle)
		if p.Watermark != math.MinInt64 {
			s.m.KafkaWatermarkLag.With(l).Set(time.Since(time.UnixMilli(p.Watermark)).Seconds())
		}
	}
}

func (s *stats) setStateSize(n int64) {
	s.stateSize.Store(n)
	if s.pState != nil {
		s.pState.Set(float64(n))
	}
}

func (s *stats) setWatermark(w int64) {
	if w == math.MinInt64 || w == math.MaxInt64 {
		return
	}
	s.watermark.Store(w)
	// The series exists from the first watermark on: a processor whose watermark never moved
	// (a partition that holds it back) has none, rather than a lag of 0 that looks healthy.
	if s.pLag == nil && s.m != nil {
		s.pLag = s.m.ProcessorWatermarkLag.With(prometheus.Labels{"workspace": s.ws, "processor": s.name})
	}
	if s.pLag != nil {
		s.pLag.Set(time.Since(time.UnixMilli(w)).Seconds())
	}
}

func (s *stats) observe(d time.Duration, n int) {
	s.lat.observe(d, n)
	if s.pLat != nil {
		for range min(n, 64) { // the histogram's counts per batch, capped to keep it cheap
			s.pLat.Observe(d.Seconds())
		}
	}
}

func (s *stats) setOperators(ops []pipeline.OperatorStats) {
	s.opsMu.Lock()
	s.ops = ops
	s.opsMu.Unlock()
}

func (s *stats) operators() []pipeline.OperatorStats {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	return append([]pipeline.OperatorStats(nil), s.ops...)
}

// setState sets the state gauge: 1 for the current state, 0 for the others.
func (s *stats) setState(state string) {
	if s.m == nil {
		return
	}
	for _, st := range []string{store.StateCreated, store.StateStarted, store.StateStopped, store.StateFailed} {
		v := 0.0
		if st == state {
			v = 1
		}
		s.m.ProcessorState.WithLabelValues(s.ws, s.name, st).Set(v)
	}
}

func (s *stats) counters() store.Counters {
	return store.Counters{
		InputCount: s.inCount.Load(), InputSize: s.inBytes.Load(),
		OutputCount: s.outCount.Load(), OutputSize: s.outBytes.Load(),
		DLQCount: s.dlqCount.Load(), DLQSize: s.dlqBytes.Load(),
	}
}

// Snapshot is a processor's stats at one moment (spec §5.1).
type Snapshot struct {
	store.Counters
	// StateSize is the operator state in bytes.
	StateSize int64
	// Watermark is the event time in ms since the epoch up to which input is complete;
	// math.MinInt64 before the first watermark.
	Watermark int64
	// Latency is the source-to-sink latency over the last 30 s.
	Latency LatencySummary
	// KafkaPartitions are the partitions of a Kafka source, as last sampled.
	KafkaPartitions []KafkaPartition
	// SourceDLQ and SinkDLQ are the dead letters of $source (records that are not documents)
	// and of the sink (documents it could not deliver), since the processor's start.
	SourceDLQ, SinkDLQ int64
}

func (s *stats) snapshot() Snapshot {
	s.partsMu.Lock()
	parts := s.parts
	s.partsMu.Unlock()
	return Snapshot{Counters: s.counters(), StateSize: s.stateSize.Load(), Watermark: s.watermark.Load(), Latency: s.lat.summary(),
		KafkaPartitions: parts, SourceDLQ: s.srcDLQ.Load(), SinkDLQ: s.sinkDLQ.Load()}
}

// LatencySummary is stats.latency in verbose stats: percentiles in microseconds over a window.
type LatencySummary struct {
	P50, P99   int64
	Count      int64
	Sum        int64
	Start, End time.Time
}

// latency keeps two 30-second histograms of source-to-sink latency (the current one and the
// previous one) in logarithmic buckets 5 % apart, from 1 µs to about 3 minutes.
type latency struct {
	mu       sync.Mutex
	cur, old latHist
}

const (
	latBuckets = 400
	latWindow  = 30 * time.Second
)

var latGrowth = math.Log(1.05)

type latHist struct {
	start  time.Time
	counts [latBuckets]int64
	n, sum int64
}

func latBucket(us int64) int {
	if us < 1 {
		return 0
	}
	b := int(math.Log(float64(us)) / latGrowth)
	return min(b, latBuckets-1)
}

func (l *latency) observe(d time.Duration, n int) {
	us := d.Microseconds()
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur.start.IsZero() {
		l.cur.start = now
	}
	if now.Sub(l.cur.start) >= latWindow {
		l.old = l.cur
		l.cur = latHist{start: now}
	}
	l.cur.counts[latBucket(us)] += int64(n)
	l.cur.n += int64(n)
	l.cur.sum += us * int64(n)
}

func (l *latency) summary() LatencySummary {
	l.mu.Lock()
	defer l.mu.Unlock()
	var all latHist
	for _, h := range []*latHist{&l.old, &l.cur} {
		for i, c := range h.counts {
			all.counts[i] += c
		}
		all.n += h.n
		all.sum += h.sum
	}
	out := LatencySummary{Count: all.n, Sum: all.sum, Start: l.old.start, End: time.Now()}
	if out.Start.IsZero() {
		out.Start = l.cur.start
	}
	if all.n == 0 {
		return out
	}
	pct := func(p float64) int64 {
		want := int64(math.Ceil(p * float64(all.n)))
		var seen int64
		for i, c := range all.counts {
			seen += c
			if seen >= want {
				return int64(math.Exp(float64(i+1) * latGrowth)) // the bucket's upper bound
			}
		}
		return 0
	}
	out.P50, out.P99 = pct(0.50), pct(0.99)
	return out
}
