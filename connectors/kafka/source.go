package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/segmentio/kafka-go"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/ejson"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// MaxMessageBytes is the largest record value the source turns into a document: BSON's 16 MiB
// document limit. A larger record becomes a dead-letter record.
const MaxMessageBytes = 16 << 20

// Tuning of the fetchers.
const (
	// fetchMaxBytes bounds one fetch of one partition: Kafka's default
	// max.partition.fetch.bytes (1 MiB). A partition holds at most one fetch being read and
	// one waiting for ReadBatch.
	fetchMaxBytes = 1 << 20
	// fetchMaxWait is how long a broker may hold a fetch open for new records.
	fetchMaxWait = 250 * time.Millisecond
	// fetchTimeout bounds the reading of one fetch response past fetchMaxWait; a broker that
	// stops answering for that long is dialed again.
	fetchTimeout = 10 * time.Second
	// fetchBackoffMin and fetchBackoffMax bound the wait before a partition's fetcher dials
	// again after an error; it doubles with each error in a row.
	fetchBackoffMin = 100 * time.Millisecond
	fetchBackoffMax = time.Second
)

// Source reads a Kafka $source: one fetcher per partition (a goroutine on a kafka-go Conn to
// the partition's leader), whose fetches are merged in arrival order.
type Source struct {
	env       connectors.Env
	c         *conn
	topics    []string
	group     string
	commit    bool // commit offsets to the group after each checkpoint
	autoRead  bool // sp.process() with a group: commit as records pass (enable_auto_commit)
	reset     int64
	keyFormat string
	keyDLQ    bool
	idle      time.Duration
	fetchMin  int
	fetchMax  int

	cluster string // the cluster id the brokers report, kept with the offsets
	parts   []*part
	recs    chan fetched
	got     []fetched        // ReadBatch's fetches, reused
	pending fetched          // the rest of a fetch ReadBatch took only part of
	keyBuf  []byte           // the BSON value of the record key being read
	free    freeList[[]byte] // batch buffers the engine is done with
	// fetchBufs are the record slices of fetches ReadBatch is done with, for the fetchers:
	// one fetch holds about a thousand records of 150 bytes each, too many to allocate
	// and clear anew for every fetch.
	fetchBufs freeList[[]kafka.Message]

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	commitMu   sync.Mutex // one commit at a time
	lastCommit time.Time

	errMu     sync.Mutex
	failSince time.Time // fetchers have been failing since, with no record arriving
	lastFail  string
}

// part is one topic partition: a split of the source.
type part struct {
	topic     string
	partition int32
	split     int32

	connMu sync.Mutex
	conn   *kafka.Conn // the fetcher's connection to the leader, if any

	next       atomic.Int64 // the offset after the last record ReadBatch returned
	checkpoint atomic.Int64 // the offset of the last committed checkpoint (-1: none)
	committed  atomic.Int64 // the consumer group's committed offset (-1: none)
	hwm        atomic.Int64 // the partition's high watermark as last seen (-1: unknown)
	isIdle     atomic.Bool
	lastData   time.Time // owned by ReadBatch
}

// fetched is one fetch of one partition: its records in offset order, or the error that
// ended the partition's fetcher.
type fetched struct {
	p    *part
	msgs []kafka.Message
	// next is the offset after the fetch: past its records, and past transaction markers
	// after them, which are not records.
	next int64
	err  error
}

// sourceConfig lists the options of $source.config (spec §3.1.1).
var sourceConfig = []string{"auto_offset_reset", "group_id", "enable_auto_commit", "keyFormat", "keyFormatError"}

