// Package connectors defines what a connection type provides to the processor runtime — a
// Source that reads batches with positions, a Sink that writes batches and flushes at a
// checkpoint barrier — and keeps the one table of connection types. Each type lives in a package
// of its own (connectors/sample, connectors/inline, connectors/testlog, and later kafka,
// mongodb, https) and registers itself with Register.
//
// The shapes follow Flink's FLIP-27 Source (splits, per-split positions, a checkpoint-complete
// callback) and Flink's SinkWriter / Benthos's BatchOutput (batches, flush at the barrier).
// Retry and backoff live once, in the runtime: a connector only says whether an error is
// retryable (see Error).
package connectors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// Batch is what one ReadBatch returns: documents in source order, and the splits that have gone
// idle (no data for the source's idle timeout, e.g. Kafka's partitionIdleTimeout), which stop
// holding the watermark back.
type Batch struct {
	// Inputs are the documents with their stream metadata, event time and split (partition).
	Inputs []pipeline.Input
	// Bytes is the total size of the documents as read, for inputMessageSize.
	Bytes int64
	// Idle lists splits (by Input.Partition) that are idle as of this batch.
	Idle []int32
	// EOF says the source is exhausted (inline documents): the runtime closes every window.
	EOF bool
	// Release, if set, is called by the runtime once the engine is done with the batch's
	// documents: the source may then reuse their memory for a later batch.
	Release func()
}

// Source reads one processor's $source. A Source is used by one goroutine at a time, except
// CheckpointComplete, which the runtime may call from another goroutine.
type Source interface {
	// Open seeks every split to the checkpointed positions (nil: start as configured, e.g.
	// auto_offset_reset) and starts reading.
	Open(ctx context.Context, positions []store.SplitPosition) error
	// ReadBatch blocks until documents are available, a split goes idle, or about maxWait
	// has passed (then it returns an empty batch, so the runtime can act on processing time).
	// It returns at most max documents. An error is retried by the runtime if IsRetryable.
	ReadBatch(ctx context.Context, max int, maxWait time.Duration) (Batch, error)
	// Positions returns the position of every split just after the last document returned by
	// ReadBatch: what a checkpoint records.
	Positions() []store.SplitPosition
	// CheckpointComplete tells the source that the checkpoint with these positions is
	// committed (Flink's notifyCheckpointComplete): the moment to commit Kafka group offsets.
	CheckpointComplete(ctx context.Context, id int64, positions []store.SplitPosition)
	// Close releases the source.
	Close() error
}

// Sink writes one processor's output. WriteBatch may buffer; Flush makes everything written so
// far durable (acknowledged), as at a checkpoint barrier.
type Sink interface {
	// WriteBatch writes output documents; the documents are owned by the sink from here on.
	// The documents it cannot deliver for a reason of their own (a key that does not
	// serialize, a dynamic target that is not a string, a message over the size limit) are
	// returned as dead-letter records (pipeline.DeadLetter) and not counted as output; an
	// error fails the whole attempt.
	WriteBatch(ctx context.Context, docs []bson.Raw) (rejected []bson.Raw, err error)
	// Flush returns once every document written before it is acknowledged.
	Flush(ctx context.Context) error
	// Close flushes nothing: the runtime flushes at its last barrier before closing.
	Close() error
}

// Copier is implemented by a sink whose WriteBatch keeps nothing that shares the bytes of
// the documents it was given once it returns (it copies what it sends later, such as a key
// taken from a document): the runtime then reuses their memory for later outputs
// (pipeline.Result.Recycle).
type Copier interface {
	Sink
	CopiesDocs()
}

// PartitionReporter is implemented by sources with partitions (Kafka): the runtime samples it
// for stats (kafkaPartitions) and metrics. It may be called from another goroutine than
// ReadBatch.
type PartitionReporter interface {
	Partitions() []PartitionStats
}

// PartitionStats is one partition of a source as stats show it (spec §5.1 kafkaPartitions).
type PartitionStats struct {
	Topic     string
	Partition int32
	// Split is the partition's Input.Partition, which the engine keys its watermarks by.
	Split int32
	// CurrentOffset is the offset after the last record read; CheckpointOffset is the offset
	// of the last committed checkpoint (-1: none yet).
	CurrentOffset, CheckpointOffset int64
	// ConsumerGroupLag is the partition's high watermark minus the consumer group's committed
	// offset (-1: unknown).
	ConsumerGroupLag int64
	// IsIdle says the partition has had no record for partitionIdleTimeout.
	IsIdle bool
}

// Error is a connector failure that says whether retrying may help: a network error, a broker
// or primary that is unavailable is retryable; bad credentials, a missing permission or a
// document that is too large is not (spec §4.5).
type Error struct {
	Retryable bool
	// Code is the Atlas error code for a non-retryable failure (e.g. 420 for invalid options),
	// 0 for none.
	Code int32
	Err  error
}

func (e *Error) Error() string { return e.Err.Error() }

func (e *Error) Unwrap() error { return e.Err }

