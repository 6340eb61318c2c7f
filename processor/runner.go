package processor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// Tuning of the loop.
const (
	// batchSize is the most documents a source returns per read.
	batchSize = 1024
	// readWait is how long a read waits for data before returning an empty batch, so the
	// engine can act on processing time (idle timeouts, processing-time windows).
	readWait = 100 * time.Millisecond
	// queueDepth is the number of batches buffered between source and engine, and between
	// engine and sink: a slow sink stops the reader once both are full.
	queueDepth = 4
	// stateCheckEvery is how often the engine's state size is measured.
	stateCheckEvery = 250 * time.Millisecond
	// stopTimeout bounds the wait for a final checkpoint when no deadline is given.
	stopTimeout = 30 * time.Second
	maxBackoff  = 30 * time.Second
)

// runner runs one processor from start to stop or failure, retrying retryable errors with
// backoff within the manager's RetryTimeout. Each attempt is a source → engine → sink loop of
// three goroutines joined by bounded channels.
type runner struct {
	m     *Manager
	p     *proc
	rec   store.Processor
	fresh bool

	ctx    context.Context
	cancel context.CancelFunc
	// stopReq carries the final barrier of a stop to the running attempt.
	stopReq chan *barrier
	done    chan struct{}
	// commits counts the checkpoints the runner's attempts committed: an attempt that
	// committed one made progress, and the retry window starts again at its failure.
	commits atomic.Int64

	// writeMu is held by the sink loop while a sink writes or flushes; halted (guarded by it)
	// refuses every write after halt.
	writeMu sync.Mutex
	halted  bool
}

// errHalted ends an attempt whose runner was halted.
var errHalted = errors.New("processor halted")

// write runs f, a sink's write or flush, unless the runner was halted.
func (r *runner) write(f func() error) error {
	r.writeMu.Lock()
	defer r.writeMu.Unlock()
	if r.halted {
		return errHalted
	}
	return f()
}

// halt ends the runner without a final checkpoint once the write under way, if any, has
// returned (its context is not cancelled under it, so the deployment has acknowledged it): no
// write starts after halt begins, and none is still running at the deployment when it
// returns. A write that takes longer than stopTimeout is cancelled. A later start resumes from
// the last committed checkpoint.
func (r *runner) halt() {
	locked := make(chan struct{})
	go func() {
		defer close(locked)
		r.writeMu.Lock()
		defer r.writeMu.Unlock()
		r.halted = true
		r.cancel() // before the sink loop can see halted, so supervise takes errHalted for a stop
	}()
	select {
	case <-locked:
	case <-time.After(stopTimeout):
		r.cancel() // the write under way is given up
		<-locked
	}
	<-r.done
}

// barrier is a checkpoint barrier on its way from the source to the sink.
type barrier struct {
	id    int64
	final bool
	// Filled in on the way: the source's positions, then the engine's state.
	positions []store.SplitPosition
	state     []byte
	watermark int64
	// counters are the processor's counts as of the barrier: the inputs the engine had counted
	// when it reached the barrier (inCount, inBytes: it counts the batches after it while the
	// sink is still writing), the outputs and dead letters the sink had written when it
	// flushed the barrier.
	counters         store.Counters
	inCount, inBytes int64
	// committed receives the outcome once the sink flushed and the checkpoint is stored.
	committed chan error
}

// item flows from the source goroutine to the engine goroutine.
type item struct {
	batch   connectors.Batch
	readAt  time.Time
	barrier *barrier
}

// out flows from the engine goroutine to the sink goroutine.
type out struct {
	docs []bson.Raw
	dlq  []bson.Raw
	// res holds the memory of docs, which the sink loop gives back to the engine once the
	// sink is done with them (Result.Recycle).
	res     pipeline.Result
	readAt  time.Time
	barrier *barrier
}