// NewSource reads the $source options; it does not connect (that is Open's work), so the
// runtime also calls it to check a pipeline when a processor is created. Errors are option
// errors (code 420) naming the field.
func NewSource(env connectors.Env, src *pipeline.Source) (connectors.Source, error) {
	c, err := newConn(env.Connection)
	if err != nil {
		return nil, err
	}
	s := &Source{env: env, c: c, reset: kafka.LastOffset, keyFormat: "binData", keyDLQ: true,
		idle: time.Duration(src.PartitionIdleTimeout.Millis()) * time.Millisecond}
	// The connection's config (Kafka's property names) sets the consumer's defaults; the
	// stage's config overrides them.
	cc := env.Connection.Kafka.Config
	if v, ok := cc["auto.offset.reset"]; ok {
		if s.reset, err = parseReset(v); err != nil {
			return nil, connectors.Invalid("connection %q config.auto.offset.reset: %v", env.Connection.Name, err)
		}
	}
	s.group = cc["group.id"]
	s.fetchMin, s.fetchMax = 1, fetchMaxBytes
	for key, dst := range map[string]*int{"fetch.min.bytes": &s.fetchMin, "fetch.max.bytes": &s.fetchMax, "max.partition.fetch.bytes": &s.fetchMax} {
		if v, ok := cc[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return nil, connectors.Invalid("connection %q config.%s: %q is not a number of bytes", env.Connection.Name, key, v)
			}
			*dst = n
		}
	}
	switch v := cc["isolation.level"]; v {
	case "", "read_uncommitted":
	case "read_committed":
		// Under read_committed a broker still returns the records of aborted transactions,
		// with the list of those transactions, for the client to drop (KIP-98); kafka-go's
		// fetch does not read that list, so the aborted records would pass as committed ones.
		return nil, connectors.Invalid("connection %q config.isolation.level: read_committed is not supported: spid's Kafka client (kafka-go) does not drop the records of aborted transactions, so it cannot read only committed records; use read_uncommitted", env.Connection.Name)
	default:
		return nil, connectors.Invalid("connection %q config.isolation.level: must be read_committed or read_uncommitted, not %q", env.Connection.Name, v)
	}
	opts := src.Options
	switch t := opts.Lookup("topic"); t.Type {
	case bson.TypeString:
		s.topics = []string{t.StringValue()}
	case bson.TypeArray:
		vals, _ := t.Array().Values()
		for i, v := range vals {
			name, ok := v.StringValueOK()
			if !ok || name == "" {
				return nil, connectors.Invalid("$source.topic.%d: must be a topic name", i)
			}
			if !slices.Contains(s.topics, name) {
				s.topics = append(s.topics, name)
			}
		}
	case 0:
		return nil, connectors.Invalid("$source.topic: is required for a Kafka connection")
	default:
		return nil, connectors.Invalid("$source.topic: must be a topic name or an array of topic names")
	}
	if len(s.topics) == 0 || s.topics[0] == "" {
		return nil, connectors.Invalid("$source.topic: must name at least one topic")
	}
	if v, err := opts.LookupErr("partitions"); err == nil {
		return nil, connectors.Invalid("$source.partitions: is not supported by spid yet (%s)", v.Type)
	}
	if _, err := opts.LookupErr("schemaRegistry"); err == nil {
		return nil, connectors.Invalid("$source.schemaRegistry: Avro with a schema registry is not supported by spid yet")
	}
	autoCommit := -1
	elems, err := stageConfig(opts, "$source")
	if err != nil {
		return nil, err
	}
	for _, e := range elems {
		v := e.Value()
		field := "$source.config." + e.Key()
		switch e.Key() {
		case "auto_offset_reset":
			str, _ := v.StringValueOK()
			if s.reset, err = parseReset(str); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		case "group_id":
			g, ok := v.StringValueOK()
			if !ok || g == "" {
				return nil, connectors.Invalid("%s: must be a non-empty string", field)
			}
			s.group = g
		case "enable_auto_commit":
			b, ok := v.BooleanOK()
			if !ok {
				return nil, connectors.Invalid("%s: must be a boolean", field)
			}
			autoCommit = 0
			if b {
				autoCommit = 1
			}
		case "keyFormat":
			if s.keyFormat, err = keyFormat(v, field); err != nil {
				return nil, err
			}
		case "keyFormatError":
			switch str, _ := v.StringValueOK(); str {
			case "dlq":
				s.keyDLQ = true
			case "passThrough":
				s.keyDLQ = false
			default:
				return nil, connectors.Invalid("%s: must be dlq or passThrough", field)
			}
		default:
			return nil, connectors.Invalid("%s: is not an option of a Kafka $source (%s)", field, strings.Join(sourceConfig, ", "))
		}
	}
	switch {
	case env.Ephemeral:
		// sp.process() commits only to a group it names, and then as records pass, unless
		// enable_auto_commit is false (spec §3.1.1).
		s.autoRead = s.group != "" && autoCommit != 0
	default:
		if autoCommit == 1 && s.group == "" {
			return nil, connectors.Invalid("$source.config.enable_auto_commit: needs config.group_id")
		}
		if s.group == "" {
			s.group = "asp-" + env.ProcessorID + "-consumer"
		}
		s.commit = true
	}
	return s, nil
}

// parseReset reads auto_offset_reset (spec §3.1.1): earliest, beginning or smallest; latest, end
// or largest.
func parseReset(v string) (int64, error) {
	switch v {
	case "earliest", "beginning", "smallest":
		return kafka.FirstOffset, nil
	case "latest", "end", "largest":
		return kafka.LastOffset, nil
	}
	return 0, fmt.Errorf("must be earliest, beginning, smallest, latest, end or largest, not %q", v)
}

// splitName is a split's name in the checkpoint: "<topic>/<partition>" (topic names cannot
// hold a "/").
func splitName(topic string, partition int32) string {
	return topic + "/" + strconv.Itoa(int(partition))
}

