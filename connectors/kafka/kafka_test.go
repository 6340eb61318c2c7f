package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/protocol/metadata"
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

func connection(protocol, mech string) *store.Connection {
	return &store.Connection{Name: "k", Type: store.TypeKafka, Kafka: &store.Kafka{BootstrapServers: "127.0.0.1:1",
		Security: store.KafkaSecurity{Protocol: protocol},
		Auth:     store.KafkaAuth{Mechanism: mech, Username: "svc", Password: "pa55-w0rd-secret"}}}
}

func plan(t *testing.T, stages ...bson.D) *pipeline.Plan {
	t.Helper()
	p, err := parse(stages...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func parse(stages ...bson.D) (*pipeline.Plan, error) {
	arr := bson.A{}
	for _, s := range stages {
		arr = append(arr, s)
	}
	_, raw, err := bson.MarshalValue(arr)
	if err != nil {
		return nil, err
	}
	return pipeline.Parse(raw, pipeline.ParseOptions{})
}

func source(t *testing.T, opts bson.D) (*Source, error) {
	t.Helper()
	p, err := parse(bson.D{{Key: "$source", Value: append(bson.D{{Key: "connectionName", Value: "k"}}, opts...)}})
	if err != nil {
		return nil, &connectors.Error{Code: connectors.CodeInvalidOptions, Err: err} // the pipeline's own check
	}
	s, err := NewSource(connectors.Env{ProcessorID: "p1", Connection: connection("PLAINTEXT", "")}, p.Source)
	if err != nil {
		return nil, err
	}
	return s.(*Source), nil
}

func TestSourceOptions(t *testing.T) {
	s, err := source(t, bson.D{{Key: "topic", Value: bson.A{"a", "b", "a"}}, {Key: "config", Value: bson.D{
		{Key: "auto_offset_reset", Value: "earliest"}, {Key: "keyFormat", Value: "long"}, {Key: "keyFormatError", Value: "passThrough"}}}})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(s.topics, ",") != "a,b" || s.reset != kafka.FirstOffset || s.keyFormat != "long" || s.keyDLQ || s.group != "asp-p1-consumer" || !s.commit {
		t.Errorf("source %+v", s)
	}
	for _, c := range []struct {
		opts bson.D
		want string
	}{
		{bson.D{}, "$source.topic: is required"},
		{bson.D{{Key: "topic", Value: 3}}, "$source.topic must be a string or an array"},
		{bson.D{{Key: "topic", Value: bson.A{"a", ""}}}, "$source.topic.1: must be a topic name"},
		{bson.D{{Key: "topic", Value: "a"}, {Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "soon"}}}}, "$source.config.auto_offset_reset: must be earliest"},
		{bson.D{{Key: "topic", Value: "a"}, {Key: "config", Value: bson.D{{Key: "keyFormat", Value: "avro"}}}}, "$source.config.keyFormat: must be binData"},
		{bson.D{{Key: "topic", Value: "a"}, {Key: "config", Value: bson.D{{Key: "bogus", Value: 1}}}}, "$source.config.bogus: is not an option"},
		{bson.D{{Key: "topic", Value: "a"}, {Key: "config", Value: bson.D{{Key: "enable_auto_commit", Value: true}}}}, "needs config.group_id"},
	} {
		_, err := source(t, c.opts)
		var ce *connectors.Error
		if err == nil || !strings.Contains(err.Error(), c.want) || !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable {
			t.Errorf("%v: got %v, want 420 %q", c.opts, err, c.want)
		}
	}
}

