package kafka

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/ejson"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/pipeline/expr"
)

// Tuning of the producer. kafka-go's defaults (a batch waits up to 1 s to fill) cap a producer
// near 1,000 records/s; Atlas buffers 5 ms (spec §3.8).
const (
	batchTimeout = 5 * time.Millisecond
	batchSize    = 1000
	// batchOverhead is kept free in a produce batch for the record batch's own framing: a
	// broker refuses a batch over its message.max.bytes as a whole (MESSAGE_TOO_LARGE).
	batchOverhead = 16 << 10
	// maxInFlight bounds the records handed to the writer and not yet acknowledged: past it
	// WriteBatch waits, so a slow broker slows the processor instead of filling memory.
	maxInFlight = 20_000
	// defaultMaxMessageBytes is Kafka's default message.max.bytes (1 MiB); the connection's
	// config may raise it.
	defaultMaxMessageBytes = 1 << 20
)

// Sink is a Kafka $emit: an asynchronous kafka-go Writer whose acknowledgements Flush waits for.
type Sink struct {
	env       connectors.Env
	c         *conn
	w         *kafka.Writer
	counts    *partitionCounts // w's transport
	topic     string
	topicExpr expr.Expr
	key       expr.Expr
	keyFormat string
	headers   expr.Expr
	tombstone expr.Expr
	format    ejson.Options
	maxBytes  int
	metaField string
	// free holds value buffers of acknowledged batches for reuse (getValues).
	free freeList[*values]

	mu       sync.Mutex
	inFlight int
	err      error
	changed  chan struct{}

	evalEnv expr.Env // reused for every document's expressions
}

// emitConfig lists the options of $emit.config for Kafka (spec §3.8).
var emitConfig = []string{"acks", "compression_type", "dateFormat", "headers", "key", "keyFormat", "outputFormat", "tombstoneWhen"}