// Open finds the topics' partitions, seeks each to its checkpointed offset (else the group's
// committed offset, else auto_offset_reset) and starts a fetcher per partition.
func (s *Source) Open(ctx context.Context, positions []store.SplitPosition) error {
	if err := s.c.probe(ctx); err != nil {
		return err
	}
	cl := s.c.client()
	mctx, cancel := context.WithTimeout(ctx, 2*dialTimeout)
	md, err := cl.Metadata(mctx, &kafka.MetadataRequest{Topics: s.topics})
	cancel()
	if err != nil {
		return s.c.explain(err, "")
	}
	s.cluster = md.ClusterID
	found := map[string]kafka.Topic{}
	for _, t := range md.Topics {
		found[t.Name] = t
	}
	for _, name := range s.topics {
		t, ok := found[name]
		switch {
		case !ok, errors.Is(t.Error, kafka.UnknownTopicOrPartition), t.Error == nil && len(t.Partitions) == 0:
			return &connectors.Error{Retryable: true, Code: connectors.CodeKafkaConnection,
				Err: fmt.Errorf("$source: topic %q does not exist on Kafka cluster %s (no partitions found)", name, strings.Join(s.c.brokers, ","))}
		case t.Error != nil:
			return s.c.explain(fmt.Errorf("topic %q: %w", name, t.Error), "")
		}
		for _, p := range t.Partitions {
			s.parts = append(s.parts, &part{topic: name, partition: int32(p.ID)})
		}
	}
	slices.SortFunc(s.parts, func(a, b *part) int {
		if c := strings.Compare(a.topic, b.topic); c != 0 {
			return c
		}
		return int(a.partition - b.partition)
	})
	if limit := s.env.MaxPartitions; limit > 0 && len(s.parts) > limit {
		return &connectors.Error{Code: connectors.CodeInvalidOptions, Err: fmt.Errorf(
			"$source: the topics have %d partitions, more than the %d a processor of tier %s may read (spec: SP2 32, SP5 64, SP10 and up unlimited); start the processor with a larger tier",
			len(s.parts), limit, s.env.Tier)}
	}
	for i, p := range s.parts {
		p.split = int32(i)
		p.checkpoint.Store(-1)
		p.committed.Store(-1)
		p.hwm.Store(-1)
	}
	if err := s.seek(ctx, cl, positions); err != nil {
		return err
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	// A fetcher waits for ReadBatch once its last fetch is queued: memory ahead of the
	// engine is at most two fetches per partition.
	s.recs = make(chan fetched, len(s.parts))
	s.free = freeList[[]byte]{max: 8}
	s.fetchBufs = freeList[[]kafka.Message]{max: 16}
	now := time.Now()
	for _, p := range s.parts {
		p.lastData = now
		s.wg.Add(1)
		go s.fetch(p, p.next.Load())
	}
	return nil
}

// seek sets every partition's starting offset: the checkpoint's, else (for a processor's first
// start) the consumer group's committed offset, else auto_offset_reset resolved to a concrete
// offset now, so that a checkpoint taken before the first record still names a real offset.
func (s *Source) seek(ctx context.Context, cl *kafka.Client, positions []store.SplitPosition) error {
	fromCheckpoint := map[string]int64{}
	for _, pos := range positions {
		// Offsets of another cluster mean nothing here (the connection's bootstrapServers
		// changed): start as if there were no checkpoint.
		if c, ok := bson.Raw(pos.Position).Lookup("cluster").StringValueOK(); ok && c != "" && s.cluster != "" && c != s.cluster {
			s.log().Warn("the checkpoint's Kafka offsets are of another cluster; starting per auto_offset_reset",
				"checkpointCluster", c, "cluster", s.cluster)
			fromCheckpoint = map[string]int64{}
			positions = nil
			break
		}
		if off, err := bson.Raw(pos.Position).LookupErr("offset"); err == nil {
			if n, ok := off.AsInt64OK(); ok {
				fromCheckpoint[pos.Split] = n
			}
		}
	}
	var missing []*part
	for _, p := range s.parts {
		if off, ok := fromCheckpoint[splitName(p.topic, p.partition)]; ok {
			p.next.Store(off)
			p.checkpoint.Store(off)
			continue
		}
		missing = append(missing, p)
	}
	ctx, cancel := context.WithTimeout(ctx, 2*dialTimeout)
	defer cancel()
	// The high watermarks, for the group's lag and the reset.
	req := &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{}}
	for _, p := range s.parts {
		req.Topics[p.topic] = append(req.Topics[p.topic], kafka.FirstOffsetOf(int(p.partition)), kafka.LastOffsetOf(int(p.partition)))
	}
	lo, err := cl.ListOffsets(ctx, req)
	if err != nil {
		return s.c.explain(err, "")
	}
	first, last := map[string]int64{}, map[string]int64{}
	for topic, list := range lo.Topics {
		for _, po := range list {
			if po.Error != nil {
				return s.c.explain(fmt.Errorf("listing offsets of %s: %w", splitName(topic, int32(po.Partition)), po.Error), "")
			}
			first[splitName(topic, int32(po.Partition))] = po.FirstOffset
			last[splitName(topic, int32(po.Partition))] = po.LastOffset
		}
	}
	for _, p := range s.parts {
		if hw, ok := last[splitName(p.topic, p.partition)]; ok {
			p.hwm.Store(hw)
		}
	}
	if s.group != "" && (s.commit || s.autoRead) {
		fr := &kafka.OffsetFetchRequest{GroupID: s.group, Topics: map[string][]int{}}
		for _, p := range s.parts {
			fr.Topics[p.topic] = append(fr.Topics[p.topic], int(p.partition))
		}
		resp, err := cl.OffsetFetch(ctx, fr)
		if err != nil {
			return s.c.explain(fmt.Errorf("reading the offsets of consumer group %q: %w", s.group, err), "")
		}
		committed := map[string]int64{}
		for topic, list := range resp.Topics {
			for _, po := range list {
				if po.Error == nil && po.CommittedOffset >= 0 {
					committed[splitName(topic, int32(po.Partition))] = po.CommittedOffset
				}
			}
		}
		for _, p := range s.parts {
			if off, ok := committed[splitName(p.topic, p.partition)]; ok {
				p.committed.Store(off)
			}
		}
		if len(positions) == 0 {
			for _, p := range missing {
				if off, ok := committed[splitName(p.topic, p.partition)]; ok {
					p.next.Store(off)
				}
			}
			missing = slices.DeleteFunc(missing, func(p *part) bool { _, ok := committed[splitName(p.topic, p.partition)]; return ok })
		}
	}
	for _, p := range missing {
		key := splitName(p.topic, p.partition)
		if s.reset == kafka.FirstOffset {
			p.next.Store(first[key])
		} else {
			p.next.Store(last[key])
		}
	}
	// A checkpointed or committed offset outside the partition's log: records before it were
	// deleted (retention, DeleteRecords), or the log is shorter than it was (the topic was
	// recreated, the broker lost data, the connection now names another cluster). Kafka's
	// consumers reset per auto.offset.reset then; spid does too, and says so, because
	// records may have been skipped.
	for _, p := range s.parts {
		key := splitName(p.topic, p.partition)
		lo, hi := first[key], last[key]
		off := p.next.Load()
		if off >= lo && off <= hi {
			continue
		}
		to := lo
		if off > hi && s.reset == kafka.LastOffset {
			to = hi
		}
		why := "records before it were deleted (retention or DeleteRecords)"
		if off > hi {
			why = "the partition's log ends before it (the topic was recreated, the broker lost data, or the connection names another cluster)"
		}
		s.log().Warn("the saved offset of a Kafka partition is out of range; resuming per auto_offset_reset",
			"topic", p.topic, "partition", p.partition, "offset", off, "logStart", lo, "logEnd", hi, "resumeAt", to, "why", why)
		p.next.Store(to)
	}
	return nil
}