// record builds the document and the stream metadata of a Kafka record, and dead letters for
// what is not a document.
func TestRecord(t *testing.T) {
	s, err := source(t, bson.D{{Key: "topic", Value: "in"}, {Key: "config", Value: bson.D{{Key: "keyFormat", Value: "int"}}}})
	if err != nil {
		t.Fatal(err)
	}
	p := &part{topic: "in", partition: 2, split: 5}
	at := time.UnixMilli(1_700_000_000_123)
	key := binary.BigEndian.AppendUint32(nil, 42)
	m := kafka.Message{Offset: 7, Key: key, Value: []byte(`{"a": 1, "d": {"$date": "2024-01-02T03:04:05Z"}}`), Time: at,
		Headers: []kafka.Header{{Key: "h", Value: []byte("v")}}}
	_, in := s.record(nil, p, &m)
	if in.Err != nil {
		t.Fatal(in.Err)
	}
	if in.Partition != 5 || in.Time != at.UnixMilli() {
		t.Errorf("input %+v", in)
	}
	want := `{"a": {"$numberInt":"1"},"d": {"$date":{"$numberLong":"1704164645000"}}}`
	if got := in.Doc.String(); got != want {
		t.Errorf("doc %s, want %s", got, want)
	}
	src := in.Meta.Lookup("source").Document()
	if src.Lookup("type").StringValue() != "kafka" || src.Lookup("topic").StringValue() != "in" || src.Lookup("partition").Int32() != 2 ||
		src.Lookup("offset").Int64() != 7 || src.Lookup("key").Int32() != 42 || src.Lookup("ts").DateTime() != at.UnixMilli() {
		t.Errorf("meta %s", in.Meta)
	}
	h := src.Lookup("headers", "0")
	if _, b := h.Document().Lookup("v").Binary(); h.Document().Lookup("k").StringValue() != "h" || string(b) != "v" {
		t.Errorf("headers %s", src.Lookup("headers"))
	}

	for _, c := range []struct {
		key, value []byte
		want       string
	}{
		{key, nil, "empty value"},
		{key, []byte(`{"a": `), "not a JSON document"},
		{key, []byte(`{"a": {"$date": true}}`), "not a JSON document"},
		{key, make([]byte, MaxMessageBytes+1), "over the 16777216-byte document limit"},
		{[]byte{1, 2, 3}, []byte(`{}`), "keyFormat int needs 4"},
		{key, append([]byte{0, 0, 0, 0, 9}, `{"x": 1`...), "not a JSON document"},
	} {
		m := kafka.Message{Offset: 8, Key: c.key, Value: c.value, Time: at}
		_, in := s.record(nil, p, &m)
		if in.Err == nil || !strings.Contains(in.Err.Error(), c.want) {
			t.Errorf("value %.20q key %v: err %v, want %q", c.value, c.key, in.Err, c.want)
		}
		if in.Meta.Lookup("source", "offset").Int64() != 8 {
			t.Errorf("dead letter's meta %s", in.Meta)
		}
	}
	// The Confluent header is skipped.
	m = kafka.Message{Key: key, Value: append([]byte{0, 0, 0, 0, 9}, `{"x": 1}`...)}
	if _, in := s.record(nil, p, &m); in.Err != nil || in.Doc.Lookup("x").Int32() != 1 {
		t.Errorf("confluent: %v %s", in.Err, in.Doc)
	}
	// passThrough drops a bad key and keeps the document.
	s.keyDLQ = false
	m = kafka.Message{Key: []byte{1}, Value: []byte(`{"x": 1}`)}
	if _, in := s.record(nil, p, &m); in.Err != nil || in.Meta.Lookup("source", "key").Type != 0 {
		t.Errorf("passThrough: %v %s", in.Err, in.Meta)
	}
}

func TestKeysAndHeaders(t *testing.T) {
	v := func(x any) bson.RawValue {
		typ, b, err := bson.MarshalValue(x)
		if err != nil {
			t.Fatal(err)
		}
		return bson.RawValue{Type: typ, Value: b}
	}
	for _, c := range []struct {
		val    any
		format string
		want   []byte
		err    string
	}{
		{"k1", "string", []byte("k1"), ""},
		{"k1", "binData", []byte("k1"), ""},
		{bson.Binary{Data: []byte{1, 2}}, "binData", []byte{1, 2}, ""},
		{int32(7), "int", []byte{0, 0, 0, 7}, ""},
		{int64(-1), "long", []byte{255, 255, 255, 255, 255, 255, 255, 255}, ""},
		{3.0, "int", []byte{0, 0, 0, 3}, ""},
		{bson.D{{Key: "a", Value: int32(1)}}, "json", []byte(`{"a":1}`), ""},
		{"x", "json", []byte(`"x"`), ""},
		{int64(1 << 40), "int", nil, "32-bit integer"},
		{3.5, "long", nil, "needs an integer"},
		{int32(1), "string", nil, "needs a string"},
	} {
		got, err := serialize(v(c.val), c.format)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%v as %s: err %v, want %q", c.val, c.format, err, c.err)
			}
			continue
		}
		if err != nil || string(got) != string(c.want) {
			t.Errorf("%v as %s: %q %v, want %q", c.val, c.format, got, err, c.want)
		}
	}
	hs, err := headers(v(bson.D{{Key: "s", Value: "x"}, {Key: "i", Value: int32(1)}, {Key: "n", Value: nil}, {Key: "d", Value: bson.D{{Key: "a", Value: true}}}}))
	if err != nil || len(hs) != 4 || string(hs[0].Value) != "x" || string(hs[1].Value) != "\x00\x00\x00\x01" || hs[2].Value != nil || string(hs[3].Value) != `{"a":true}` {
		t.Errorf("headers %q %v", hs, err)
	}
	hs, err = headers(v(bson.A{bson.D{{Key: "k", Value: "a"}, {Key: "v", Value: "b"}}}))
	if err != nil || len(hs) != 1 || hs[0].Key != "a" || string(hs[0].Value) != "b" {
		t.Errorf("headers from [{k, v}] %q %v", hs, err)
	}
	if _, err := headers(v(bson.D{{Key: "t", Value: true}})); err == nil {
		t.Error("a boolean header was accepted")
	}
}

