// Package inline is the source of $source.documents: the pipeline's own documents, read once in
// order. Its one split's position is the index of the next document, so a processor restored
// from a checkpoint goes on where it stopped; at the end the source reports EOF and the
// runtime closes every window.
package inline

import (
	"context"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

func init() {
	connectors.Register(connectors.Type{Name: connectors.Inline, NewSource: New})
}

// meta is the stream metadata of every inline document.
var meta = func() bson.Raw {
	b, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: "documents"}}}})
	return b
}()

// Source reads inline documents.
type Source struct {
	docs []bson.Raw
	next int
	now  func() time.Time
}

// New returns the source of src.Documents.
func New(_ connectors.Env, src *pipeline.Source) (connectors.Source, error) {
	return &Source{docs: src.Documents, now: time.Now}, nil
}

// Open seeks to the checkpointed index.
func (s *Source) Open(_ context.Context, positions []store.SplitPosition) error {
	for _, p := range positions {
		if v, err := bson.Raw(p.Position).LookupErr("n"); err == nil {
			if n, ok := v.AsInt64OK(); ok && n >= 0 && int(n) <= len(s.docs) {
				s.next = int(n)
			}
		}
	}
	return nil
}

// ReadBatch returns the next documents; the event time of each is the time it is read.
func (s *Source) ReadBatch(_ context.Context, maxDocs int, _ time.Duration) (connectors.Batch, error) {
	var b connectors.Batch
	now := s.now().UnixMilli()
	for s.next < len(s.docs) && len(b.Inputs) < maxDocs {
		d := s.docs[s.next]
		s.next++
		b.Inputs = append(b.Inputs, pipeline.Input{Doc: d, Meta: meta, Time: now})
		b.Bytes += int64(len(d))
	}
	b.EOF = s.next >= len(s.docs)
	return b, nil
}

// Positions returns the index of the next document.
func (s *Source) Positions() []store.SplitPosition {
	return []store.SplitPosition{{Split: "documents", Position: bsoncore.NewDocumentBuilder().AppendInt64("n", int64(s.next)).Build()}}
}

// CheckpointComplete has nothing to commit.
func (s *Source) CheckpointComplete(context.Context, int64, []store.SplitPosition) {}

// Close releases nothing.
func (s *Source) Close() error { return nil }