// fetch is one partition's fetcher, from offset until the source closes: fetches on a
// connection to the partition's leader, each handed to ReadBatch whole. A network error, or
// an error of the broker's other than OffsetOutOfRange, is reported (readerFailed, which
// ReadBatch turns into an error once it has lasted stallTimeout) and the leader is looked up
// and dialed again after a backoff; OffsetOutOfRange ends the attempt, and Open resets the
// offset. kafka-go's Reader does the same with a goroutine and a channel operation per
// record; a fetch at a time spares those.
func (s *Source) fetch(p *part, offset int64) {
	defer s.wg.Done()
	var conn *kafka.Conn
	// use publishes the connection, so that Close can end a fetch that waits on the network.
	use := func(c *kafka.Conn) {
		p.connMu.Lock()
		p.conn = c
		p.connMu.Unlock()
	}
	defer func() {
		if conn != nil {
			_ = conn.Close()
			use(nil)
		}
	}()
	name := splitName(p.topic, p.partition)
	size := 16 // records in the last fetch: the next one likely holds as many
	for failures := 0; ; {
		if failures > 0 {
			wait := min(fetchBackoffMin<<(failures-1), fetchBackoffMax)
			select {
			case <-time.After(wait):
			case <-s.ctx.Done():
				return
			}
		}
		if s.ctx.Err() != nil {
			return
		}
		if conn == nil {
			c, err := s.dialLeader(p)
			if err == nil {
				_, err = c.Seek(offset, kafka.SeekAbsolute|kafka.SeekDontCheck)
			}
			if err != nil {
				s.readerFailed("connecting to the leader of %s: %v", name, err)
				failures = min(failures+1, 8)
				continue
			}
			conn = c
			use(c)
		}
		msgs, err := s.fetchOnce(conn, size)
		size = max(len(msgs)+len(msgs)/4, 16) // the next fetch's records, with headroom
		// The connection's offset is past the fetch's records and past the transaction
		// markers among and after them. A fetch of markers alone still moves the partition's
		// position, so that its lag does not count them.
		prev := offset
		offset, _ = conn.Offset()
		if len(msgs) > 0 || offset > prev {
			select {
			case s.recs <- fetched{p: p, msgs: msgs, next: offset}:
			case <-s.ctx.Done():
				return
			}
		}
		switch {
		case err == nil, errors.Is(err, kafka.RequestTimedOut):
			failures = 0
		case s.ctx.Err() != nil:
			return
		case errors.Is(err, kafka.OffsetOutOfRange):
			select {
			case s.recs <- fetched{p: p, err: err}:
			case <-s.ctx.Done():
			}
			return
		default:
			s.readerFailed("reading %s at offset %d: %v", name, offset, err)
			_ = conn.Close()
			conn = nil
			use(nil)
			failures = min(failures+1, 8)
		}
	}
}