// NewSink reads the $emit options; like NewSource it does not connect.
func NewSink(env connectors.Env, sink *pipeline.Sink) (connectors.Sink, error) {
	c, err := newConn(env.Connection)
	if err != nil {
		return nil, err
	}
	s := &Sink{env: env, c: c, keyFormat: "binData", maxBytes: defaultMaxMessageBytes, metaField: env.StreamMetaField, free: freeList[*values]{max: freeValues},
		changed: make(chan struct{}, 1)}
	if s.metaField == "" {
		s.metaField = "_stream_meta"
	}
	if mb := env.Connection.Kafka.Config["message.max.bytes"]; mb != "" {
		n, err := strconv.Atoi(mb)
		if err != nil || n < 4*batchOverhead {
			return nil, connectors.Invalid("connection %q config.message.max.bytes: %q is not a number of bytes of at least %d", env.Connection.Name, mb, 4*batchOverhead)
		}
		s.maxBytes = n
	}
	opts := sink.Options
	switch t := opts.Lookup("topic"); {
	case t.Type == bson.TypeString && !strings.HasPrefix(t.StringValue(), "$"):
		s.topic = t.StringValue()
	case t.Type == bson.TypeString, t.Type == bson.TypeEmbeddedDocument: // "$field" or an expression
		if s.topicExpr, err = expr.Compile(t); err != nil {
			return nil, connectors.Invalid("$emit.topic: %v", err)
		}
	default:
		return nil, connectors.Invalid("$emit.topic: is required: a topic name or an expression")
	}
	// The connection's config (Atlas's allow-list, Kafka's property names) sets the producer's
	// defaults; the stage's config overrides acks and the compression.
	acks := kafka.RequireAll
	var codec compress.Compression
	timeout, linger, maxBytes, attempts := 10*time.Second, batchTimeout, int64(s.maxBytes-batchOverhead), 5
	cc := env.Connection.Kafka.Config
	if v, ok := cc["acks"]; ok {
		if acks, err = parseAcks(v); err != nil {
			return nil, connectors.Invalid("connection %q config.acks: %v", env.Connection.Name, err)
		}
	}
	if v, ok := cc["compression.type"]; ok {
		if codec, err = parseCodec(v); err != nil {
			return nil, connectors.Invalid("connection %q config.compression.type: %v", env.Connection.Name, err)
		}
	}
	for key, dst := range map[string]*time.Duration{"linger.ms": &linger, "request.timeout.ms": &timeout} {
		if v, ok := cc[key]; ok {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 {
				return nil, connectors.Invalid("connection %q config.%s: %q is not a number of milliseconds", env.Connection.Name, key, v)
			}
			*dst = time.Duration(n) * time.Millisecond
		}
	}
	if v, ok := cc["batch.size"]; ok {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n <= 0 {
			return nil, connectors.Invalid("connection %q config.batch.size: %q is not a number of bytes", env.Connection.Name, v)
		}
		maxBytes = min(n, int64(s.maxBytes-batchOverhead))
	}
	if v, ok := cc["retries"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, connectors.Invalid("connection %q config.retries: %q is not a count", env.Connection.Name, v)
		}
		attempts = min(n, 100) + 1
	}
	elems, err := stageConfig(opts, "$emit")
	if err != nil {
		return nil, err
	}
	for _, e := range elems {
		v := e.Value()
		field := "$emit.config." + e.Key()
		switch e.Key() {
		case "acks":
			str, isStr := v.StringValueOK()
			if n, isNum := v.AsInt64OK(); isNum {
				str, isStr = strconv.FormatInt(n, 10), true
			}
			if !isStr {
				return nil, connectors.Invalid("%s: must be -1, 0, 1 or \"all\"", field)
			}
			if acks, err = parseAcks(str); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		case "compression_type":
			str, _ := v.StringValueOK()
			if codec, err = parseCodec(str); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		case "dateFormat":
			switch str, _ := v.StringValueOK(); str {
			case "default":
			case "ISO8601":
				s.format.ISODates = true
			default:
				return nil, connectors.Invalid("%s: must be default or ISO8601", field)
			}
		case "outputFormat":
			str, _ := v.StringValueOK()
			f, err := ejson.ParseFormat(str)
			if err != nil {
				return nil, connectors.Invalid("%s: must be relaxedJson, canonicalJson or basicJson", field)
			}
			s.format.Format = f
		case "keyFormat":
			if s.keyFormat, err = keyFormat(v, field); err != nil {
				return nil, err
			}
		case "key":
			if s.key, err = expr.Compile(v); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		case "headers":
			if s.headers, err = expr.Compile(v); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		case "tombstoneWhen":
			if s.tombstone, err = expr.Compile(v); err != nil {
				return nil, connectors.Invalid("%s: %v", field, err)
			}
		default:
			return nil, connectors.Invalid("%s: is not an option of a Kafka $emit (%v)", field, emitConfig)
		}
	}
	if _, err := opts.LookupErr("schemaRegistry"); err == nil {
		return nil, connectors.Invalid("$emit.schemaRegistry: Avro with a schema registry is not supported by spid yet")
	}
	// The writer routes each batch to the partition's leader as its transport's metadata
	// says; a leader that moved answers NOT_LEADER_OR_FOLLOWER until that metadata is
	// refreshed, and the transport refreshes it only on its TTL. A second keeps that shorter
	// than the writer's retries (about 2.5 s by default), so that a leader change is retried
	// through rather than failing the attempt.
	t := c.transport()
	t.MetadataTTL = time.Second
	s.counts = &partitionCounts{RoundTripper: t}
	s.w = &kafka.Writer{Addr: kafka.TCP(c.brokers...), Transport: s.counts, Balancer: &kafka.Murmur2Balancer{},
		BatchTimeout: linger, BatchSize: batchSize, BatchBytes: maxBytes, RequiredAcks: acks, Compression: codec,
		Async: true, Completion: s.completed, AllowAutoTopicCreation: true, MaxAttempts: attempts,
		WriteBackoffMin: 100 * time.Millisecond, WriteBackoffMax: time.Second, WriteTimeout: timeout, ReadTimeout: timeout}
	return s, nil
}