// Atlas error codes a connector may report in Error.Code; the runtime sends them as the
// processor's errorCode (spec §1.2 and §4.5).
const (
	// CodeKafkaConnection is StreamProcessorKafkaConnectionError: a broker that cannot be
	// reached, a TLS failure, failed authentication, a missing topic.
	CodeKafkaConnection int32 = 419
	// CodeInvalidOptions is StreamProcessorInvalidOptions: an option the connector cannot use.
	CodeInvalidOptions int32 = 420
	// CodeAtlasConnection is StreamProcessorAtlasConnectionError: a MongoDB deployment that
	// cannot be reached or refuses the connection's credentials.
	CodeAtlasConnection int32 = 421
)

// Retryable wraps err as a retryable connector error.
func Retryable(err error) error { return &Error{Retryable: true, Err: err} }

// Invalid is an option error: not retryable, code 420 (StreamProcessorInvalidOptions), with the
// message format makes of args (name the field and the reason).
func Invalid(format string, args ...any) error {
	return &Error{Code: CodeInvalidOptions, Err: fmt.Errorf(format, args...)}
}

// Permanent wraps err as a non-retryable connector error.
func Permanent(err error) error { return &Error{Err: err} }

// IsRetryable reports whether the runtime should retry after err. Errors that do not say are
// retried: transient is the safe assumption for an unknown failure.
func IsRetryable(err error) bool {
	var ce *Error
	if errors.As(err, &ce) {
		return ce.Retryable
	}
	return true
}

// Env is what a connector is built with.
type Env struct {
	// Workspace and Processor name the processor; ProcessorID is its stable id.
	Workspace, Processor, ProcessorID string
	// Connection is the registry entry; nil for inline documents and the built-in test sinks.
	Connection *store.Connection
	// Logger receives the connector's operational logs (never a secret).
	Logger *slog.Logger
	// Ephemeral is true for sp.process(): nothing is committed anywhere.
	Ephemeral bool
	// MaxPartitions is the processor tier's limit on source partitions (spec §10: SP2 32,
	// SP5 64); 0 is no limit.
	MaxPartitions int
	// Tier is the processor's tier, for messages.
	Tier string
	// StreamMetaField is the field outputs carry their stream metadata in (default
	// "_stream_meta"), which sinks read for {$meta: ...} and their dead letters.
	StreamMetaField string
	// Roles finds the project's custom roles by name (custom roles are project-wide in Atlas,
	// spec section 6.3), for a Cluster connection's CUSTOM dbRoleToExecute
	// (authz.ExecuteAsAllows). It reads the registry on every call, so a role changed there
	// counts from the next check. nil knows no custom role: a CUSTOM execute-as role is then
	// refused as unknown.
	Roles authz.RoleSource
	// RolesGeneration, when set, changes whenever a custom role changed (the processor manager
	// counts the Admin API's role changes): a sink that keeps execute-as decisions for a run
	// (dynamic $merge targets) forgets them when it changes, so that each target is checked
	// against the role as it now is before its next write. nil: roles do not change during a run.
	RolesGeneration func() uint64
}

// Type is one connection type in the table: its name, what it can do, and its constructors.
type Type struct {
	// Name is the registry's type ("Kafka", "Cluster", "Sample", "Https"), or a built-in name.
	Name string
	// NewSource builds a $source reader; nil if the type cannot be a source.
	NewSource func(env Env, src *pipeline.Source) (Source, error)
	// NewSink builds the terminal stage's writer; nil if the type cannot be a sink.
	NewSink func(env Env, sink *pipeline.Sink) (Sink, error)
	// NewDLQ builds the writer of a processor's dead-letter queue (options.dlq); nil if the
	// type cannot hold one.
	NewDLQ func(env Env, dlq *store.DLQ) (Sink, error)
	// NewLookup builds the reader of a $lookup or $cachedLookup stage's foreign collection;
	// nil if the type cannot be looked up in. Like the other constructors it checks options
	// (and privileges) without I/O.
	NewLookup func(env Env, l *pipeline.Lookup) (LookupReader, error)
}

// LookupReader reads a lookup stage's foreign collection (pipeline.LookupSource) and is
// closed by the runtime when the attempt ends. Find's errors are *Error: retryable for a
// deployment that cannot be reached.
type LookupReader interface {
	pipeline.LookupSource
	Close() error
}

var (
	mu    sync.RWMutex
	types = map[string]Type{}
)

// Register adds a connection type to the table; registering a name twice panics.
func Register(t Type) {
	mu.Lock()
	defer mu.Unlock()
	if _, dup := types[t.Name]; dup {
		panic(fmt.Sprintf("connectors: type %q registered twice", t.Name))
	}
	types[t.Name] = t
}

// Lookup returns the registered type.
func Lookup(name string) (Type, bool) {
	mu.RLock()
	defer mu.RUnlock()
	t, ok := types[name]
	return t, ok
}

// Names lists the registered types, sorted.
func Names() []string {
	mu.RLock()
	defer mu.RUnlock()
	out := make([]string, 0, len(types))
	for n := range types {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Built-in names that need no registry entry.
const (
	// Inline is the type of $source.documents.
	Inline = "inline"
	// TestLog is the $emit connection that writes outputs to the operational log.
	TestLog = "__testLog"
	// Discard is the sink of benchmarks: it drops what it gets.
	Discard = "__discard"
)