// dialLeader connects to the leader of p through the first bootstrap server that answers,
// with the connection's TLS and SASL.
func (s *Source) dialLeader(p *part) (*kafka.Conn, error) {
	ctx, cancel := context.WithTimeout(s.ctx, 2*dialTimeout)
	defer cancel()
	d := s.c.dialer()
	var err error
	for _, b := range s.c.brokers {
		var c *kafka.Conn
		if c, err = d.DialLeader(ctx, "tcp", b, p.topic, int(p.partition)); err == nil {
			return c, nil
		}
	}
	return nil, err
}

// fetchOnce reads one fetch at the connection's offset: its records, and the fetch's error
// (nil at its normal end). The connection's offset moves past what the fetch covered. size is
// the records the slice is first made for.
func (s *Source) fetchOnce(conn *kafka.Conn, size int) ([]kafka.Message, error) {
	_ = conn.SetReadDeadline(time.Now().Add(fetchMaxWait + fetchTimeout))
	batch := conn.ReadBatchWith(kafka.ReadBatchConfig{MinBytes: s.fetchMin, MaxBytes: s.fetchMax, MaxWait: fetchMaxWait})
	msgs, ok := s.fetchBufs.get()
	if !ok || cap(msgs) < size {
		msgs = make([]kafka.Message, 0, size)
	}
	for {
		m, err := batch.ReadMessage()
		if err != nil {
			break
		}
		if isTxnMarker(&m) {
			continue
		}
		msgs = append(msgs, m)
	}
	return msgs, batch.Close()
}

// isTxnMarker reports whether m is a transaction marker: the control record a transaction
// coordinator writes to end a transaction, which takes an offset but is no record of the
// topic's. kafka-go's fetch does not say which records are control records, so they are
// known by their shape (Kafka's ControlRecordType and EndTransactionMarker): a key of four
// bytes, version 0 and type ABORT (0) or COMMIT (1), and a value of six, version 0 and the
// coordinator's epoch. A record a producer wrote in that shape would not be a JSON document
// either, and would have become a dead letter.
func isTxnMarker(m *kafka.Message) bool {
	k, v := m.Key, m.Value
	return len(k) == 4 && k[0] == 0 && k[1] == 0 && k[2] == 0 && k[3] <= 1 &&
		len(v) == 6 && v[0] == 0 && v[1] == 0 && len(m.Headers) == 0
}

// readerFailed records a fetcher's error (the fetcher retries it itself): a broker that
// stays unreachable is reported by ReadBatch after stallTimeout.
func (s *Source) readerFailed(format string, args ...any) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.failSince.IsZero() {
		s.failSince = time.Now()
	}
	s.lastFail = fmt.Sprintf(format, args...)
}

