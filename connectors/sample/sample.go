// Package sample is the Sample connection type: sample_stream_solar, a generator of solar panel
// readings in the documented shape (spec §3.1.5):
//
//	{device_id: "device_8", group_id: 7, timestamp: "2024-08-12T21:41:01.788+00:00",
//	 max_watts: 450, event_type: 0, obs: {watts: 252, temp: 17}}
//
// Document n of a run is a pure function of (seed, n, t0): its event time is t0 + n/rate, and
// its values come from a PRNG seeded with (seed, n). The split's position {n, t0, seed} is
// checkpointed, so a processor restored from a checkpoint regenerates exactly the documents
// after it. Without a seed, seed and t0 are drawn at the first start (t0 = now, so timestamps
// follow the wall clock); with $source.config.seed they are fixed (t0 = 2024-01-01T00:00:00Z)
// and every run of the processor sees the same stream. An unseeded stream restored from a
// checkpoint keeps its seed and n but moves t0 so that document n is stamped now: like a real
// sensor feed, it does not replay the time the processor was down.
//
// $source options (spi extensions under config): rate (documents per second, default
// DefaultRate) and seed (an integer).
package sample

import (
	"context"
	"fmt"
	"math/rand/v2"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// DefaultRate is the documents per second of a sample source that sets no rate; spid's
// --sample-rate sets it.
var DefaultRate = 10.0

// MaxRate bounds config.rate.
const MaxRate = 10_000_000

// seededEpoch is t0 of a seeded generator.
var seededEpoch = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC).UnixMilli()

func init() {
	connectors.Register(connectors.Type{Name: store.TypeSample, NewSource: New})
}

var meta = func() bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "generated"}}}})
	return b
}()

// Source generates solar readings.
type Source struct {
	rate     float64
	seeded   bool
	seed     uint64
	t0       int64 // ms
	n        int64 // the next document
	start    time.Time
	startN   int64
	stepNano float64
}

// New reads config.rate and config.seed.
func New(_ connectors.Env, src *pipeline.Source) (connectors.Source, error) {
	s := &Source{rate: DefaultRate}
	if cfg, err := src.Options.LookupErr("config"); err == nil {
		doc, _ := cfg.DocumentOK()
		elems, _ := doc.Elements()
		for _, e := range elems {
			v := e.Value()
			switch e.Key() {
			case "rate":
				r, ok := v.AsFloat64OK()
				if !ok || r <= 0 || r > MaxRate {
					return nil, connectors.Permanent(fmt.Errorf("$source.config.rate must be a number of documents per second between 0 and %d", MaxRate))
				}
				s.rate = r
			case "seed":
				n, ok := v.AsInt64OK()
				if !ok {
					return nil, connectors.Permanent(fmt.Errorf("$source.config.seed must be an integer"))
				}
				s.seeded, s.seed = true, uint64(n)
			default:
				return nil, connectors.Permanent(fmt.Errorf("$source.config.%s is not an option of the sample source (rate, seed)", e.Key()))
			}
		}
	}
	s.stepNano = 1e9 / s.rate
	return s, nil
}

// Open restores {n, t0, seed} or starts a new stream.
func (s *Source) Open(_ context.Context, positions []store.SplitPosition) error {
	restored := false
	for _, p := range positions {
		raw := bson.Raw(p.Position)
		n, err1 := raw.LookupErr("n")
		t0, err2 := raw.LookupErr("t0")
		seed, err3 := raw.LookupErr("seed")
		if err1 == nil && err2 == nil && err3 == nil {
			s.n, s.t0, s.seed = n.AsInt64(), t0.AsInt64(), uint64(seed.AsInt64())
			restored = true
		}
	}
	if restored && !s.seeded {
		// An unseeded stream follows the wall clock: time passes while the processor is down,
		// so event time goes on from now rather than from where it stopped, and windows do
		// not fall behind with every restart.
		s.t0 = time.Now().UnixMilli() - int64(float64(s.n)*s.stepNano/1e6)
	}
	if !restored {
		if s.seeded {
			s.t0 = seededEpoch
		} else {
			s.t0 = time.Now().UnixMilli()
			s.seed = rand.Uint64()
		}
	}
	s.start, s.startN = time.Now(), s.n
	return nil
}