// partitionCounts is the Writer's transport with a cache in front of one question. kafka-go's
// Writer asks for a topic's metadata for every record it is given (Writer.partitions, to pick
// the record's partition), and the Transport answers each from its own cache with a fresh copy
// of the response: about half a microsecond and three allocations per record. partitionCounts
// keeps each topic's successful answer for partitionCountsTTL and passes every other request
// through; the Transport refreshes its own metadata every second (MetadataTTL) anyway.
type partitionCounts struct {
	kafka.RoundTripper
	mu      sync.Mutex
	answers map[string]partitionAnswer
	// clock is the time the sink stamped before its last WriteMessages (stamp), in Unix
	// nanoseconds; 0 until then, and RoundTrip reads the clock itself. The question comes
	// once per record, and reading the clock for each cost about as much as the cache saves.
	clock atomic.Int64
}

type partitionAnswer struct {
	res *metadata.Response
	at  int64 // Unix nanoseconds
}

// stamp sets the time RoundTrip judges the age of answers by, for the records that follow.
func (p *partitionCounts) stamp() { p.clock.Store(time.Now().UnixNano()) }

// partitionCountsTTL is how long partitionCounts keeps an answer.
const partitionCountsTTL = time.Second

// RoundTrip answers a metadata request for one topic from the cache when it can.
func (p *partitionCounts) RoundTrip(ctx context.Context, addr net.Addr, req kafka.Request) (kafka.Response, error) {
	m, ok := req.(*metadata.Request)
	if !ok || len(m.TopicNames) != 1 {
		return p.RoundTripper.RoundTrip(ctx, addr, req)
	}
	topic, now := m.TopicNames[0], p.clock.Load()
	if now == 0 {
		now = time.Now().UnixNano()
	}
	p.mu.Lock()
	a, hit := p.answers[topic]
	p.mu.Unlock()
	if hit && now-a.at < int64(partitionCountsTTL) {
		return a.res, nil
	}
	res, err := p.RoundTripper.RoundTrip(ctx, addr, req)
	if err != nil {
		return nil, err
	}
	// Only an answer without errors is kept: a missing topic is asked about again.
	if r, ok := res.(*metadata.Response); ok && len(r.Topics) == 1 && r.Topics[0].Name == topic && r.Topics[0].ErrorCode == 0 {
		p.mu.Lock()
		if p.answers == nil {
			p.answers = make(map[string]partitionAnswer)
		}
		if len(p.answers) >= maxCachedTopics {
			clear(p.answers)
		}
		p.answers[topic] = partitionAnswer{res: r, at: now}
		p.mu.Unlock()
	}
	return res, nil
}

// maxCachedTopics bounds partitionCounts for a topic expression that names many topics.
const maxCachedTopics = 1000

// parseAcks reads acks: -1 or "all" (every in-sync replica), 1 (the leader) or 0 (none).
func parseAcks(v string) (kafka.RequiredAcks, error) {
	switch v {
	case "all", "-1":
		return kafka.RequireAll, nil
	case "1":
		return kafka.RequireOne, nil
	case "0":
		return kafka.RequireNone, nil
	}
	return 0, fmt.Errorf("must be -1, 0, 1 or \"all\", not %q", v)
}

// parseCodec reads a compression type: none, gzip, snappy, lz4 or zstd.
func parseCodec(v string) (compress.Compression, error) {
	switch v {
	case "none":
		return 0, nil
	case "gzip":
		return compress.Gzip, nil
	case "snappy":
		return compress.Snappy, nil
	case "lz4":
		return compress.Lz4, nil
	case "zstd":
		return compress.Zstd, nil
	}
	return 0, fmt.Errorf("must be none, gzip, snappy, lz4 or zstd, not %q", v)
}

// completed is the writer's acknowledgement of a batch.
func (s *Sink) completed(msgs []kafka.Message, err error) {
	for i := range msgs {
		if vb, ok := msgs[i].WriterData.(*values); ok && vb.refs.Add(-1) == 0 {
			s.putValues(vb)
		}
	}
	s.mu.Lock()
	s.inFlight -= len(msgs)
	if err != nil && s.err == nil {
		topic := s.topic
		if len(msgs) > 0 {
			topic = msgs[0].Topic
		}
		s.err = s.c.explain(fmt.Errorf("$emit: producing %d records to topic %q failed: %w", len(msgs), topic, err), "")
	}
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
}