// The sink turns documents it cannot send into dead letters and reads its options.
func TestSinkMessages(t *testing.T) {
	p := plan(t, bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "$t"}, {Key: "config", Value: bson.D{
			{Key: "key", Value: "$k"}, {Key: "keyFormat", Value: "int"}, {Key: "tombstoneWhen", Value: "$del"},
			{Key: "headers", Value: bson.D{{Key: "src", Value: bson.D{{Key: "$meta", Value: "stream.source.topic"}}}}}}}}}})
	sk, err := NewSink(connectors.Env{Processor: "proc", Connection: connection("PLAINTEXT", "")}, p.Sink)
	if err != nil {
		t.Fatal(err)
	}
	s := sk.(*Sink)
	defer func() { _ = s.Close() }()
	doc := func(d bson.D) bson.Raw {
		b, err := bson.Marshal(append(d, bson.E{Key: "_stream_meta", Value: bson.D{{Key: "source", Value: bson.D{{Key: "topic", Value: "in"}}}}}))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	m, _, err := s.message(nil, doc(bson.D{{Key: "t", Value: "out"}, {Key: "k", Value: int32(5)}, {Key: "del", Value: false}}))
	if err != nil || m.Topic != "out" || string(m.Key) != "\x00\x00\x00\x05" || len(m.Headers) != 1 || string(m.Headers[0].Value) != "in" || len(m.Value) == 0 {
		t.Errorf("message %+v %v", m, err)
	}
	m, _, err = s.message(nil, doc(bson.D{{Key: "t", Value: "out"}, {Key: "k", Value: int32(5)}, {Key: "del", Value: true}}))
	if err != nil || m.Value != nil {
		t.Errorf("tombstone %+v %v", m, err)
	}
	for _, c := range []struct {
		d    bson.D
		want string
	}{
		{bson.D{{Key: "t", Value: 1}, {Key: "k", Value: int32(5)}, {Key: "del", Value: false}}, "topic must evaluate to a non-empty string"},
		{bson.D{{Key: "t", Value: "out"}, {Key: "k", Value: "five"}, {Key: "del", Value: false}}, "key: keyFormat int"},
		{bson.D{{Key: "t", Value: "out"}, {Key: "k", Value: int32(5)}, {Key: "del", Value: "no"}}, "tombstoneWhen must evaluate to a boolean"},
	} {
		if _, _, err := s.message(nil, doc(c.d)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.d, err, c.want)
		}
	}
	dl := s.dead(doc(bson.D{{Key: "t", Value: 1}}), errors.New("why"))
	if dl.Lookup("operatorName").StringValue() != "$emit" || dl.Lookup("errInfo", "reason").StringValue() != "why" ||
		dl.Lookup("processorName").StringValue() != "proc" || dl.Lookup("_stream_meta", "source", "topic").StringValue() != "in" {
		t.Errorf("dead letter %s", dl)
	}
}