func newRunner(m *Manager, p *proc, fresh bool) *runner {
	ctx, cancel := context.WithCancel(m.ctx)
	p.stats.retry.Store(nil) // an error of an earlier run is not this run's
	return &runner{m: m, p: p, rec: p.rec, fresh: fresh, ctx: ctx, cancel: cancel,
		stopReq: make(chan *barrier), done: make(chan struct{})}
}

// stop takes a final checkpoint, then ends the runner. It returns once every goroutine of the
// runner has exited.
func (r *runner) stop(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, stopTimeout)
		defer cancel()
	}
	b := &barrier{final: true, committed: make(chan error, 1)}
	var err error
	select {
	case r.stopReq <- b:
		select {
		case err = <-b.committed:
		case <-r.done:
			err = errStopped
		case <-ctx.Done():
			err = fmt.Errorf("no final checkpoint: %w", ctx.Err())
		}
	case <-r.done:
	case <-ctx.Done():
		err = fmt.Errorf("no final checkpoint: %w", ctx.Err())
	}
	r.cancel()
	<-r.done
	if errors.Is(err, errStopped) {
		err = nil
	}
	return err
}

// supervise runs attempts until a stop, a permanent error, or the retry window's end. The
// window (Config.RetryTimeout, spec §4.5: limited restarts over 5 minutes) runs from the first
// failure of a series: an attempt that committed a checkpoint before it failed recovered from
// the failures before it, so its own failure starts a new window with the first backoff.
func (r *runner) supervise() {
	defer close(r.done)
	defer r.cancel()
	log := r.m.log.With("workspace", r.rec.Workspace, "processor", r.rec.Name)
	var firstFailure time.Time
	backoff := time.Second
	for {
		commits := r.commits.Load()
		err := r.attempt()
		if err == nil || r.ctx.Err() != nil {
			return
		}
		e := classify(err)
		now := time.Now()
		if r.commits.Load() > commits {
			firstFailure, backoff = time.Time{}, time.Second
		}
		if firstFailure.IsZero() {
			firstFailure = now
		}
		// An sp.process() run is interactive: its client sees the first error at once
		// rather than a cursor that stays empty while the runtime retries.
		if !e.Retryable || r.p.ephemeral || now.Sub(firstFailure)+backoff > r.m.cfg.RetryTimeout {
			if e.Retryable && !r.p.ephemeral {
				e = &Error{Code: e.Code, Retryable: true, Msg: fmt.Sprintf("%s (retried for %s; the retry window is %s)", e.Msg,
					now.Sub(firstFailure).Round(time.Second), r.m.cfg.RetryTimeout)}
			}
			// Recording the failure takes the processor's lock, which a concurrent stop holds
			// while it waits for this runner to end: record it once the runner has ended.
			r.m.wg.Add(1)
			go func() {
				defer r.m.wg.Done()
				<-r.done
				r.m.fail(r.p, r, e)
			}()
			return
		}
		log.Warn("processor error; retrying from the last checkpoint", "err", e.Msg, "backoff", backoff)
		r.p.stats.retry.Store(e)
		select {
		case <-time.After(backoff):
		case <-r.ctx.Done():
			return
		case b := <-r.stopReq:
			// Stopped while waiting to retry: the last checkpoint stands.
			b.committed <- nil
			return
		}
		backoff = min(backoff*2, maxBackoff)
	}
}

// classify turns an attempt's error into the processor error a client sees.
func classify(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var ce *connectors.Error
	if errors.As(err, &ce) {
		code := CodeStreamProcessorConnError
		if ce.Code != 0 {
			code = Code(ce.Code)
		}
		return &Error{Code: code, Msg: ce.Error(), Retryable: ce.Retryable}
	}
	return &Error{Code: CodeInternalError, Msg: err.Error(), Retryable: connectors.IsRetryable(err)}
}