// ReadBatch returns the records that arrived, up to maxDocs, waiting up to maxWait for the first.
func (s *Source) ReadBatch(ctx context.Context, maxDocs int, maxWait time.Duration) (connectors.Batch, error) {
	var b connectors.Batch
	got, n := s.got[:0], 0
	// take adds a fetch to the batch, up to maxDocs records; the rest waits in s.pending.
	take := func(f fetched) {
		if k := maxDocs - n; len(f.msgs) > k {
			s.pending = fetched{p: f.p, msgs: f.msgs[k:], next: f.next}
			// The head's capacity ends where the rest begins, so that reusing it
			// (fetchBufs) cannot write over the records still pending.
			f.msgs, f.next = f.msgs[:k:k], f.msgs[k].Offset
		}
		got = append(got, f)
		n += len(f.msgs)
	}
	if s.pending.p != nil {
		f := s.pending
		s.pending = fetched{}
		take(f)
	} else {
		t := time.NewTimer(maxWait)
		select {
		case f := <-s.recs:
			t.Stop()
			take(f)
		case <-t.C:
			return s.quiet(b)
		case <-ctx.Done():
			t.Stop()
			return b, nil
		}
	}
	// Take what has arrived, then build the batch's documents in one buffer sized for them,
	// so it is allocated once per batch rather than grown by copying.
	for n < maxDocs && s.pending.p == nil {
		select {
		case f := <-s.recs:
			take(f)
			continue
		default:
		}
		break
	}
	s.got = got
	size := 0
	for _, f := range got {
		for i := range f.msgs {
			m := &f.msgs[i]
			size += len(m.Value) + len(m.Key) + 160 + stampRoom
			for _, h := range m.Headers {
				size += len(h.Key) + len(h.Value) + 32
			}
		}
	}
	size = bufferSize(size + size/8)
	buf, ok := s.free.get()
	if !ok || cap(buf) < size {
		buf = make([]byte, 0, size)
	}
	b.Inputs = make([]pipeline.Input, 0, n)
	now := time.Now()
	for i := range got {
		f := &got[i]
		if f.err != nil {
			return b, s.c.explain(fmt.Errorf("reading %s: %w", splitName(f.p.topic, f.p.partition), f.err), "")
		}
		if f.next > f.p.next.Load() {
			f.p.next.Store(f.next)
		}
		if len(f.msgs) == 0 {
			*f = fetched{}
			continue
		}
		for j := range f.msgs {
			m := &f.msgs[j]
			var in pipeline.Input
			buf, in = s.record(buf, f.p, m)
			b.Inputs = append(b.Inputs, in)
			b.Bytes += int64(len(m.Value))
		}
		f.p.hwm.Store(f.msgs[len(f.msgs)-1].HighWaterMark)
		f.p.lastData = now
		f.p.isIdle.Store(false)
		s.fetchBufs.put(f.msgs[:0])
		*f = fetched{} // the records' bytes are not kept past the batch
	}
	// The batch's buffer comes back once the engine is done with it. buf may have grown past
	// its first array; the final one is the one to reuse.
	b.Release = func() { s.free.put(buf[:0]) }
	s.errMu.Lock()
	s.failSince, s.lastFail = time.Time{}, ""
	s.errMu.Unlock()
	b.Idle = s.idleSplits(now)
	s.autoCommit(now)
	return b, nil
}

// quiet is a read that found no records: partitions may have gone idle, and readers that keep
// failing become an error.
func (s *Source) quiet(b connectors.Batch) (connectors.Batch, error) {
	now := time.Now()
	s.errMu.Lock()
	since, msg := s.failSince, s.lastFail
	s.errMu.Unlock()
	if !since.IsZero() && now.Sub(since) >= stallTimeout {
		// The readers kept failing and nothing arrived: the topic may just be quiet after
		// a blip, so ask a broker before reporting an outage.
		if err := s.c.probe(s.ctx); err != nil {
			return b, fmt.Errorf("%w (the partitions' readers have failed for %s: %s)", err, now.Sub(since).Round(time.Second), msg)
		}
		s.errMu.Lock()
		s.failSince, s.lastFail = time.Time{}, ""
		s.errMu.Unlock()
	}
	b.Idle = s.idleSplits(now)
	return b, nil
}

// idleSplits marks the partitions that have had no record for partitionIdleTimeout and
// returns those that just went idle.
func (s *Source) idleSplits(now time.Time) []int32 {
	if s.idle <= 0 {
		return nil
	}
	var out []int32
	for _, p := range s.parts {
		if !p.isIdle.Load() && now.Sub(p.lastData) >= s.idle {
			p.isIdle.Store(true)
			out = append(out, p.split)
		}
	}
	return out
}

