package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// Issue 10, acceptance 5: bad messages become dead-letter records with a reason; the processor
// keeps running.

// oversizedBytes is the size of the oversized message: over BSON's 16 MiB document limit
// (16,777,216 bytes), which the payload would exceed once converted.
const oversizedBytes = 17 << 20

// badKind is what is wrong with one produced message ("" for a good one), and the words one of
// which its dead-letter reason must contain (lower case).
type badKind struct {
	kind  string
	words []string
}

// badMessages are produced in this order, one record each, to a one-partition topic: record i
// is at offset i. Good documents are interleaved with the bad ones; every record but the
// bad-key one has a 4-byte key, which keyFormat "int" accepts.
func badMessages() ([]kafkaMsg, []badKind) {
	key := func(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }
	var msgs []kafkaMsg
	var kinds []badKind
	g := 0
	good := func() {
		msgs = append(msgs, kafkaMsg{Key: key(1000 + g), Value: fmt.Appendf(nil, `{"g":%d,"note":"good"}`, g)})
		kinds = append(kinds, badKind{})
		g++
	}
	bad := func(k []byte, v []byte, kind string, words ...string) {
		msgs = append(msgs, kafkaMsg{Key: k, Value: v})
		kinds = append(kinds, badKind{kind, words})
	}
	jsonWords := []string{"json", "invalid", "unexpected", "syntax", "parse"}
	good()
	bad(key(1), []byte(`{"a": 1,`), "invalid JSON (truncated)", jsonWords...)
	good()
	bad(key(2), []byte(`{"a": {"$date": true}}`), "EJSON $date of a boolean", "$date")
	good()
	bad(key(3), []byte(`{"b": {"$oid": "zz"}}`), "EJSON $oid not 24 hex digits", "$oid", "objectid")
	good()
	bad(key(4), []byte{}, "empty message", "empty")
	good()
	big := make([]byte, 0, oversizedBytes+32)
	big = append(big, `{"big":"`...)
	big = append(big, strings.Repeat("x", oversizedBytes)...)
	big = append(big, `"}`...)
	bad(key(5), big, "oversized message", "16777216", "16 mib", "16mb", "too large", "exceeds", "size", "limit")
	good()
	bad([]byte{1, 2, 3}, []byte(`{"g":"k","note":"bad key"}`), "3-byte key with keyFormat int", "key")
	good()
	bad(key(6), []byte(`not json at all`), "invalid JSON (not JSON)", jsonWords...)
	good()
	return msgs, kinds
}

// produceEach writes records one at a time (each acknowledged before the next), with room for
// a message of oversizedBytes, so that a one-partition topic has record i at offset i.
func produceEach(t *testing.T, k *kafkaCluster, topic string, msgs []kafkaMsg) {
	t.Helper()
	w := &kafka.Writer{Addr: kafka.TCP(strings.Split(k.Brokers, ",")...), Topic: topic, BatchTimeout: time.Millisecond,
		BatchSize: 1, BatchBytes: 64 << 20, RequiredAcks: kafka.RequireAll}
	defer func() { _ = w.Close() }()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	for i, m := range msgs {
		if err := w.WriteMessages(ctx, kafka.Message{Key: m.Key, Value: m.Value}); err != nil {
			t.Fatalf("producing record %d (%d bytes) to %s: %v", i, len(m.Value), topic, err)
		}
	}
}

// sampled is what a sample cursor returned: output documents and dead-letter records.
type sampled struct {
	out, dead []bson.Raw
}

// drainSample reads a sample cursor until want says it has enough, or a minute has passed.
func drainSample(t *testing.T, c *mongo.Client, name string, id int64, want func(sampled) bool) sampled {
	t.Helper()
	var got sampled
	deadline := time.Now().Add(time.Minute)
	for !want(got) {
		if time.Now().After(deadline) {
			t.Fatalf("sample of %s: gave up with %d outputs and %d dead letters", name, len(got.out), len(got.dead))
		}
		raw, err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getMoreSampleStreamProcessor", Value: name},
			{Key: "cursorId", Value: id}, {Key: "batchSize", Value: int32(100)}}).Raw()
		if err != nil {
			t.Fatalf("getMoreSampleStreamProcessor %s: %v", name, err)
		}
		if next, _ := raw.Lookup("cursorId").AsInt64OK(); next == 0 && !want(got) {
			t.Fatalf("the sample cursor of %s ended early: %s", name, raw)
		}
		msgs, _ := raw.Lookup("messages").Array().Values()
		for _, m := range msgs {
			d := m.Document()
			if dl, ok := d.Lookup("_dlqMessage").DocumentOK(); ok {
				got.dead = append(got.dead, dl)
			} else {
				got.out = append(got.out, d)
			}
		}
	}
	return got
}