// attempt runs the loop once, from the last checkpoint. It returns nil after a final barrier
// was committed, or the first error of any of its goroutines.
func (r *runner) attempt() (err error) {
	rec := r.rec
	tier := r.m.tierOf(rec)
	env := connectors.Env{Workspace: rec.Workspace, Processor: rec.Name, ProcessorID: rec.ID, Logger: r.m.log, Ephemeral: r.p.ephemeral,
		MaxPartitions: tier.MaxKafkaPartitions, Tier: tier.Name, StreamMetaField: rec.StreamMetaFieldName, Roles: r.m.roles,
		RolesGeneration: r.m.rolesGeneration}
	plan, err := pipeline.Parse(rec.Pipeline, pipeline.ParseOptions{RequireSink: !r.p.ephemeral})
	if err != nil {
		return &Error{Code: CodeFailedToParse, Msg: err.Error()}
	}
	eng := pipeline.NewEngine(plan, pipeline.Options{ProcessorName: rec.Name, StreamMetaField: rec.StreamMetaFieldName})

	var cp store.Checkpoint
	hasCP := false
	if !r.p.ephemeral {
		err := r.m.cfg.Store.View(func(tx *store.Txn) (err error) { cp, err = tx.Checkpoint(rec.ID); return err })
		if err != nil && !store.IsNotFound(err) {
			return err
		}
		hasCP = err == nil
	}
	if hasCP {
		if len(cp.State) > 0 {
			if err := eng.Restore(cp.State); err != nil {
				// A pipeline modified with resumeFromCheckpoint keeps its positions; window
				// state the new pipeline cannot read is recomputed from new input (spec §4.3).
				r.m.log.Warn("operator state not restored; windows restart", "workspace", rec.Workspace, "processor", rec.Name, "err", err)
				eng = pipeline.NewEngine(plan, pipeline.Options{ProcessorName: rec.Name, StreamMetaField: rec.StreamMetaFieldName})
			}
		}
		r.p.stats.restore(cp.Counters, cp.Watermark)
	} else {
		// No checkpoint: the attempt reads from the start, so the counters of a failed
		// attempt before it go back to zero, as they go back to a checkpoint's.
		r.p.stats.restore(store.Counters{}, 0)
	}

	src, sink, dlq, err := r.m.connect(env, plan, r.p)
	if err != nil {
		return err
	}
	defer func() {
		_ = src.Close()
		_ = sink.Close()
		if dlq != nil {
			_ = dlq.Close()
		}
	}()
	var positions []store.SplitPosition
	if hasCP {
		positions = cp.Positions
	}
	ctx, cancel := context.WithCancel(r.ctx)
	defer cancel()
	lookups, err := r.m.bindLookups(ctx, env, plan, rec)
	defer func() {
		for _, lr := range lookups {
			_ = lr.Close()
		}
	}()
	if err != nil {
		return err
	}
	if err := src.Open(ctx, positions); err != nil {
		return err
	}
	if pr, ok := src.(connectors.PartitionReporter); ok {
		var splits []int32
		ps := pr.Partitions()
		for _, p := range ps {
			splits = append(splits, p.Split)
		}
		eng.AddPartitions(splits)
		r.p.stats.refreshOffsets(ps) // stats show the partitions from the start
	}

	limit, why := r.m.stateLimit(rec)
	_, copier := sink.(connectors.Copier)
	l := &loop{r: r, eng: eng, src: src, sink: sink, dlq: dlq, copier: copier, limit: limit, limitWhy: why,
		items: make(chan item, queueDepth), outs: make(chan out, queueDepth), barrierReq: make(chan *barrier, 1),
		nextID: cp.ID + 1, finalDone: make(chan struct{})}
	errc := make(chan error, 3)
	var wg sync.WaitGroup
	for _, f := range []func(context.Context) error{l.readLoop, l.engineLoop, l.sinkLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					errc <- &Error{Code: CodeInternalError, Msg: fmt.Sprintf("internal error: %v", p)}
				}
			}()
			if err := f(ctx); err != nil {
				errc <- err
			}
		}()
	}
	defer wg.Wait()
	defer cancel()

	ticker := time.NewTicker(r.m.cfg.CheckpointInterval)
	defer ticker.Stop()
	var final *barrier
	for {
		select {
		case <-ticker.C:
			if r.p.ephemeral {
				continue
			}
			select {
			case l.barrierReq <- &barrier{committed: make(chan error, 1)}:
			default: // the previous barrier has not left the source yet
			}
		case b := <-r.stopReq:
			final = b
			select {
			case l.barrierReq <- b:
			case <-ctx.Done():
			}
		case err := <-errc:
			if final != nil {
				final.committed <- err
			}
			return err
		case <-l.finalDone:
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// connect builds the source, the sink and the dead-letter sink.
func (m *Manager) connect(env connectors.Env, plan *pipeline.Plan, p *proc) (src connectors.Source, sink connectors.Sink, dlq connectors.Sink, err error) {
	rec := p.rec
	conn := func(name string) (*store.Connection, error) {
		var c store.Connection
		err := m.cfg.Store.View(func(tx *store.Txn) (err error) { c, err = tx.Connection(rec.Workspace, name); return err })
		if err != nil {
			return nil, &Error{Code: CodeStreamProcessorInvalidOption, Msg: fmt.Sprintf("connection %q no longer exists in workspace %s", name, rec.Workspace)}
		}
		return &c, nil
	}
	typ := connectors.Inline
	senv := env
	if name := plan.Source.ConnectionName; name != "" {
		c, err := conn(name)
		if err != nil {
			return nil, nil, nil, err
		}
		typ, senv.Connection = c.Type, c
	}
	t, ok := connectors.Lookup(typ)
	if !ok || t.NewSource == nil {
		return nil, nil, nil, &Error{Code: CodeStreamProcessorInvalidOption, Msg: fmt.Sprintf("$source: connection type %s cannot be read", typ)}
	}
	if src, err = t.NewSource(senv, plan.Source); err != nil {
		return nil, nil, nil, err
	}
	if plan.Sink == nil {
		// sp.process() without a sink: the cursor is the sink, and holds the dead letters too.
		sink, dlq = &cursorSink{c: p.pcur}, &cursorSink{c: p.pcur, dlq: true}
	} else {
		typ := plan.Sink.ConnectionName
		kenv := env
		if typ != connectors.TestLog && typ != connectors.Discard {
			c, err := conn(plan.Sink.ConnectionName)
			if err != nil {
				_ = src.Close()
				return nil, nil, nil, err
			}
			typ, kenv.Connection = c.Type, c
		}
		t, ok := connectors.Lookup(typ)
		if !ok || t.NewSink == nil {
			_ = src.Close()
			return nil, nil, nil, &Error{Code: CodeStreamProcessorInvalidOption, Msg: fmt.Sprintf("%s: connection type %s cannot be written", plan.Sink.Stage, typ)}
		}
		if sink, err = t.NewSink(kenv, plan.Sink); err != nil {
			_ = src.Close()
			return nil, nil, nil, err
		}
	}
	if rec.DLQ != nil && dlq == nil {
		c, err := conn(rec.DLQ.ConnectionName)
		if err == nil {
			if t, ok := connectors.Lookup(c.Type); ok && t.NewDLQ != nil {
				denv := env
				denv.Connection = c
				if dlq, err = t.NewDLQ(denv, rec.DLQ); err != nil {
					_ = src.Close()
					_ = sink.Close()
					return nil, nil, nil, err
				}
			}
		}
		if dlq == nil {
			m.log.Warn("dead-letter records are counted in stats but not written: no connector writes to this connection type yet",
				"workspace", rec.Workspace, "processor", rec.Name, "dlq", rec.DLQ.ConnectionName)
		}
	}
	return src, sink, dlq, nil
}

// bindLookups builds the reader of each $lookup and $cachedLookup stage's foreign collection
// (checking the execute-as role again) and binds it to the stage, with the attempt's context.
// It returns the readers built, for the caller to close, also on error.
func (m *Manager) bindLookups(ctx context.Context, env connectors.Env, plan *pipeline.Plan, rec store.Processor) ([]connectors.LookupReader, error) {
	var out []connectors.LookupReader
	for _, l := range plan.Lookups {
		var c store.Connection
		err := m.cfg.Store.View(func(tx *store.Txn) (err error) { c, err = tx.Connection(rec.Workspace, l.ConnectionName); return err })
		if err != nil {
			return out, &Error{Code: CodeStreamProcessorInvalidOption, Msg: fmt.Sprintf("%s.from.connectionName: connection %q no longer exists in workspace %s", l.Stage, l.ConnectionName, rec.Workspace)}
		}
		t, ok := connectors.Lookup(c.Type)
		if !ok || t.NewLookup == nil {
			return out, &Error{Code: CodeStreamProcessorInvalidOption, Msg: fmt.Sprintf("%s.from.connectionName: connection %q is of type %s; %s reads from a Cluster connection", l.Stage, l.ConnectionName, c.Type, l.Stage)}
		}
		lenv := env
		lenv.Connection = &c
		lr, err := t.NewLookup(lenv, l)
		if err != nil {
			return out, err
		}
		out = append(out, lr)
		l.Bind(ctx, lr)
	}
	return out, nil
}

// loop is one attempt's three goroutines and what they share.
type loop struct {
	r         *runner
	eng       *pipeline.Engine
	src       connectors.Source
	sink, dlq connectors.Sink
	// copier says the sink keeps nothing of the documents it writes (connectors.Copier):
	// their memory goes back to the engine.
	copier   bool
	limit    int64
	limitWhy string

	items      chan item
	outs       chan out
	barrierReq chan *barrier
	nextID     int64
	finalDone  chan struct{}
	finalOnce  sync.Once
}

func (l *loop) finalCommitted() {
	l.finalOnce.Do(func() { close(l.finalDone) })
}

// readLoop reads batches and injects barriers after the current batch.
func (l *loop) readLoop(ctx context.Context) error {
	defer close(l.items)
	// barrier forwards b with the positions as of the last batch; it reports whether the
	// loop is over (a final barrier, or the attempt ended).
	barrier := func(b *barrier) bool {
		b.id = l.nextID
		l.nextID++
		b.positions = l.src.Positions()
		return send(ctx, l.items, item{barrier: b}) != nil || b.final
	}
	eof := false
	for {
		select {
		case b := <-l.barrierReq:
			if barrier(b) {
				return nil
			}
			continue
		case <-ctx.Done():
			return nil
		default:
		}
		if eof {
			// Inline documents are done: keep the clock going for processing-time windows
			// and wait for a barrier or the end.
			select {
			case <-time.After(readWait):
			case <-ctx.Done():
				return nil
			case b := <-l.barrierReq:
				if barrier(b) {
					return nil
				}
				continue
			}
			if err := send(ctx, l.items, item{readAt: time.Now()}); err != nil {
				return nil
			}
			continue
		}
		batch, err := l.src.ReadBatch(ctx, batchSize, readWait)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		eof = batch.EOF
		if err := send(ctx, l.items, item{batch: batch, readAt: time.Now()}); err != nil {
			return nil
		}
	}
}

// partitions samples a partitioned source's partitions with the engine's watermark of each.
func (l *loop) partitions(pr connectors.PartitionReporter) []KafkaPartition {
	return kafkaPartitions(pr.Partitions(), func(p connectors.PartitionStats) int64 {
		if wm, _, ok := l.eng.PartitionWatermark(p.Split); ok {
			return wm
		}
		return math.MinInt64
	})
}

func send[T any](ctx context.Context, ch chan<- T, v T) error {
	select {
	case ch <- v:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// engineLoop runs batches through the engine, snapshots its state at barriers and checks the
// state size against the memory limit.
func (l *loop) engineLoop(ctx context.Context) error {
	defer close(l.outs)
	st := l.r.p.stats
	lastCheck := time.Time{}
	for it := range l.items {
		if b := it.barrier; b != nil {
			state, err := l.eng.Snapshot()
			if err != nil {
				return &Error{Code: CodeInternalError, Msg: "snapshotting operator state: " + err.Error()}
			}
			b.state, b.watermark = state, l.eng.Watermark()
			b.inCount, b.inBytes = st.inCount.Load(), st.inBytes.Load()
			if err := send(ctx, l.outs, out{barrier: b}); err != nil {
				return nil
			}
			continue
		}
		var res pipeline.Result
		bt := it.batch
		if n := len(bt.Inputs); n > 0 {
			st.input(int64(n), bt.Bytes)
			res = l.eng.Push(bt.Inputs)
		}
		for _, p := range bt.Idle {
			res.Merge(l.eng.Idle(p))
		}
		if bt.EOF {
			res.Merge(l.eng.Flush())
		}
		if len(bt.Inputs) == 0 && len(bt.Idle) == 0 && !bt.EOF {
			res = l.eng.Tick()
		}
		if err := l.eng.Err(); err != nil {
			if ctx.Err() != nil {
				return nil // the attempt is over: a find it cut short is no failure
			}
			// A lookup's deployment failed: not the documents' fault, so the attempt fails and
			// is retried from the last checkpoint.
			return err
		}
		if bt.Release != nil {
			bt.Release() // the engine keeps nothing of its inputs
		}
		if now := time.Now(); now.Sub(lastCheck) >= stateCheckEvery {
			lastCheck = now
			size := l.eng.StateSize()
			st.setStateSize(size)
			st.setWatermark(l.eng.Watermark())
			st.setOperators(l.eng.Operators())
			st.srcDLQ.Store(l.eng.SourceDeadLetters())
			if pr, ok := l.src.(connectors.PartitionReporter); ok {
				st.setPartitions(l.partitions(pr))
			}
			if size > l.limit {
				return &Error{Code: CodeStreamProcessorOutOfMemory, Msg: fmt.Sprintf(
					"Worker out of memory: the processor's operator state is %d bytes, over its limit of %d bytes (%s)", size, l.limit, l.limitWhy)}
			}
		}
		if len(res.Out) == 0 && len(res.DLQ) == 0 {
			continue
		}
		if err := send(ctx, l.outs, out{docs: res.Out, dlq: res.DLQ, res: res, readAt: it.readAt}); err != nil {
			return nil
		}
	}
	return nil
}

// sinkLoop writes outputs and dead letters, and at a barrier flushes and commits the
// checkpoint: positions and state as of the barrier, in one store transaction.
func (l *loop) sinkLoop(ctx context.Context) error {
	r := l.r
	st := r.p.stats
	// The store transaction of a checkpoint (an fsync) runs on the committer goroutine, so the
	// sink goes on writing while it commits; checkpoints are still committed in order, each
	// only after the sink flushed everything before its barrier.
	commits := make(chan *barrier, 1)
	committed := make(chan error, 1)
	go func() {
		defer close(committed)
		for b := range commits {
			err := l.commit(ctx, b)
			if b.committed != nil {
				b.committed <- err
			}
			if err != nil {
				committed <- err
				for range commits { // drain: the sink returns at its next barrier
				}
				return
			}
			if b.final {
				l.finalCommitted()
			}
		}
	}()
	defer func() {
		close(commits)
		for range committed { // until the committer has finished
		}
	}()
	for o := range l.outs {
		if b := o.barrier; b != nil {
			if err := r.write(func() error { return l.flush(ctx, b) }); err != nil {
				return err
			}
			select {
			case err := <-committed:
				return err
			case commits <- b:
			case <-ctx.Done():
				return nil
			}
			if b.final {
				return nil
			}
			continue
		}
		if len(o.docs) > 0 {
			var rejected []bson.Raw
			err := r.write(func() (err error) { rejected, err = l.sink.WriteBatch(ctx, o.docs); return err })
			if err != nil {
				return err
			}
			var bytes int64
			for _, d := range o.docs {
				bytes += int64(len(d))
			}
			n := int64(len(o.docs) - len(rejected))
			if len(rejected) > 0 {
				// A rejected document is not output: take its share of the bytes back out
				// by its dead-letter record's doc field.
				for _, d := range rejected {
					if v, err := d.LookupErr("doc"); err == nil {
						bytes -= int64(len(v.Value))
					}
				}
				o.dlq = append(o.dlq, rejected...)
				st.sinkDLQ.Add(int64(len(rejected)))
			}
			st.output(n, max(bytes, 0))
			st.observe(time.Since(o.readAt), int(n))
			if tapped := r.m.tap(r.p, o.docs, false); !tapped && l.copier {
				o.res.Recycle() // nothing refers to the outputs' bytes any more
			}
		}
		if len(o.dlq) > 0 {
			var bytes int64
			for _, d := range o.dlq {
				bytes += int64(len(d))
			}
			if l.dlq != nil {
				var rejected []bson.Raw
				err := r.write(func() (err error) { rejected, err = l.dlq.WriteBatch(ctx, o.dlq); return err })
				if err != nil {
					return err
				}
				if len(rejected) > 0 {
					r.m.log.Warn("dead-letter records the dead-letter queue refused are dropped", "workspace", r.rec.Workspace,
						"processor", r.rec.Name, "count", len(rejected))
				}
			}
			st.dlq(int64(len(o.dlq)), bytes)
			r.m.tap(r.p, o.dlq, true)
		}
	}
	return nil
}

// flush makes everything before barrier b durable in the sinks and takes the counters as of
// the barrier.
func (l *loop) flush(ctx context.Context, b *barrier) error {
	if err := l.sink.Flush(ctx); err != nil {
		return err
	}
	if l.dlq != nil {
		if err := l.dlq.Flush(ctx); err != nil {
			return err
		}
	}
	b.counters = l.r.p.stats.counters()
	// A restored checkpoint's input count must be the inputs before its positions, which the
	// next attempt reads again, not those the engine went on counting after the barrier.
	b.counters.InputCount, b.counters.InputSize = b.inCount, b.inBytes
	r := l.r
	r.m.log.Debug("checkpoint barrier flushed", "workspace", r.rec.Workspace, "processor", r.rec.Name, "checkpoint", b.id)
	return nil
}

// commit stores the checkpoint of a flushed barrier, then tells the source.
func (l *loop) commit(ctx context.Context, b *barrier) error {
	r := l.r
	if r.p.ephemeral {
		return nil
	}
	cp := store.Checkpoint{ProcessorID: r.rec.ID, ID: b.id, PipelineVersion: r.rec.PipelineVersion, Time: time.Now().UTC(),
		Positions: b.positions, State: b.state, Watermark: b.watermark, Counters: b.counters}
	if cp.Watermark == math.MinInt64 {
		cp.Watermark = 0
	}
	if err := r.m.cfg.Store.Update(func(tx *store.Txn) error {
		// A processor dropped meanwhile must not get its checkpoint back.
		if _, err := tx.Processor(r.rec.Workspace, r.rec.Name); err != nil {
			return err
		}
		return tx.PutCheckpoint(cp)
	}); err != nil {
		if store.IsNotFound(err) {
			return nil
		}
		return err
	}
	r.p.stats.checkpointed()
	r.commits.Add(1)
	// Every few seconds per processor: the periodic ones at debug level, the final one (a stop)
	// at info.
	level := slog.LevelDebug
	if b.final {
		level = slog.LevelInfo
	}
	r.m.log.Log(ctx, level, "checkpoint committed", "workspace", r.rec.Workspace, "processor", r.rec.Name, "checkpoint", b.id, "stateBytes", len(b.state), "final", b.final)
	l.src.CheckpointComplete(ctx, b.id, b.positions)
	if pr, ok := l.src.(connectors.PartitionReporter); ok {
		r.p.stats.refreshOffsets(pr.Partitions())
	}
	return nil
}