// explain says which failure a kafka-go error is, and never prints the password. The errors
// are built here because a wrong password against a real broker surfaces in kafka-go only as
// io.ErrUnexpectedEOF, which the e2e tests show against kfake.
func TestExplain(t *testing.T) {
	sasl, err := newConn(connection("SASL_PLAINTEXT", "SCRAM-256"))
	if err != nil {
		t.Fatal(err)
	}
	plainConn, _ := newConn(connection("PLAINTEXT", ""))
	for _, c := range []struct {
		c    *conn
		err  error
		want string
	}{
		{sasl, io.ErrUnexpectedEOF, `authentication failed: the broker closed the connection during SASL SCRAM-256 authentication of user "svc"`},
		{sasl, kafka.SASLAuthenticationFailed, "authentication failed"},
		{plainConn, &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, "Kafka broker b:1 is unreachable"},
		{plainConn, kafka.UnknownTopicOrPartition, "Kafka broker b:1: "},
	} {
		got := c.c.explain(c.err, "b:1")
		var ce *connectors.Error
		if !errors.As(got, &ce) || !ce.Retryable || ce.Code != connectors.CodeKafkaConnection || !strings.Contains(got.Error(), c.want) {
			t.Errorf("%v: %v, want retryable 419 %q", c.err, got, c.want)
		}
		if strings.Contains(got.Error(), "pa55-w0rd-secret") {
			t.Errorf("secret in %v", got)
		}
	}
}

// countingTransport stands in for a broker's transport in TestPartitionCounts: it answers
// metadata requests with a canned response and counts the requests that reach it. It is a
// stub of the caller's side only; the answers' contents are what a broker returns.
type countingTransport struct {
	calls   int
	missing bool
}

func (c *countingTransport) RoundTrip(_ context.Context, _ net.Addr, req kafka.Request) (kafka.Response, error) {
	c.calls++
	m, ok := req.(*metadata.Request)
	if !ok {
		return nil, errors.New("not a metadata request")
	}
	t := metadata.ResponseTopic{Name: m.TopicNames[0], Partitions: make([]metadata.ResponsePartition, 4)}
	if c.missing {
		t.ErrorCode = int16(kafka.UnknownTopicOrPartition)
	}
	return &metadata.Response{Topics: []metadata.ResponseTopic{t}}, nil
}

// The Writer's question "how many partitions has topic t", asked for every record, reaches
// the transport once per partitionCountsTTL and topic; an answer with an error (a topic that
// does not exist yet) is asked again every time, and other requests pass through.
func TestPartitionCounts(t *testing.T) {
	inner := &countingTransport{}
	p := &partitionCounts{RoundTripper: inner}
	ask := func(topic string) *metadata.Response {
		t.Helper()
		res, err := p.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{topic}})
		if err != nil {
			t.Fatal(err)
		}
		return res.(*metadata.Response)
	}
	for range 1000 {
		if r := ask("out"); len(r.Topics[0].Partitions) != 4 {
			t.Fatalf("answer %+v", r)
		}
	}
	if inner.calls != 1 {
		t.Fatalf("1000 questions about one topic reached the transport %d times, want 1", inner.calls)
	}
	ask("other")
	if inner.calls != 2 {
		t.Fatalf("a second topic: %d calls, want 2", inner.calls)
	}
	p.answers["out"] = partitionAnswer{res: p.answers["out"].res, at: time.Now().Add(-partitionCountsTTL).UnixNano()}
	ask("out")
	if inner.calls != 3 {
		t.Fatalf("an expired answer: %d calls, want 3", inner.calls)
	}
	// Stamped by the sink, answers age by the stamped time, not by the clock.
	p.stamp()
	ask("out")
	if inner.calls != 3 {
		t.Fatalf("a fresh answer after a stamp: %d calls, want 3", inner.calls)
	}
	p.clock.Add(int64(partitionCountsTTL))
	ask("out")
	if inner.calls != 4 {
		t.Fatalf("an answer a stamped second old: %d calls, want 4", inner.calls)
	}
	p.clock.Store(0)
	inner.missing = true
	for range 3 {
		if r := ask("missing"); r.Topics[0].ErrorCode == 0 {
			t.Fatal("the error was lost")
		}
	}
	if inner.calls != 7 {
		t.Fatalf("a missing topic is asked about each time: %d calls, want 7", inner.calls)
	}
	if _, err := p.RoundTrip(context.Background(), nil, &metadata.Request{TopicNames: []string{"a", "b"}}); err != nil || inner.calls != 8 {
		t.Fatalf("a request for two topics passes through: %v, %d calls", err, inner.calls)
	}
}