// record turns a Kafka record into an input: the value parsed to BSON, the stream metadata
// {source: {type, topic, partition, offset, key, headers, ts}}, the record's timestamp as event
// time. A value that is not a document, or a key that fails keyFormat with keyFormatError
// dlq, sets Input.Err. Both documents are appended to buf, which the batch shares.
func (s *Source) record(buf []byte, p *part, m *kafka.Message) ([]byte, pipeline.Input) {
	// The metadata is built here and the document by ejson: both well-formed by construction.
	in := pipeline.Input{Time: m.Time.UnixMilli(), Partition: p.split, Checked: true}
	key, keyErr := s.key(m.Key)
	if keyErr != nil && !s.keyDLQ {
		key, keyErr = bson.RawValue{}, nil // passThrough: the document goes on without its key
	}
	start := len(buf)
	idx, buf := bsoncore.AppendDocumentStart(buf)
	sidx, buf := bsoncore.AppendDocumentElementStart(buf, "source")
	buf = bsoncore.AppendStringElement(buf, "type", "kafka")
	buf = bsoncore.AppendStringElement(buf, "topic", p.topic)
	buf = bsoncore.AppendInt32Element(buf, "partition", p.partition)
	buf = bsoncore.AppendInt64Element(buf, "offset", m.Offset)
	if key.Type != 0 {
		buf = bsoncore.AppendValueElement(buf, "key", bsoncore.Value{Type: bsoncore.Type(key.Type), Data: key.Value})
	}
	if len(m.Headers) > 0 {
		aidx, b := bsoncore.AppendArrayElementStart(buf, "headers")
		for i, h := range m.Headers {
			hidx, b2 := bsoncore.AppendDocumentElementStart(b, strconv.Itoa(i))
			b2 = bsoncore.AppendStringElement(b2, "k", h.Key)
			b2 = bsoncore.AppendBinaryElement(b2, "v", 0, h.Value)
			b, _ = bsoncore.AppendDocumentEnd(b2, hidx)
		}
		buf, _ = bsoncore.AppendArrayEnd(b, aidx)
	}
	buf = bsoncore.AppendDateTimeElement(buf, "ts", m.Time.UnixMilli())
	buf, _ = bsoncore.AppendDocumentEnd(buf, sidx)
	buf, _ = bsoncore.AppendDocumentEnd(buf, idx)
	in.Meta = bson.Raw(buf[start:len(buf):len(buf)])
	if keyErr != nil {
		in.Err = keyErr
		return buf, in
	}
	payload := m.Value
	switch {
	case len(payload) == 0:
		in.Err = errors.New("the Kafka record has an empty value: a document is expected")
		return buf, in
	case len(payload) > MaxMessageBytes:
		in.Err = fmt.Errorf("the Kafka record's value is %d bytes, over the %d-byte document limit", len(payload), MaxMessageBytes)
		return buf, in
	}
	if body, _, ok := ejson.StripConfluentHeader(payload); ok {
		payload = body
	}
	start = len(buf)
	out, err := ejson.AppendBSON(buf, payload)
	if err != nil {
		in.Err = fmt.Errorf("the Kafka record's value is not a JSON document: %w", err)
		return buf[:start], in
	}
	// Room after the document for the engine to stamp the time field in place (Input.Room).
	end := len(out)
	buf = append(out, make([]byte, stampRoom)...)
	in.Doc, in.Room = bson.Raw(buf[start:end:len(buf)]), true
	return buf, in
}

// stampRoom is the room left after each document for the time field the engine stamps in
// place: a date element named with up to 21 bytes (tsFieldName is usually "_ts").
const stampRoom = 32

// scratch keeps b as the key's scratch buffer: record copies the key into the batch's buffer at
// once, so one buffer serves every record.
func (s *Source) scratch(b []byte) []byte {
	s.keyBuf = b
	return b
}

// appendBSONString appends a BSON string value (int32 length with the NUL, bytes, NUL).
func appendBSONString(dst, b []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(b)+1))
	return append(append(dst, b...), 0)
}

// key decodes a record key per keyFormat (spec §3.1.1): binData (the bytes), string (UTF-8),
// json (a JSON value), int (4 bytes, big-endian, as Kafka's IntegerSerializer writes) or long
// (8 bytes, big-endian). A missing key stays missing.
func (s *Source) key(k []byte) (bson.RawValue, error) {
	if k == nil {
		return bson.RawValue{}, nil
	}
	switch s.keyFormat {
	case "string":
		if !utf8.Valid(k) {
			return bson.RawValue{}, errors.New("the Kafka record's key is not UTF-8, as keyFormat string requires")
		}
		return bson.RawValue{Type: bson.TypeString, Value: s.scratch(appendBSONString(s.keyBuf[:0], k))}, nil
	case "int":
		if len(k) != 4 {
			return bson.RawValue{}, fmt.Errorf("the Kafka record's key is %d bytes; keyFormat int needs 4 (a big-endian int32)", len(k))
		}
		return bson.RawValue{Type: bson.TypeInt32, Value: s.scratch(bsoncore.AppendInt32(s.keyBuf[:0], int32(binary.BigEndian.Uint32(k))))}, nil
	case "long":
		if len(k) != 8 {
			return bson.RawValue{}, fmt.Errorf("the Kafka record's key is %d bytes; keyFormat long needs 8 (a big-endian int64)", len(k))
		}
		return bson.RawValue{Type: bson.TypeInt64, Value: s.scratch(bsoncore.AppendInt64(s.keyBuf[:0], int64(binary.BigEndian.Uint64(k))))}, nil
	case "json":
		v, err := jsonValue(k)
		if err != nil {
			return bson.RawValue{}, fmt.Errorf("the Kafka record's key is not JSON, as keyFormat json requires: %w", err)
		}
		return v, nil
	}
	return bson.RawValue{Type: bson.TypeBinary, Value: s.scratch(bsoncore.AppendBinary(s.keyBuf[:0], 0, k))}, nil
}

