package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
)

// Issue 10, acceptance 1: Kafka → Kafka through mongosh, checked with kcat on both ends.

// tourInputs are the documents kcat produces, in order: relaxed and canonical Extended JSON and
// plain JSON, with values whose renderings differ between the output formats (dates inside and
// outside 1970–9999, an ObjectId, a long beyond 2^53, decimals with trailing zeros, binary of
// subtypes 0 and 0x80, doubles, nested documents and arrays). "drop" documents are filtered out
// by the processor's $match. Every `when` has a millisecond part that does not end in 0, so its
// relaxed rendering has one spelling (RFC 3339 allows trimmed fractions).
var tourInputs = []struct {
	id, value string
	partition int
}{
	{"a1", `{"id":"a1","n":1,"kind":"keep","when":{"$date":"2024-03-01T12:34:56.789Z"},"oid":{"$oid":"65e1d2c3b4a5968778695a4b"},` +
		`"big":{"$numberLong":"9007199254740993"},"price":{"$numberDecimal":"12.50"},"bin":{"$binary":{"base64":"AQID","subType":"00"}},` +
		`"ratio":2.5,"tags":["x",{"y":true}],"none":null}`, 0},
	{"b1", `{"id":"b1","n":2,"kind":"drop","when":{"$date":"2024-03-01T12:00:00.001Z"}}`, 1},
	{"a2", `{"id":"a2","n":{"$numberInt":"3"},"kind":"keep","when":{"$date":{"$numberLong":"-1000"}},"oid":{"$oid":"000000000000000000000001"},` +
		`"big":{"$numberLong":"-5"},"price":{"$numberDecimal":"-0.001"},"bin":{"$binary":{"base64":"/w==","subType":"80"}},` +
		`"ratio":{"$numberDouble":"-0.5"},"tags":[],"none":null}`, 0},
	{"b2", `{"id":"b2","n":4,"kind":"drop","when":{"$date":"2024-03-01T12:00:00.002Z"},"oid":{"$oid":"65e1d2c3b4a5968778695a4b"}}`, 0},
	{"a3", `{"id":"a3","n":5,"kind":"keep","when":{"$date":"2025-01-02T03:04:05.006Z"},"oid":"plain","big":12345678901,"price":0.125,` +
		`"bin":"text","ratio":-7,"tags":[1,"two",[3]],"none":{"deep":{"at":{"$date":"2025-06-07T08:09:10.011Z"}}}}`, 1},
}

// tourBasic is the basicJson rendering of each kept document after $addFields, written by
// hand from the spec's rules (§3.8: binary → base64, date → epoch milliseconds or, with
// dateFormat ISO8601, YYYY-MM-DDTHH:mm:ss.sssZ, decimal → string, ObjectId → hex string, numbers
// bare). D(…) marks a date, rendered by basicDate.
var tourBasic = map[string]string{
	"a1": `{"id":"a1","n":1,"kind":"keep","when":D(2024-03-01T12:34:56.789Z),"oid":"65e1d2c3b4a5968778695a4b","big":9007199254740993,` +
		`"price":"12.50","bin":"AQID","ratio":2.5,"tags":["x",{"y":true}],"none":null,"_ts":D(2024-03-01T12:34:56.789Z),"total":10,"topicSeen":"k2k-in"}`,
	"a2": `{"id":"a2","n":3,"kind":"keep","when":D(1969-12-31T23:59:59.000Z),"oid":"000000000000000000000001","big":-5,` +
		`"price":"-0.001","bin":"/w==","ratio":-0.5,"tags":[],"none":null,"_ts":D(1969-12-31T23:59:59.000Z),"total":30,"topicSeen":"k2k-in"}`,
	"a3": `{"id":"a3","n":5,"kind":"keep","when":D(2025-01-02T03:04:05.006Z),"oid":"plain","big":12345678901,"price":0.125,` +
		`"bin":"text","ratio":-7,"tags":[1,"two",[3]],"none":{"deep":{"at":D(2025-06-07T08:09:10.011Z)}},"_ts":D(2025-01-02T03:04:05.006Z),"total":50,"topicSeen":"k2k-in"}`,
}