// wait blocks until cond holds (under s.mu) or the writer failed.
func (s *Sink) wait(ctx context.Context, cond func() bool) error {
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		s.mu.Lock()
		ok, err := cond(), s.err
		s.mu.Unlock()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-s.changed:
		case <-tick.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WriteBatch turns documents into records and hands them to the writer. A document whose
// topic, key, headers or tombstoneWhen cannot be evaluated or serialized, or whose record
// would exceed message.max.bytes, becomes a dead-letter record.
func (s *Sink) WriteBatch(ctx context.Context, docs []bson.Raw) ([]bson.Raw, error) {
	msgs := make([]kafka.Message, 0, len(docs))
	var rejected []bson.Raw
	// JSON is about as long as the BSON it comes from: one buffer for the batch's values,
	// kept for reuse once the broker has acknowledged its last record.
	size := 0
	for _, d := range docs {
		size += len(d) + len(d)/4
	}
	vb := s.getValues(size)
	buf := vb.b
	for _, d := range docs {
		m, out, err := s.message(buf, d)
		if err != nil {
			rejected = append(rejected, s.dead(d, err))
			continue
		}
		buf = out
		m.WriterData = vb
		msgs = append(msgs, m)
	}
	vb.b = buf
	if len(msgs) == 0 {
		s.putValues(vb)
		return rejected, nil
	}
	vb.refs.Store(int32(len(msgs)))
	if err := s.wait(ctx, func() bool { return s.inFlight+len(msgs) <= maxInFlight || s.inFlight == 0 }); err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.inFlight += len(msgs)
	s.mu.Unlock()
	s.counts.stamp()
	if err := s.w.WriteMessages(ctx, msgs...); err != nil {
		// The writer may hold some of the records: the buffer is left to the collector.
		s.mu.Lock()
		s.inFlight -= len(msgs)
		s.mu.Unlock()
		if errors.Is(err, kafka.UnknownTopicOrPartition) {
			// kafka-go does not say which topic: the batch's topics are named.
			return nil, s.c.explain(fmt.Errorf("$emit: topic %s does not exist, and the broker did not create it (it creates topics only with auto.create.topics.enable): %w",
				topicsOf(msgs), err), "")
		}
		return nil, s.c.explain(fmt.Errorf("$emit: %w", err), "")
	}
	return rejected, nil
}

// topicsOf names the distinct topics of msgs, quoted, up to three.
func topicsOf(msgs []kafka.Message) string {
	var names []string
	for _, m := range msgs {
		q := strconv.Quote(m.Topic)
		if !slices.Contains(names, q) {
			if len(names) == 3 {
				return strings.Join(names, ", ") + ", ..."
			}
			names = append(names, q)
		}
	}
	return strings.Join(names, ", ")
}

// values is the buffer of one batch's record values; refs counts its records the broker has
// not acknowledged yet.
type values struct {
	b    []byte
	refs atomic.Int32
}

// freeValues is how many value buffers a sink keeps for reuse: enough for the batches in
// flight at once (maxInFlight records), so that a steady stream writes into memory it has
// touched before rather than into fresh pages. A sync.Pool would lose them at every
// collection.
const freeValues = 24

// getValues returns a buffer for a batch's values of about size bytes: the last one given
// back when it is big enough.
func (s *Sink) getValues(size int) *values {
	if vb, ok := s.free.get(); ok && cap(vb.b) >= size {
		return vb
	}
	return &values{b: make([]byte, 0, bufferSize(size))}
}

// putValues keeps vb for reuse, or leaves it to the collector when enough are kept.
func (s *Sink) putValues(vb *values) {
	vb.b = vb.b[:0]
	s.free.put(vb)
}

// CopiesDocs marks the sink as a connectors.Copier: a record's value is written into the
// sink's own buffers, and its key and headers are copied, so WriteBatch keeps nothing of the
// documents it is given.
func (s *Sink) CopiesDocs() {}

// dead is the dead-letter record of a document $emit could not send.
func (s *Sink) dead(d bson.Raw, err error) bson.Raw {
	var meta bson.Raw
	if v, e := d.LookupErr(s.metaField); e == nil {
		meta, _ = v.DocumentOK()
	}
	return pipeline.DeadLetter(nil, s.env.Processor, time.Now().UnixMilli(), "$emit", err.Error(), d, meta, s.metaField)
}

// message builds the record of one output document; its value is appended to buf.
func (s *Sink) message(buf []byte, d bson.Raw) (kafka.Message, []byte, error) {
	env := &s.evalEnv
	env.Root, env.Meta, env.MetaDoc = d, nil, nil
	if s.topicExpr != nil || s.key != nil || s.headers != nil || s.tombstone != nil {
		// Only expressions read the stream metadata ($meta).
		if v, err := d.LookupErr(s.metaField); err == nil {
			env.MetaDoc, _ = v.DocumentOK()
		}
	}
	var m kafka.Message
	m.Topic = s.topic
	if s.topicExpr != nil {
		v, err := s.topicExpr.Eval(env)
		if err != nil {
			return m, buf, fmt.Errorf("topic: %w", err)
		}
		t, ok := v.StringValueOK()
		if !ok || t == "" {
			return m, buf, fmt.Errorf("topic must evaluate to a non-empty string, not %s", typeName(v))
		}
		m.Topic = t
	}
	if s.key != nil {
		v, err := s.key.Eval(env)
		if err != nil {
			return m, buf, fmt.Errorf("key: %w", err)
		}
		if m.Key, err = serialize(v, s.keyFormat); err != nil {
			return m, buf, fmt.Errorf("key: %w", err)
		}
	}
	if s.headers != nil {
		v, err := s.headers.Eval(env)
		if err != nil {
			return m, buf, fmt.Errorf("headers: %w", err)
		}
		if m.Headers, err = headers(v); err != nil {
			return m, buf, fmt.Errorf("headers: %w", err)
		}
	}
	tomb := false
	if s.tombstone != nil {
		v, err := s.tombstone.Eval(env)
		if err != nil {
			return m, buf, fmt.Errorf("tombstoneWhen: %w", err)
		}
		b, ok := v.BooleanOK()
		if !ok {
			return m, buf, fmt.Errorf("tombstoneWhen must evaluate to a boolean, not %s", typeName(v))
		}
		tomb = b
	}
	if !tomb {
		start := len(buf)
		out, err := ejson.AppendJSON(buf, d, s.format)
		if err != nil {
			return m, buf, fmt.Errorf("the document cannot be written as %s: %w", s.format.Format, err)
		}
		buf = out
		m.Value = buf[start:len(buf):len(buf)]
	}
	if size := len(m.Value) + len(m.Key); size > s.maxBytes-batchOverhead {
		return m, buf, fmt.Errorf("the record is %d bytes, over the %d bytes a record may have under the connection's message.max.bytes of %d", size, s.maxBytes-batchOverhead, s.maxBytes)
	}
	return m, buf, nil
}

// serialize writes a key in keyFormat (spec §3.8): binData the bytes, string UTF-8, json the
// relaxed Extended JSON text, int 4 bytes and long 8 bytes big-endian.
func serialize(v bson.RawValue, format string) ([]byte, error) {
	switch format {
	case "binData":
		if _, b, ok := v.BinaryOK(); ok {
			return bytes.Clone(b), nil // b is the document's: the sink keeps no part of it
		}
		if str, ok := v.StringValueOK(); ok {
			return []byte(str), nil
		}
		return nil, fmt.Errorf("keyFormat binData needs binData or a string, not %s", typeName(v))
	case "string":
		if str, ok := v.StringValueOK(); ok {
			return []byte(str), nil
		}
		return nil, fmt.Errorf("keyFormat string needs a string, not %s", typeName(v))
	case "int":
		n, ok := exactInt(v)
		if !ok || n < math.MinInt32 || n > math.MaxInt32 {
			return nil, fmt.Errorf("keyFormat int needs a 32-bit integer, not %s", typeName(v))
		}
		return binary.BigEndian.AppendUint32(nil, uint32(int32(n))), nil
	case "long":
		n, ok := exactInt(v)
		if !ok {
			return nil, fmt.Errorf("keyFormat long needs an integer, not %s", typeName(v))
		}
		return binary.BigEndian.AppendUint64(nil, uint64(n)), nil
	case "json":
		return valueJSON(v)
	}
	return nil, fmt.Errorf("unknown keyFormat %s", format)
}

// exactInt is v as an int64 if it is an integer of any numeric type.
func exactInt(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), true
	case bson.TypeInt64:
		return v.Int64(), true
	case bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
			return int64(f), true
		}
	}
	return 0, false
}