// Positions returns {topic, partition, offset, cluster} of every partition, offset being the
// next record to read and cluster the id of the cluster the offsets are of.
func (s *Source) Positions() []store.SplitPosition {
	out := make([]store.SplitPosition, len(s.parts))
	for i, p := range s.parts {
		pos := bsoncore.NewDocumentBuilder().AppendString("topic", p.topic).AppendInt32("partition", p.partition).
			AppendInt64("offset", p.next.Load()).AppendString("cluster", s.cluster).Build()
		out[i] = store.SplitPosition{Split: splitName(p.topic, p.partition), Position: pos}
	}
	return out
}

// CheckpointComplete records the checkpoint's offsets and commits them to the consumer group,
// so Kafka tooling sees the group's lag. A failed commit is logged, not fatal: the checkpoint,
// not the group, is what a restart resumes from.
func (s *Source) CheckpointComplete(ctx context.Context, _ int64, positions []store.SplitPosition) {
	offsets := map[string]int64{}
	for _, pos := range positions {
		if off, err := bson.Raw(pos.Position).LookupErr("offset"); err == nil {
			offsets[pos.Split] = off.AsInt64()
		}
	}
	for _, p := range s.parts {
		if off, ok := offsets[splitName(p.topic, p.partition)]; ok {
			p.checkpoint.Store(off)
		}
	}
	if s.commit {
		s.commitOffsets(ctx, offsets)
	}
}

// autoCommit commits what sp.process() has read to the group it names, at most once a second.
func (s *Source) autoCommit(now time.Time) {
	if !s.autoRead || now.Sub(s.lastCommit) < time.Second {
		return
	}
	s.lastCommit = now
	offsets := map[string]int64{}
	for _, p := range s.parts {
		offsets[splitName(p.topic, p.partition)] = p.next.Load()
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.commitOffsets(s.ctx, offsets)
	}()
}

// commitOffsets commits offsets to the group as a simple (generation -1) commit, as a
// consumer that assigns its own partitions does.
func (s *Source) commitOffsets(ctx context.Context, offsets map[string]int64) {
	s.commitMu.Lock()
	defer s.commitMu.Unlock()
	req := &kafka.OffsetCommitRequest{GroupID: s.group, GenerationID: -1, Topics: map[string][]kafka.OffsetCommit{}}
	for _, p := range s.parts {
		if off, ok := offsets[splitName(p.topic, p.partition)]; ok {
			req.Topics[p.topic] = append(req.Topics[p.topic], kafka.OffsetCommit{Partition: int(p.partition), Offset: off})
		}
	}
	ctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	resp, err := s.c.client().OffsetCommit(ctx, req)
	if err == nil {
		for topic, list := range resp.Topics {
			for _, pc := range list {
				if pc.Error != nil && err == nil {
					err = fmt.Errorf("%s: %w", splitName(topic, int32(pc.Partition)), pc.Error)
				}
			}
		}
	}
	if err != nil {
		s.log().Warn("committing offsets to the consumer group failed; the checkpoint holds them", "group", s.group, "err", s.c.explain(err, ""))
		return
	}
	for _, p := range s.parts {
		if off, ok := offsets[splitName(p.topic, p.partition)]; ok {
			p.committed.Store(off)
		}
	}
}

func (s *Source) log() *slog.Logger { return logger(s.env) }

func logger(env connectors.Env) *slog.Logger {
	l := env.Logger
	if l == nil {
		l = slog.Default()
	}
	return l.With("workspace", env.Workspace, "processor", env.Processor)
}

// Partitions reports every partition for stats (kafkaPartitions).
func (s *Source) Partitions() []connectors.PartitionStats {
	out := make([]connectors.PartitionStats, len(s.parts))
	for i, p := range s.parts {
		lag := int64(-1)
		if hw, c := p.hwm.Load(), p.committed.Load(); hw >= 0 && c >= 0 {
			lag = max(hw-c, 0)
		}
		out[i] = connectors.PartitionStats{Topic: p.topic, Partition: p.partition, Split: p.split, CurrentOffset: p.next.Load(),
			CheckpointOffset: p.checkpoint.Load(), ConsumerGroupLag: lag, IsIdle: p.isIdle.Load()}
	}
	return out
}

// Close stops the fetchers and waits for their goroutines.
func (s *Source) Close() error {
	s.closeFetchers()
	return nil
}

func (s *Source) closeFetchers() {
	if s.cancel != nil {
		s.cancel()
	}
	// A fetch waits up to fetchMaxWait for records, and longer on a broker that stopped
	// answering: closing the connections ends it at once.
	for _, p := range s.parts {
		p.connMu.Lock()
		if p.conn != nil {
			_ = p.conn.Close()
		}
		p.connMu.Unlock()
	}
	s.wg.Wait()
}