// A Reader's connection reads through bufferedConn: what the peer wrote arrives whole and in
// order, whatever the sizes of the reads, and deadlines still apply.
func TestBufferedConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = ln.Close() }()
	want := make([]byte, 3*readBufferSize+123)
	for i := range want {
		want[i] = byte(i * 7)
	}
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer func() { _ = c.Close() }()
		for b := want; len(b) > 0; {
			n := min(len(b), 1000)
			if _, err := c.Write(b[:n]); err != nil {
				return
			}
			b = b[n:]
		}
		time.Sleep(time.Second) // then nothing more: the reader's deadline passes
	}()
	c, err := dialBuffered(context.Background(), "tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Close() }()
	got := make([]byte, len(want))
	for off, step := 0, 1; off < len(got); step = step*3%4093 + 1 {
		n, err := c.Read(got[off:min(off+step, len(got))])
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if string(got) != string(want) {
		t.Fatal("the bytes read differ from those written")
	}
	_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline: %v", err)
	}
}

// ReadBatch hands over at most maxDocs records: a fetch it takes only part of is finished,
// in offset order, before any other fetch, and each partition's next offset follows what was
// handed over, past the transaction markers after a fetch's last record. A fetch of markers
// alone moves the offset too. An error a fetcher ended with comes after its records and
// fails the read.
func TestReadBatchSplitsFetches(t *testing.T) {
	src, err := source(t, bson.D{{Key: "topic", Value: "in"}})
	if err != nil {
		t.Fatal(err)
	}
	s := src
	p0, p1 := &part{topic: "in", partition: 0, split: 0}, &part{topic: "in", partition: 1, split: 1}
	s.parts = []*part{p0, p1}
	s.recs, s.free, s.fetchBufs = make(chan fetched, 4), freeList[[]byte]{max: 8}, freeList[[]kafka.Message]{max: 16}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	msgs := func(from, n int64) []kafka.Message {
		var out []kafka.Message
		for o := from; o < from+n; o++ {
			out = append(out, kafka.Message{Offset: o, HighWaterMark: from + n, Value: fmt.Appendf(nil, `{"o": %d}`, o)})
		}
		return out
	}
	s.recs <- fetched{p: p0, msgs: msgs(0, 5), next: 5}
	s.recs <- fetched{p: p1, msgs: msgs(10, 3), next: 14} // a transaction marker at 13
	s.recs <- fetched{p: p1, err: kafka.OffsetOutOfRange}
	read := func() []string {
		t.Helper()
		b, err := s.ReadBatch(context.Background(), 3, time.Second)
		var got []string
		for _, in := range b.Inputs {
			got = append(got, fmt.Sprintf("%d:%d", in.Meta.Lookup("source", "partition").Int32(), in.Doc.Lookup("o").Int32()))
		}
		if err != nil {
			got = append(got, "error")
		}
		return got
	}
	// The error ends the batch it is in: the attempt ends, and the next one resumes from the
	// last checkpoint.
	for i, want := range [][]string{{"0:0", "0:1", "0:2"}, {"0:3", "0:4", "1:10"}, {"1:11", "1:12", "error"}} {
		if got := read(); !slices.Equal(got, want) {
			t.Fatalf("batch %d: %v, want %v", i, got, want)
		}
		if i == 0 && (p0.next.Load() != 3 || p1.next.Load() != 0) {
			t.Fatalf("after batch 0: next offsets %d and %d", p0.next.Load(), p1.next.Load())
		}
		if i == 0 {
			// A fetcher reuses the slice of the records read (fetchBufs) while the rest of
			// their fetch is pending: filling it must not write over them.
			reused, ok := s.fetchBufs.get()
			if !ok {
				t.Fatal("the records read were not given back for reuse")
			}
			_ = append(reused, msgs(100, 8)...)
		}
	}
	if p0.next.Load() != 5 || p1.next.Load() != 14 || p1.hwm.Load() != 13 {
		t.Fatalf("next offsets %d and %d, high watermark %d", p0.next.Load(), p1.next.Load(), p1.hwm.Load())
	}
	s.recs <- fetched{p: p0, next: 7} // two markers
	if got := read(); len(got) != 0 || p0.next.Load() != 7 {
		t.Fatalf("a fetch of markers alone: %v, next offset %d", got, p0.next.Load())
	}
}

