// Package testlog holds the built-in sinks that need no registry entry: `__testLog`, which
// writes every output document to the operational log (as Atlas's test sink does; Terraform's
// examples and the PHP library's tests use it), and `__discard`, which drops what it gets (for
// benchmarks).
package testlog

import (
	"context"
	"log/slog"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
)

func init() {
	connectors.Register(connectors.Type{Name: connectors.TestLog, NewSink: NewLog})
	connectors.Register(connectors.Type{Name: connectors.Discard, NewSink: NewDiscard})
}

// Message is the log message of every output line, so tools can pick them out.
const Message = "__testLog"

// Log writes outputs to the log at level info, each as relaxed Extended JSON in the attribute
// "doc", with the workspace and processor.
type Log struct {
	log *slog.Logger
}

// NewLog returns the __testLog sink.
func NewLog(env connectors.Env, _ *pipeline.Sink) (connectors.Sink, error) {
	l := env.Logger
	if l == nil {
		l = slog.New(slog.DiscardHandler)
	}
	return &Log{log: l.With("workspace", env.Workspace, "processor", env.Processor)}, nil
}

// WriteBatch logs each document.
func (s *Log) WriteBatch(ctx context.Context, docs []bson.Raw) ([]bson.Raw, error) {
	for _, d := range docs {
		j, err := bson.MarshalExtJSON(d, false, false)
		if err != nil {
			return nil, connectors.Permanent(err)
		}
		s.log.InfoContext(ctx, Message, "doc", string(j))
	}
	return nil, nil
}

// Flush has nothing to wait for: a log line is written when WriteBatch returns.
func (s *Log) Flush(context.Context) error { return nil }

// Close releases nothing.
func (s *Log) Close() error { return nil }

// Discard drops every document.
type Discard struct{}

// NewDiscard returns the __discard sink.
func NewDiscard(connectors.Env, *pipeline.Sink) (connectors.Sink, error) { return Discard{}, nil }

// WriteBatch drops the documents.
func (Discard) WriteBatch(context.Context, []bson.Raw) ([]bson.Raw, error) { return nil, nil }

// Flush does nothing.
func (Discard) Flush(context.Context) error { return nil }

// Close does nothing.
func (Discard) Close() error { return nil }