// statsCounts is a processor's input, output and dead-letter counts.
func statsCounts(t *testing.T, c *mongo.Client, name string) (in, out, dlq int64) {
	t.Helper()
	m := mustAdmin(t, c, bson.D{{Key: "getStreamProcessorStats", Value: name}})
	st, _ := m["stats"].(bson.D)
	for _, e := range st {
		n, _ := e.Value.(int64)
		switch e.Key {
		case "inputMessageCount":
			in = n
		case "outputMessageCount":
			out = n
		case "dlqMessageCount":
			dlq = n
		}
	}
	return in, out, dlq
}

// Issue 10, acceptance 5. Good documents interleaved with invalid JSON (twice), Extended JSON
// with wrong types ($date of a boolean, $oid of "zz"), an empty message, an oversized one (17 MiB,
// over the 16 MiB document limit; the broker takes up to 64 MiB) and a 3-byte key where
// keyFormat is "int". Two processors read them: with keyFormatError "dlq", each bad message is
// a dead-letter record (seen through the sample cursor) from $source, with a reason that says
// what is wrong and the record's topic, partition and offset; with "passThrough", the bad-key
// document goes on without a key. dlqMessageCount matches, every good document reaches the
// output topic, and both processors stay STARTED.
func TestKafkaBadMessages(t *testing.T) {
	t.Parallel()
	k := startKafka(t, 1, kfake.BrokerConfigs(map[string]string{"message.max.bytes": fmt.Sprint(64 << 20)}),
		kfake.SeedTopics(1, "bad-in", "bad-out-dlq", "bad-out-pass"))
	s := startSpid(t, "--checkpoint-interval", "1s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", kafkaConnection("kafkaBad", k))
	c := connectGo(t, s.Admin(t, "", ""))

	cursors := map[string]int64{}
	for _, mode := range []string{"dlq", "passThrough"} {
		name, out := "bad-"+mode, "bad-out-pass"
		if mode == "dlq" {
			out = "bad-out-dlq"
		}
		pipeline := bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "kafkaBad"}, {Key: "topic", Value: "bad-in"},
				{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}, {Key: "keyFormat", Value: "int"},
					{Key: "keyFormatError", Value: mode}}}}}},
			bson.D{{Key: "$emit", Value: bson.D{{Key: "connectionName", Value: "kafkaBad"}, {Key: "topic", Value: out}}}},
		}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: name}, {Key: "pipeline", Value: pipeline}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: name}})
		// The sample cursor sees what the processor does from now on: open it before producing.
		m := mustAdmin(t, c, bson.D{{Key: "startSampleStreamProcessor", Value: name}})
		id, ok := m["cursorId"].(int64)
		if !ok || id == 0 {
			t.Fatalf("startSampleStreamProcessor %s: %v", name, m)
		}
		cursors[name] = id
	}

	msgs, kinds := badMessages()
	produceEach(t, k, "bad-in", msgs)
	var nGood int
	for _, kd := range kinds {
		if kd.kind == "" {
			nGood++
		}
	}

	for _, mode := range []string{"dlq", "passThrough"} {
		t.Run(mode, func(t *testing.T) {
			name := "bad-" + mode
			wantDead, wantOut := map[int64]badKind{}, nGood
			for i, kd := range kinds {
				if kd.kind == "" || (mode == "passThrough" && strings.HasPrefix(kd.kind, "3-byte key")) {
					continue
				}
				wantDead[int64(i)] = kd
			}
			if mode == "passThrough" {
				wantOut++
			}
			got := drainSample(t, c, name, cursors[name], func(s sampled) bool { return len(s.dead) >= len(wantDead) && len(s.out) >= wantOut })

			seen := map[int64]bool{}
			for _, d := range got.dead {
				pn, _ := d.Lookup("processorName").StringValueOK()
				op, _ := d.Lookup("operatorName").StringValueOK()
				reason, _ := d.Lookup("errInfo", "reason").StringValueOK()
				topic, _ := d.Lookup("_stream_meta", "source", "topic").StringValueOK()
				part, _ := d.Lookup("_stream_meta", "source", "partition").AsInt64OK()
				off, ok := d.Lookup("_stream_meta", "source", "offset").AsInt64OK()
				kd, known := wantDead[off]
				if !ok || !known || seen[off] || topic != "bad-in" || part != 0 {
					t.Errorf("a dead-letter record for no bad message (or twice): %s", d)
					continue
				}
				seen[off] = true
				if pn != name || op != "$source" || d.Lookup("dlqTime").Type != bson.TypeDateTime {
					t.Errorf("%s: dead-letter record %s, want processorName %s, operatorName $source and a dlqTime", kd.kind, d, name)
				}
				lower := strings.ToLower(reason)
				if !slices.ContainsFunc(kd.words, func(w string) bool { return strings.Contains(lower, w) }) {
					t.Errorf("%s (offset %d): reason %q says none of %q", kd.kind, off, reason, kd.words)
				}
				t.Logf("%s (offset %d): %s", kd.kind, off, reason)
			}
			if len(seen) != len(wantDead) {
				t.Errorf("dead letters for offsets %v, want one for each of %d bad messages", seen, len(wantDead))
			}

			var in, out, dlq int64
			waitUntil(t, name+"'s stats to count everything", func() bool {
				in, out, dlq = statsCounts(t, c, name)
				return dlq >= int64(len(wantDead)) && out >= int64(wantOut)
			})
			if dlq != int64(len(wantDead)) || out != int64(wantOut) {
				t.Errorf("stats of %s: input %d, output %d, dlqMessageCount %d; want output %d, dlq %d", name, in, out, dlq, wantOut, len(wantDead))
			}
			// Verbose stats put them on $source, the operator that refused them (stats are
			// sampled, so wait for the operators' counts to catch up).
			waitUntil(t, name+"'s $source operator stats", func() bool {
				var v struct {
					Stats struct {
						OperatorStats []struct {
							Name            string
							DLQMessageCount int64
						}
					}
				}
				if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: name}, {Key: "verbose", Value: true}}).Decode(&v); err != nil {
					t.Fatal(err)
				}
				ops := v.Stats.OperatorStats
				return len(ops) > 0 && ops[0].Name == "$source" && ops[0].DLQMessageCount == int64(len(wantDead))
			})
			if st, msg := listed(t, c, name); st != "STARTED" || msg != "" {
				t.Errorf("%s is %s (%q) after its bad messages, want STARTED with no error", name, st, msg)
			}

			topic := map[string]string{"dlq": "bad-out-dlq", "passThrough": "bad-out-pass"}[mode]
			kcatConsume(t, k, topic, wantOut, time.Minute)
			var gs []string
			for _, m := range kcatAll(t, k, topic) {
				var d struct {
					G    any
					Note string
					Meta struct {
						Source struct {
							Key    any
							Offset int64
						}
					} `json:"_stream_meta"`
				}
				if err := json.Unmarshal(m.Value, &d); err != nil {
					t.Fatalf("output %s: %v", m.Value, err)
				}
				gs = append(gs, fmt.Sprint(d.G))
				if d.Meta.Source.Offset < 0 || d.Meta.Source.Offset >= int64(len(msgs)) {
					t.Fatalf("output %s: _stream_meta.source.offset is not one of the input's", m.Value)
				}
				// keyFormat int: a good record's key is its 4-byte big-endian int; the bad key
				// passed through is dropped.
				var wantKey any
				if d.Note != "bad key" {
					wantKey = float64(binary.BigEndian.Uint32(msgs[d.Meta.Source.Offset].Key))
				}
				if d.Meta.Source.Key != wantKey {
					t.Errorf("output %s: _stream_meta.source.key %v, want %v", m.Value, d.Meta.Source.Key, wantKey)
				}
			}
			want := []string{"0", "1", "2", "3", "4", "5", "6", "7"}
			if mode == "passThrough" {
				want = append(want, "k")
			}
			slices.Sort(gs)
			if fmt.Sprint(gs) != fmt.Sprint(want) {
				t.Errorf("outputs on %s: %v, want %v", topic, gs, want)
			}
		})
	}
}