var basicDateMark = regexp.MustCompile(`D\(([^)]+)\)`)

// basicDate renders the D(…) marks of a tourBasic line: epoch milliseconds, or the ISO 8601
// string itself.
func basicDate(t *testing.T, s string, iso bool) string {
	t.Helper()
	return basicDateMark.ReplaceAllStringFunc(s, func(m string) string {
		v := basicDateMark.FindStringSubmatch(m)[1]
		if iso {
			return strconv.Quote(v)
		}
		ts, err := time.Parse("2006-01-02T15:04:05.000Z", v)
		if err != nil {
			t.Fatal(err)
		}
		return strconv.FormatInt(ts.UnixMilli(), 10)
	})
}

// tourEmits are the four $emit stages, one per output format, each with its own key (an
// expression) and keyFormat, and its own headers.
const tourEmits = `{
  relaxed: {connectionName: "kafkaTour", topic: "k2k-out-relaxed", config: {outputFormat: "relaxedJson",
    key: {$concat: ["k-", "$id"]}, keyFormat: "string", headers: {id: "$id", fmt: "relaxed"}}},
  canonical: {connectionName: "kafkaTour", topic: "k2k-out-canonical", config: {outputFormat: "canonicalJson",
    key: {$toLong: "$n"}, keyFormat: "long", headers: [{k: "id", v: "$id"}, {k: "n", v: "$n"}]}},
  basic: {connectionName: "kafkaTour", topic: "k2k-out-basic", config: {outputFormat: "basicJson",
    key: {id: "$id", n: "$n"}, keyFormat: "json", headers: {id: "$id", none: null}}},
  iso: {connectionName: "kafkaTour", topic: "k2k-out-iso", config: {outputFormat: "basicJson", dateFormat: "ISO8601",
    key: "$n", keyFormat: "int", headers: {id: "$id", raw: BinData(0, "AQID")}}},
}`

const tourKafkaScript = `
const emits = EMITS;
const src = SOURCE;
const match = {$match: {kind: "keep"}};
const add = {$addFields: {total: {$multiply: ["$n", 10]}, topicSeen: {$meta: "stream.source.topic"}}};
const num = (v) => Number(String(v));
for (const name of Object.keys(emits)) {
  sp.createStreamProcessor("k2k_" + name, [src, match, add, {$emit: emits[name]}]);
  sp["k2k_" + name].start();
}
for (const name of Object.keys(emits)) {
  const p = sp["k2k_" + name];
  let s = p.stats();
  for (let i = 0; i < 600 && !(num(s.stats.inputMessageCount) >= 5 && num(s.stats.outputMessageCount) >= 3); i++) { sleep(100); s = p.stats(); }
  print("STATS", name, s.stats.status, num(s.stats.inputMessageCount), num(s.stats.outputMessageCount), num(s.stats.dlqMessageCount), JSON.stringify(s.errorMsg || ""));
}
`

// compactJSON is s without insignificant whitespace (field order and number spelling kept).
func compactJSON(t *testing.T, s []byte) string {
	t.Helper()
	var b bytes.Buffer
	if err := json.Compact(&b, s); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, s)
	}
	return b.String()
}

// splitStreamMeta cuts an output message into the document without _stream_meta and the
// _stream_meta value; _stream_meta is the last field, as the sink appends it.
func splitStreamMeta(t *testing.T, payload string) (doc, meta string) {
	t.Helper()
	i := strings.LastIndex(payload, `,"_stream_meta":`)
	if i < 0 || !strings.HasSuffix(payload, "}") {
		t.Fatalf("output without a trailing _stream_meta field: %s", payload)
	}
	return payload[:i] + "}", payload[i+len(`,"_stream_meta":`) : len(payload)-1]
}