// ReadBatch returns the documents due by now at the configured rate, waiting up to maxWait
// for the next one.
func (s *Source) ReadBatch(ctx context.Context, maxDocs int, maxWait time.Duration) (connectors.Batch, error) {
	var b connectors.Batch
	due := s.startN + int64(float64(time.Since(s.start).Nanoseconds())/s.stepNano) + 1
	if due <= s.n {
		wait := time.Until(s.start.Add(time.Duration(float64(s.n-s.startN) * s.stepNano)))
		wait = min(max(wait, 0), maxWait)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return b, nil
		}
		due = s.startN + int64(float64(time.Since(s.start).Nanoseconds())/s.stepNano) + 1
	}
	count := min(due-s.n, int64(maxDocs))
	if count <= 0 {
		return b, nil
	}
	b.Inputs = make([]pipeline.Input, 0, count)
	// One buffer holds the batch's documents: the engine copies what it keeps.
	buf := make([]byte, 0, count*200)
	for range count {
		start := len(buf)
		var ts int64
		buf, ts = s.generate(buf, s.n)
		d := bson.Raw(buf[start:len(buf):len(buf)])
		b.Inputs = append(b.Inputs, pipeline.Input{Doc: d, Meta: meta, Time: ts})
		b.Bytes += int64(len(d))
		s.n++
	}
	return b, nil
}

var maxWatts = [...]int32{250, 300, 350, 450}

// generate appends document n and returns its event time.
func (s *Source) generate(dst []byte, n int64) ([]byte, int64) {
	r := rand.New(rand.NewPCG(s.seed, uint64(n)))
	ts := s.t0 + int64(float64(n)*s.stepNano/1e6)
	device := r.IntN(20)
	mw := maxWatts[device%len(maxWatts)]
	eventType := int32(0)
	watts := int32(r.IntN(int(mw)))
	if r.IntN(50) == 0 { // an occasional fault reading
		eventType, watts = 1, 0
	}
	temp := int32(5 + r.IntN(30))
	idx, dst := bsoncore.AppendDocumentStart(dst)
	dst = bsoncore.AppendStringElement(dst, "device_id", fmt.Sprintf("device_%d", device))
	dst = bsoncore.AppendInt32Element(dst, "group_id", int32(device/2))
	dst = bsoncore.AppendStringElement(dst, "timestamp", time.UnixMilli(ts).UTC().Format("2006-01-02T15:04:05.000+00:00"))
	dst = bsoncore.AppendInt32Element(dst, "max_watts", mw)
	dst = bsoncore.AppendInt32Element(dst, "event_type", eventType)
	oidx, dst := bsoncore.AppendDocumentElementStart(dst, "obs")
	dst = bsoncore.AppendInt32Element(dst, "watts", watts)
	dst = bsoncore.AppendInt32Element(dst, "temp", temp)
	dst, _ = bsoncore.AppendDocumentEnd(dst, oidx)
	dst, _ = bsoncore.AppendDocumentEnd(dst, idx)
	return dst, ts
}

// Positions returns {n, t0, seed}.
func (s *Source) Positions() []store.SplitPosition {
	pos := bsoncore.NewDocumentBuilder().AppendInt64("n", s.n).AppendInt64("t0", s.t0).AppendInt64("seed", int64(s.seed)).Build()
	return []store.SplitPosition{{Split: "generator", Position: pos}}
}

// CheckpointComplete has nothing to commit.
func (s *Source) CheckpointComplete(context.Context, int64, []store.SplitPosition) {}

// Close releases nothing.
func (s *Source) Close() error { return nil }