// headers reads config.headers' value: a document {name: value} or an array [{k, v}]. Values
// are serialized by type (spec §3.8): binData the bytes, string UTF-8, int 4 and long 8 bytes
// big-endian, double 8 bytes IEEE 754 big-endian, a document as relaxed JSON, null empty.
func headers(v bson.RawValue) ([]kafka.Header, error) {
	var out []kafka.Header
	add := func(k string, v bson.RawValue) error {
		var b []byte
		switch v.Type {
		case bson.TypeBinary:
			_, b = v.Binary()
			b = bytes.Clone(b) // the document's bytes: the sink keeps no part of it
		case bson.TypeString:
			b = []byte(v.StringValue())
		case bson.TypeInt32:
			b = binary.BigEndian.AppendUint32(nil, uint32(v.Int32()))
		case bson.TypeInt64:
			b = binary.BigEndian.AppendUint64(nil, uint64(v.Int64()))
		case bson.TypeDouble:
			b = binary.BigEndian.AppendUint64(nil, math.Float64bits(v.Double()))
		case bson.TypeEmbeddedDocument:
			var err error
			if b, err = valueJSON(v); err != nil {
				return err
			}
		case bson.TypeNull:
		default:
			return fmt.Errorf("header %q: a header value must be binData, a string, an int, a long, a double, a document or null, not %s", k, typeName(v))
		}
		out = append(out, kafka.Header{Key: k, Value: b})
		return nil
	}
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, _ := v.Document().Elements()
		for _, e := range elems {
			if err := add(e.Key(), e.Value()); err != nil {
				return nil, err
			}
		}
	case bson.TypeArray:
		vals, _ := v.Array().Values()
		for i, h := range vals {
			d, ok := h.DocumentOK()
			k, kok := d.Lookup("k").StringValueOK()
			if !ok || !kok {
				return nil, fmt.Errorf("element %d must be {k: <string>, v: <value>}", i)
			}
			if err := add(k, d.Lookup("v")); err != nil {
				return nil, err
			}
		}
	default:
		return nil, fmt.Errorf("must evaluate to a document or an array of {k, v}, not %s", typeName(v))
	}
	return out, nil
}

// valueJSON is the relaxed Extended JSON text of any value.
func valueJSON(v bson.RawValue) ([]byte, error) {
	if v.Type == bson.TypeEmbeddedDocument {
		return ejson.AppendJSON(nil, v.Document(), ejson.Options{})
	}
	doc := bsoncore.NewDocumentBuilder().AppendValue("v", bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value}).Build()
	j, err := ejson.AppendJSON(nil, bson.Raw(doc), ejson.Options{})
	if err != nil {
		return nil, err
	}
	// {"v":<value>} → <value>
	return j[5 : len(j)-1], nil
}

func typeName(v bson.RawValue) string {
	if v.Type == 0 {
		return "missing"
	}
	return v.Type.String()
}

// Flush waits until the broker acknowledged every record written so far.
func (s *Sink) Flush(ctx context.Context) error {
	return s.wait(ctx, func() bool { return s.inFlight == 0 })
}

// Close stops the writer; records not yet acknowledged are abandoned, as the checkpoint they
// belong to was never committed.
func (s *Sink) Close() error {
	done := make(chan struct{})
	go func() {
		_ = s.w.Close()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		logger(s.env).Warn("the Kafka producer did not close within 15s")
	}
	return nil
}