// freeList hands back the buffer given back last, and keeps no more than max.
func TestFreeList(t *testing.T) {
	f := freeList[int]{max: 2}
	if _, ok := f.get(); ok {
		t.Fatal("an empty list gave a buffer")
	}
	f.put(1)
	f.put(2)
	f.put(3) // over max: dropped
	for _, want := range []int{2, 1} {
		if got, ok := f.get(); !ok || got != want {
			t.Fatalf("got %d %v, want %d", got, ok, want)
		}
	}
	if _, ok := f.get(); ok {
		t.Fatal("more buffers than were kept")
	}
}

// isolation.level read_committed is refused with a reason (kafka-go keeps the records of
// aborted transactions); read_uncommitted and no setting are accepted.
func TestIsolationLevel(t *testing.T) {
	p, err := parse(bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "a"}}}})
	if err != nil {
		t.Fatal(err)
	}
	for level, want := range map[string]string{"": "", "read_uncommitted": "", "read_committed": "read_committed is not supported", "serializable": "must be read_committed or read_uncommitted"} {
		conn := connection("PLAINTEXT", "")
		if level != "" {
			conn.Kafka.Config = map[string]string{"isolation.level": level}
		}
		_, err := NewSource(connectors.Env{ProcessorID: "p1", Connection: conn}, p.Source)
		var ce *connectors.Error
		switch {
		case want == "" && err != nil:
			t.Errorf("%q: %v", level, err)
		case want != "" && (err == nil || !strings.Contains(err.Error(), want) || !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions):
			t.Errorf("%q: got %v, want 420 %q", level, err, want)
		}
	}
}

// Transaction markers (Kafka's control records ending a transaction) are known by their shape;
// records that only look alike in part are not.
func TestTxnMarker(t *testing.T) {
	epoch := []byte{0, 0, 0, 0, 0, 7}
	for _, c := range []struct {
		m    kafka.Message
		want bool
	}{
		{kafka.Message{Key: []byte{0, 0, 0, 0}, Value: epoch}, true}, // ABORT
		{kafka.Message{Key: []byte{0, 0, 0, 1}, Value: epoch}, true}, // COMMIT
		{kafka.Message{Key: []byte{0, 0, 0, 2}, Value: epoch}, false},
		{kafka.Message{Key: []byte{0, 1, 0, 1}, Value: epoch}, false},
		{kafka.Message{Key: []byte{0, 0, 0, 1}, Value: []byte(`{"a":1}`)}, false},
		{kafka.Message{Key: []byte{0, 0, 0, 1}, Value: []byte{0, 1, 0, 0, 0, 7}}, false},
		{kafka.Message{Key: []byte{0, 0, 0, 1}, Value: epoch, Headers: []kafka.Header{{Key: "h"}}}, false},
		{kafka.Message{Value: epoch}, false},
	} {
		if got := isTxnMarker(&c.m); got != c.want {
			t.Errorf("key %v value %v headers %d: %v, want %v", c.m.Key, c.m.Value, len(c.m.Headers), got, c.want)
		}
	}
}

// TestSinkCopiesDocs: the sink is a connectors.Copier, so the runtime reuses the memory of the
// documents it wrote: a record's key and headers taken from a document as binData must not
// share its bytes, which the next outputs overwrite.
func TestSinkCopiesDocs(t *testing.T) {
	p := plan(t, bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{}}}}},
		bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "k"}, {Key: "topic", Value: "out"}, {Key: "config", Value: bson.D{
			{Key: "key", Value: "$k"}, {Key: "keyFormat", Value: "binData"},
			{Key: "headers", Value: bson.D{{Key: "h", Value: "$k"}}}}}}}})
	sk, err := NewSink(connectors.Env{Processor: "proc", Connection: connection("PLAINTEXT", "")}, p.Sink)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := sk.(connectors.Copier); !ok {
		t.Fatal("the Kafka sink is not a connectors.Copier")
	}
	s := sk.(*Sink)
	defer func() { _ = s.Close() }()
	d, err := bson.Marshal(bson.D{{Key: "k", Value: bson.Binary{Data: []byte("key1")}}})
	if err != nil {
		t.Fatal(err)
	}
	m, _, err := s.message(nil, d)
	if err != nil {
		t.Fatal(err)
	}
	for i := range d {
		d[i] = 'X' // the runtime reuses the memory
	}
	if string(m.Key) != "key1" || len(m.Headers) != 1 || string(m.Headers[0].Value) != "key1" {
		t.Fatalf("the record changed with the document's memory: key %q, headers %v", m.Key, m.Headers)
	}
}