// ejsonRaw parses Extended JSON (relaxed or canonical) with the Go driver into BSON.
func ejsonRaw(t *testing.T, s string) bson.Raw {
	t.Helper()
	var d bson.D
	if err := bson.UnmarshalExtJSON([]byte(s), false, &d); err != nil {
		t.Fatalf("the driver does not parse %s: %v", s, err)
	}
	b, err := bson.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Issue 10, acceptance 1. mongosh creates four processors `Kafka $source → $match → $addFields
// → $emit Kafka`, one per output format (relaxedJson, canonicalJson, basicJson, basicJson with
// dateFormat ISO8601), each with a key expression, a keyFormat and headers. Documents produced
// with kcat, with keys and headers, on two partitions, come out on each output topic as kcat
// reads them: exactly the kept ones, each message's JSON exactly as expected (relaxed and
// canonical written by the Go driver from the same values, basic written by hand), its key and
// headers in the configured formats, and _stream_meta.source naming the input record's topic,
// partition, offset, key, headers and timestamp.
func TestMongoshKafkaToKafka(t *testing.T) {
	t.Parallel()
	k := startKafka(t, 1, kfake.SeedTopics(2, "k2k-in"),
		kfake.SeedTopics(1, "k2k-out-relaxed", "k2k-out-canonical", "k2k-out-basic", "k2k-out-iso"))
	s := startSpid(t, "--checkpoint-interval", "1s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("kafkaTour", k))

	var in []kafkaMsg
	for _, d := range tourInputs {
		in = append(in, kafkaMsg{Partition: d.partition, Key: []byte("in-" + d.id), Value: []byte(d.value),
			Headers: map[string]string{"trace": "t-" + d.id}})
	}
	kcatProduce(t, k, "k2k-in", in)
	// Where each input landed, as kcat reads it back: what _stream_meta.source must name.
	type pos struct {
		partition int
		offset    int64
		ts        int64
	}
	inputs := map[string]pos{}
	for _, m := range kcatConsume(t, k, "k2k-in", len(tourInputs), time.Minute) {
		var d struct{ ID string }
		if err := json.Unmarshal(m.Value, &d); err != nil {
			t.Fatalf("input %s: %v", m.Value, err)
		}
		inputs[d.ID] = pos{m.Partition, m.Offset, m.Time.UnixMilli()}
	}
	if inputs["a1"].partition != 0 || inputs["a3"].partition != 1 || len(inputs) != len(tourInputs) {
		t.Fatalf("inputs landed at %v", inputs)
	}

	out := mongoshScript(t, s.Admin(t, "", ""), strings.NewReplacer("EMITS", tourEmits,
		"SOURCE", kafkaSource("kafkaTour", "k2k-in", `, timeField: {$toDate: "$when"}`)).Replace(tourKafkaScript))
	formats := []string{"relaxed", "canonical", "basic", "iso"}
	stats := markedLines(out, "STATS")
	if len(stats) != len(formats) {
		t.Fatalf("STATS lines: %q\n%s", stats, out)
	}
	for i, f := range formats {
		// Five in, three out ($match dropped b1 and b2), no dead letters, running.
		if want := f + ` running 5 3 0 ""`; stats[i] != want {
			t.Errorf("stats of k2k_%s: %s, want %s", f, stats[i], want)
		}
	}

	for _, f := range formats {
		t.Run(f, func(t *testing.T) {
			kcatConsume(t, k, "k2k-out-"+f, 3, time.Minute)
			msgs := kcatAll(t, k, "k2k-out-"+f)
			if len(msgs) != 3 {
				t.Fatalf("%d messages on k2k-out-%s, want the 3 kept documents", len(msgs), f)
			}
			seen := map[string]bool{}
			for _, m := range msgs {
				payload := compactJSON(t, m.Value)
				doc, meta := splitStreamMeta(t, payload)
				var d struct{ ID string }
				if err := json.Unmarshal([]byte(doc), &d); err != nil || d.ID == "" {
					t.Fatalf("output without an id: %s", doc)
				}
				if seen[d.ID] || !strings.HasPrefix(d.ID, "a") {
					t.Fatalf("output %s: repeated, or a document $match should have dropped", doc)
				}
				seen[d.ID] = true
				if want := tourExpected(t, f, d.ID); doc != want {
					t.Errorf("%s: output document\n got %s\nwant %s", d.ID, doc, want)
				}
				checkTourKeyHeaders(t, f, d.ID, m)
				p := inputs[d.ID]
				checkTourMeta(t, f, d.ID, meta, p.partition, p.offset, p.ts)
			}
		})
	}
}

// tourExpected is the output document (without _stream_meta) of input id in format f.
func tourExpected(t *testing.T, f, id string) string {
	t.Helper()
	switch f {
	case "basic":
		return basicDate(t, tourBasic[id], false)
	case "iso":
		return basicDate(t, tourBasic[id], true)
	}
	var value string
	for _, d := range tourInputs {
		if d.id == id {
			value = d.value
		}
	}
	var doc bson.D
	if err := bson.UnmarshalExtJSON([]byte(value), false, &doc); err != nil {
		t.Fatal(err)
	}
	var when bson.DateTime
	var n int32
	for _, e := range doc {
		switch e.Key {
		case "when":
			when = e.Value.(bson.DateTime)
		case "n":
			n = e.Value.(int32)
		}
	}
	// The event time (timeField) is stamped as _ts after the input's fields; $addFields appends.
	doc = append(doc, bson.E{Key: "_ts", Value: when}, bson.E{Key: "total", Value: n * 10}, bson.E{Key: "topicSeen", Value: "k2k-in"})
	b, err := bson.MarshalExtJSON(doc, f == "canonical", false)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkTourKeyHeaders checks an output record's key and headers, as kcat read them, against
// the $emit's key expression, keyFormat and headers.
func checkTourKeyHeaders(t *testing.T, f, id string, m kafkaMsg) {
	t.Helper()
	n := map[string]int{"a1": 1, "a2": 3, "a3": 5}[id]
	be4, be8 := binary.BigEndian.AppendUint32(nil, uint32(n)), binary.BigEndian.AppendUint64(nil, uint64(n))
	var key string
	var headers map[string]string
	switch f {
	case "relaxed": // keyFormat string: UTF-8
		key, headers = "k-"+id, map[string]string{"id": id, "fmt": "relaxed"}
	case "canonical": // keyFormat long: 8 bytes big-endian; an int header: 4 bytes big-endian
		key, headers = string(be8), map[string]string{"id": id, "n": string(be4)}
	case "basic": // keyFormat json: relaxed JSON text; a null header: empty
		key, headers = fmt.Sprintf(`{"id":"%s","n":%d}`, id, n), map[string]string{"id": id, "none": ""}
		if len(m.Key) > 0 && m.Key[0] == '{' {
			m.Key = []byte(compactJSON(t, m.Key))
		}
	case "iso": // keyFormat int: 4 bytes big-endian; a binData header: its bytes
		key, headers = string(be4), map[string]string{"id": id, "raw": "\x01\x02\x03"}
	}
	if string(m.Key) != key {
		t.Errorf("%s: key %q, want %q", id, m.Key, key)
	}
	if fmt.Sprint(m.Headers) != fmt.Sprint(headers) {
		t.Errorf("%s: headers %q, want %q", id, m.Headers, headers)
	}
}

var (
	isoMillis   = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
	bareNumber  = regexp.MustCompile(`[:,\[]-?\d`)
	inputKeyB64 = func(id string) string { return base64.StdEncoding.EncodeToString([]byte("in-" + id)) }
)

// checkTourMeta checks _stream_meta: {source: {type: "kafka", topic, partition, offset, key,
// headers: [{k, v}], ts}} in output format f.
func checkTourMeta(t *testing.T, f, id, meta string, partition int, offset, ts int64) {
	t.Helper()
	if f == "relaxed" || f == "canonical" {
		if f == "canonical" && bareNumber.MatchString(meta) {
			t.Errorf("%s: canonical _stream_meta with a bare number: %s", id, meta)
		}
		src, ok := ejsonRaw(t, meta).Lookup("source").DocumentOK()
		if !ok {
			t.Fatalf("%s: _stream_meta without a source document: %s", id, meta)
		}
		typ, _ := src.Lookup("type").StringValueOK()
		topic, _ := src.Lookup("topic").StringValueOK()
		part, _ := src.Lookup("partition").AsInt64OK()
		off, ok := src.Lookup("offset").AsInt64OK()
		if typ != "kafka" || topic != "k2k-in" || part != int64(partition) || !ok || off != offset {
			t.Errorf("%s: _stream_meta.source %s, want kafka k2k-in partition %d offset %d", id, meta, partition, offset)
		}
		if _, key, ok := src.Lookup("key").BinaryOK(); !ok || string(key) != "in-"+id {
			t.Errorf("%s: _stream_meta.source.key is not the input key as binData: %s", id, meta)
		}
		if v := src.Lookup("ts"); v.Type != bson.TypeDateTime || v.DateTime() != ts {
			t.Errorf("%s: _stream_meta.source.ts %s, want the record's timestamp %d", id, v, ts)
		}
		hs, _ := src.Lookup("headers").ArrayOK()
		vals, _ := hs.Values()
		found := false
		for _, h := range vals {
			hd, _ := h.DocumentOK()
			k, _ := hd.Lookup("k").StringValueOK()
			v := hd.Lookup("v")
			s, isStr := v.StringValueOK()
			_, b, isBin := v.BinaryOK()
			found = found || k == "trace" && (isStr && s == "t-"+id || isBin && string(b) == "t-"+id)
		}
		if !found {
			t.Errorf("%s: _stream_meta.source.headers lacks {k: trace, v: t-%s}: %s", id, id, meta)
		}
		return
	}
	// basicJson: plain JSON; binary as base64, the timestamp as milliseconds or ISO 8601.
	var m struct {
		Source struct {
			Type      string
			Topic     string
			Partition json.Number
			Offset    json.Number
			Key       string
			Headers   []struct{ K, V string }
			Ts        json.RawMessage
		}
	}
	dec := json.NewDecoder(strings.NewReader(meta))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("%s: basicJson _stream_meta %s: %v", id, meta, err)
	}
	s := m.Source
	if s.Type != "kafka" || s.Topic != "k2k-in" || s.Partition.String() != strconv.Itoa(partition) || s.Offset.String() != strconv.FormatInt(offset, 10) {
		t.Errorf("%s: _stream_meta.source %s, want kafka k2k-in partition %d offset %d", id, meta, partition, offset)
	}
	if s.Key != inputKeyB64(id) {
		t.Errorf("%s: _stream_meta.source.key %q, want the input key in base64 %q", id, s.Key, inputKeyB64(id))
	}
	if len(s.Headers) != 1 || s.Headers[0].K != "trace" ||
		(s.Headers[0].V != "t-"+id && s.Headers[0].V != base64.StdEncoding.EncodeToString([]byte("t-"+id))) {
		t.Errorf("%s: _stream_meta.source.headers %+v, want [{trace t-%s}]", id, s.Headers, id)
	}
	if f == "basic" {
		if string(s.Ts) != strconv.FormatInt(ts, 10) {
			t.Errorf("%s: _stream_meta.source.ts %s, want the record's timestamp in ms %d", id, s.Ts, ts)
		}
		return
	}
	var iso string
	if err := json.Unmarshal(s.Ts, &iso); err != nil || !isoMillis.MatchString(iso) {
		t.Errorf("%s: _stream_meta.source.ts %s is not YYYY-MM-DDTHH:mm:ss.sssZ", id, s.Ts)
	} else if got, _ := time.Parse(time.RFC3339Nano, iso); got.UnixMilli() != ts {
		t.Errorf("%s: _stream_meta.source.ts %s, want the record's timestamp %s", id, iso, time.UnixMilli(ts).UTC().Format(time.RFC3339Nano))
	}
}
