package pipeline

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/bsoncheck"
	"github.com/spi-streams/spi/pipeline/value"
)

// Options configures an Engine.
type Options struct {
	// ProcessorName goes into dead-letter records.
	ProcessorName string
	// StreamMetaField is the field outputs carry their stream metadata in (default
	// "_stream_meta"; the processor option streamMetaFieldName renames it).
	StreamMetaField string
	// Now is the processing-time clock; nil means time.Now.
	Now func() time.Time
}

// Input is one document from a source.
type Input struct {
	Doc bson.Raw
	// Meta is the source's metadata: {source: {type, topic, partition, offset, ...}}.
	Meta bson.Raw
	// Time is the source's timestamp in milliseconds (Kafka record time, change event time).
	Time int64
	// Partition identifies the source partition the watermark is tracked for.
	Partition int32
	// Err is set when the source could not turn a record into a document (invalid JSON, a key
	// that fails keyFormat): the record becomes a dead-letter record of $source with Err as its
	// reason and Meta as its stream metadata (spec §4.5). Doc, if any, goes in its doc field.
	Err error
	// Checked says that Doc and Meta were built by this process from parsed input (the
	// ejson transcoder, bsoncore appends), so they are well-formed BSON by construction and
	// the engine skips its own check of them (bsoncheck). A source of bytes received as BSON
	// leaves it false.
	Checked bool
	// Room says that the bytes of Doc's capacity past its length belong to no one else: the
	// engine may write there, and stamps the time field in place instead of copying the
	// document. A source that hands out slices of a shared buffer limits their capacity or
	// leaves it false.
	Room bool
}

// Result is what a call produced: output documents (with stream metadata embedded) and
// dead-letter records, in order.
type Result struct {
	Out []bson.Raw
	DLQ []bson.Raw
	// chunks are the arena chunks Out's documents were carved from, which Recycle gives back
	// to pool, the engine's.
	chunks [][]byte
	pool   *chunkPool
}

// Merge adds o's outputs and dead letters to r's, with the memory that holds them.
func (r *Result) Merge(o Result) {
	r.Out = append(r.Out, o.Out...)
	r.DLQ = append(r.DLQ, o.DLQ...)
	r.chunks = append(r.chunks, o.chunks...)
	if r.pool == nil {
		r.pool = o.pool
	}
}

// Recycle gives the memory of r's outputs back to the engine, for the outputs of a later
// call: the caller must hold nothing that shares their bytes any more (a sink that copies
// what it keeps, connectors.Copier). Without it, the memory is left to the collector. It may
// be called from any goroutine, once; r.Out is nil after it.
func (r *Result) Recycle() {
	if r.pool != nil {
		r.pool.put(r.chunks)
	}
	r.Out, r.chunks = nil, nil
}

// chunkPool keeps the arena chunks results gave back (Result.Recycle), up to maxFreeChunks:
// outputs written into memory used before cost neither the allocation and clearing of a
// fresh chunk nor the collection of the old one.
type chunkPool struct {
	mu   sync.Mutex
	free [][]byte
}

// maxFreeChunks bounds the chunks a pool keeps: the outputs of a few batches in flight
// between engine and sink (8 MiB).
const maxFreeChunks = 128

func (p *chunkPool) get() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.free)
	if n == 0 {
		return make([]byte, arenaChunk)
	}
	c := p.free[n-1]
	p.free[n-1] = nil
	p.free = p.free[:n-1]
	return c
}

func (p *chunkPool) put(chunks [][]byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range chunks {
		if len(p.free) >= maxFreeChunks {
			return
		}
		p.free = append(p.free, c[:arenaChunk])
	}
}

// Engine runs documents through a plan. It is not safe for concurrent use.
type Engine struct {
	plan *Plan
	opts Options

	partitions map[int32]*partition
	srcDLQ     int64 // inputs that became dead letters before the first stage
	watermark  int64
	lastInput  time.Time
	seq        int64

	panes    map[int64]*pane // tumbling and hopping windows by start
	sessions map[string][]*session
	res      *Result

	// The stage chains, built once: before the window (or all stages), the window's
	// per-document prefix, and after the window.
	before, pre, after func(*Doc)

	// doc is the document being ingested and tsBuf its bytes with the time field stamped:
	// both are reused for every input, since whatever keeps a document copies it (see
	// Doc.retain and emitOut).
	doc   Doc
	tsBuf []byte
	tsVal [8]byte
	// arena is the free tail of the chunk output documents are carved from, and pool the
	// chunks results gave back.
	arena []byte
	pool  *chunkPool
	// groupHint is the number of groups the last closed window had: the size to expect.
	groupHint int
	// ops counts documents per stage, in the order chain built them (see Operators); win
	// counts the window's input and results, emitted the outputs.
	ops     []*OperatorStats
	win     *OperatorStats
	emitted int64
	// lookups are the lookup stages of the chains, in the order chain built them (each
	// chain last stage first; see Operators): drain answers their queued documents.
	lookups []chainedLookup
	// fatal is the first failure of a stage that is not the document's (a lookup whose
	// deployment cannot be reached): the engine stops processing and Err reports it.
	fatal error
}

type chainedLookup struct {
	st *lookupStage
	op *OperatorStats
}

// drain answers the documents the chains' lookup stages queued during this call, upstream
// stages first (a stage's answers may queue documents in a later one), each stage with one
// find (lookupStage.flush); the documents then go on down their chains.
func (e *Engine) drain() {
	for {
		done := true
		for i := len(e.lookups) - 1; i >= 0; i-- {
			l := e.lookups[i]
			if len(l.st.pending) == 0 {
				continue
			}
			done = false
			if e.fatal != nil {
				l.st.pending = nil
				continue
			}
			err := l.st.flush(func(d *Doc, err error) {
				l.op.DLQCount++
				e.dead(l.st.name, err, d)
			})
			if err != nil {
				e.failedDoc(l.st.name, err, nil)
			}
		}
		if done {
			return
		}
	}
}

// Err returns the failure that stopped the engine, if any: an error of a stage's connection
// (a LookupSource's Find), which is not a document's fault and not a dead letter. The caller
// fails the attempt and retries from the last checkpoint; what the engine returned since the
// failure is incomplete.
func (e *Engine) Err() error { return e.fatal }

// failedDoc routes a stage's error: a fatal one stops the engine, any other sends the
// document to the dead-letter queue.
func (e *Engine) failedDoc(stage string, err error, d *Doc) {
	var fe *fatalError
	if errors.As(err, &fe) {
		if e.fatal == nil {
			e.fatal = fe.err
		}
		return
	}
	e.dead(stage, err, d)
}

// arenaChunk is the size of the chunks output documents are carved from: one allocation
// serves many outputs. An output keeps its chunk alive while it is referenced; the chunks of a
// call's outputs belong to its Result, which may give them back (Recycle).
const arenaChunk = 64 << 10

// outBuf returns an empty buffer of capacity n for one output document of e.res.
func (e *Engine) outBuf(n int) []byte {
	if n > arenaChunk/4 {
		return make([]byte, 0, n)
	}
	if cap(e.arena) < n {
		e.arena = e.pool.get()
		e.res.chunks = append(e.res.chunks, e.arena)
	}
	b := e.arena[:0:n]
	e.arena = e.arena[n:]
	return b
}

type partition struct {
	max  int64
	idle bool
	// held marks a partition the source announced (AddPartitions): until it sends a record or
	// goes idle it holds the watermark back, as Flink's split-aware watermarks do.
	held bool
}

// pane is one open tumbling or hopping window.
type pane struct {
	start, end int64
	meta       bson.Raw
	groups     *groups
	docs       []*Doc
}

// session is one open session window of one partition key.
type session struct {
	key        bson.RawValue
	start, max int64
	meta       bson.Raw
	docs       []seqDoc
}

type seqDoc struct {
	seq int64
	d   *Doc
}

// NewEngine returns an engine for plan.
func NewEngine(plan *Plan, opts Options) *Engine {
	if opts.StreamMetaField == "" {
		opts.StreamMetaField = "_stream_meta"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	e := &Engine{plan: plan, opts: opts, partitions: map[int32]*partition{}, watermark: math.MinInt64,
		panes: map[int64]*pane{}, sessions: map[string][]*session{}}
	e.doc.metaField = opts.StreamMetaField
	e.pool = &chunkPool{}
	e.after = e.chain(plan.After, e.emitOut)
	if plan.Window != nil {
		e.pre = e.chain(plan.Window.pre, e.addToWindow)
		e.win = &OperatorStats{Name: plan.Window.Kind}
		e.before = e.chain(plan.Before, e.pre)
	} else {
		e.before = e.chain(append(append([]Stage(nil), plan.Before...), plan.After...), e.emitOut)
	}
	return e
}

// chain links stages so each emits into the next, ending in next. A stage's error sends the
// document it was given to the dead-letter queue.
func (e *Engine) chain(stages []Stage, next func(*Doc)) func(*Doc) {
	for i := len(stages) - 1; i >= 0; i-- {
		st, nxt := stages[i], next
		var buf []byte // the stage's output buffer, reused
		op := &OperatorStats{Name: st.Name()}
		e.ops = append(e.ops, op)
		op.st = st
		if l, ok := st.(*lookupStage); ok {
			// A lookup in a chain answers the documents of a call together (drain).
			l.batched = true
			e.lookups = append(e.lookups, chainedLookup{l, op})
		}
		next = func(d *Doc) {
			if e.fatal != nil {
				return
			}
			op.InputCount++
			if err := st.Process(d, &buf, nxt); err != nil {
				var fe *fatalError
				if !errors.As(err, &fe) {
					op.DLQCount++
				}
				e.failedDoc(st.Name(), err, d)
			}
		}
	}
	return next
}

// AddPartitions announces the source's partitions (Input.Partition values) before their first
// records: each holds the watermark back until it sends a record or goes idle (Idle), so a
// partition read late (a backlog read partition by partition) does not find its on-time records
// late. Sources that announce nothing keep the default: a partition counts from its first record.
func (e *Engine) AddPartitions(ids []int32) {
	for _, id := range ids {
		p, ok := e.partitions[id]
		if !ok {
			p = &partition{max: math.MinInt64}
			e.partitions[id] = p
		}
		p.held = true
	}
}

// PartitionWatermark is the latest event time seen on partition p (Input.Partition) and whether
// the partition is idle; ok is false for a partition that has sent nothing.
func (e *Engine) PartitionWatermark(p int32) (maxTime int64, idle, ok bool) {
	part, ok := e.partitions[p]
	if !ok {
		return 0, false, false
	}
	return part.max, part.idle, true
}

// Watermark is the event time up to which the engine considers input complete.
func (e *Engine) Watermark() int64 { return e.watermark }

// Push runs a batch of source documents through the pipeline. Nothing the engine keeps or
// returns refers to the inputs' bytes (Doc and Meta): the caller may reuse them once Push
// returns.
func (e *Engine) Push(batch []Input) Result {
	var res Result
	if e.plan.Window == nil {
		// Without a window, most inputs become one output each.
		res.Out = make([]bson.Raw, 0, len(batch))
	}
	e.res, res.pool, e.arena = &res, e.pool, nil // no chunk serves two results
	now := e.opts.Now()
	e.lastInput = now
	for _, in := range batch {
		if e.fatal != nil {
			break
		}
		e.ingest(in, now)
	}
	e.drain()
	e.advance()
	e.drain()
	e.res = nil
	return res
}

// Flush closes every open window, as at the end of inline documents.
func (e *Engine) Flush() Result {
	var res Result
	e.res, res.pool, e.arena = &res, e.pool, nil // no chunk serves two results
	e.watermark = math.MaxInt64
	e.closeUpTo(math.MaxInt64)
	e.drain()
	e.res = nil
	return res
}

// Idle tells the engine a partition has had no data for a while (partitionIdleTimeout): it
// stops holding the watermark back.
func (e *Engine) Idle(p int32) Result {
	if part, ok := e.partitions[p]; ok {
		part.idle = true
	}
	var res Result
	e.res, res.pool, e.arena = &res, e.pool, nil // no chunk serves two results
	e.advance()
	e.drain()
	e.res = nil
	return res
}

// Tick lets processing time act: processing-time windows close, and after idleTimeout without
// input the watermark moves forward by the idle time.
func (e *Engine) Tick() Result {
	var res Result
	e.res, res.pool, e.arena = &res, e.pool, nil // no chunk serves two results
	w := e.plan.Window
	now := e.opts.Now()
	switch {
	case w != nil && w.ProcessingTime:
		e.closeUpTo(now.UnixMilli())
	case w != nil && w.IdleTimeout > 0 && !e.lastInput.IsZero() && now.Sub(e.lastInput).Milliseconds() >= w.IdleTimeout:
		if e.watermark != math.MinInt64 {
			moved := e.watermark + now.Sub(e.lastInput).Milliseconds()
			e.lastInput = now
			e.watermark = moved
			e.closeUpTo(moved - w.AllowedLateness)
		}
	}
	e.drain()
	e.res = nil
	return res
}

func (e *Engine) dead(stage string, err error, d *Doc) {
	reason := err.Error()
	var ee *evalErr
	if errors.As(err, &ee) {
		stage, reason = ee.stage, ee.err.Error()
	}
	if stage == "$source" {
		e.srcDLQ++
	}
	var doc, meta bson.Raw
	if d != nil {
		doc, meta = d.Raw, d.Meta
	}
	e.res.DLQ = append(e.res.DLQ, DeadLetter(nil, e.opts.ProcessorName, e.opts.Now().UnixMilli(), stage, reason, doc, meta, e.opts.StreamMetaField))
}

// DeadLetter appends a dead-letter record in Atlas's shape (spec §4.5) to dst:
//
//	{processorName, dlqTime: <date>, operatorName, errInfo: {reason}, doc, <metaField>}
//
// doc and meta are left out when nil. Sinks use it for the documents they cannot deliver
// (a key that cannot be serialized, a dynamic target that evaluates to a non-string).
func DeadLetter(dst []byte, processor string, dlqTime int64, operator, reason string, doc, meta bson.Raw, metaField string) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(dst)
	b = bsoncore.AppendStringElement(b, "processorName", processor)
	b = bsoncore.AppendDateTimeElement(b, "dlqTime", dlqTime)
	b = bsoncore.AppendStringElement(b, "operatorName", operator)
	eidx, b := bsoncore.AppendDocumentElementStart(b, "errInfo")
	b = bsoncore.AppendStringElement(b, "reason", reason)
	b, _ = bsoncore.AppendDocumentEnd(b, eidx)
	if doc != nil {
		b = bsoncore.AppendDocumentElement(b, "doc", doc)
	}
	if meta != nil {
		if metaField == "" {
			metaField = "_stream_meta"
		}
		b = bsoncore.AppendDocumentElement(b, metaField, meta)
	}
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b[len(dst):]
}

// emitOut finishes an output document in a buffer of its own: its stream metadata goes in
// the metadata field.
func (e *Engine) emitOut(d *Doc) {
	e.emitted++
	if d.Meta == nil {
		e.res.Out = append(e.res.Out, append(e.outBuf(len(d.Raw)), d.Raw...))
		return
	}
	f := e.opts.StreamMetaField
	meta := bson.RawValue{Type: bson.TypeEmbeddedDocument, Value: d.Meta}
	buf := e.outBuf(len(d.Raw) + len(f) + 2 + len(d.Meta))
	var out []byte
	if d.isMetaFree() && d.metaField == f {
		out = appendNew(buf, d.Raw, f, meta)
	} else {
		out = appendField(buf, d.Raw, f, meta)
	}
	e.res.Out = append(e.res.Out, out)
}

// retain returns a copy of d that a window can keep: the engine reuses the bytes of the
// documents it passes through its stages.
func (d *Doc) retain() *Doc {
	var meta bson.Raw
	if d.Meta != nil {
		// The source may reuse the memory of its inputs once Push returns (connectors.Batch
		// Release): a kept document keeps a copy of its metadata too.
		meta = append(bson.Raw(nil), d.Meta...)
	}
	return &Doc{Raw: append(bson.Raw(nil), d.Raw...), Meta: meta, Time: d.Time}
}

// ingest assigns the event time, stamps the time field and runs the document on.
func (e *Engine) ingest(in Input, now time.Time) {
	d := &e.doc
	d.Raw, d.Meta, d.Time, d.metaFree = in.Doc, in.Meta, in.Time, nil
	if in.Err != nil {
		if d.Raw != nil && bsoncheck.Validate(d.Raw) != nil {
			d.Raw = nil
		}
		if d.Meta != nil && bsoncheck.Validate(d.Meta) != nil {
			d.Meta = nil
		}
		e.dead("$source", in.Err, d)
		return
	}
	src := e.plan.Source
	tsField := "_ts"
	if src != nil {
		tsField = src.TsFieldName
	}
	// Operators (and the driver's accessors, which panic on malformed values) read documents
	// without re-checking them: what a source hands over is checked once, here, in the same
	// pass that looks for the time field.
	var (
		hasTs, hasMeta bool
		err            error
	)
	if in.Checked {
		hasTs, hasMeta = value.Has(in.Doc, tsField, d.metaField)
	} else if hasTs, err = bsoncheck.ValidateHas(in.Doc, tsField); err != nil {
		d.Raw = nil
		e.dead("$source", fmt.Errorf("the document is not valid BSON: %w", err), d)
		return
	}
	if in.Meta != nil && !in.Checked {
		if err := bsoncheck.Validate(in.Meta); err != nil {
			d.Meta = nil
			e.dead("$source", fmt.Errorf("the stream metadata is not valid BSON: %w", err), d)
			return
		}
	}
	if src != nil && src.TimeField != nil {
		v, err := src.TimeField.Eval(envFor(d.Raw, d))
		if err != nil {
			e.dead("$source", fmt.Errorf("timeField: %w", err), d)
			return
		}
		if v.Type != bson.TypeDateTime {
			e.dead("$source", fmt.Errorf("timeField must evaluate to a date, not %s", typeName(v)), d)
			return
		}
		d.Time = v.DateTime()
	}
	if w := e.plan.Window; w != nil && w.ProcessingTime {
		d.Time = now.UnixMilli()
	}
	binary.LittleEndian.PutUint64(e.tsVal[:], uint64(d.Time))
	ts := bson.RawValue{Type: bson.TypeDateTime, Value: e.tsVal[:]}
	switch {
	case hasTs:
		e.tsBuf = setPath(d.Raw, []string{tsField}, &ts, e.tsBuf[:0])
		d.Raw = e.tsBuf
	case in.Room && cap(d.Raw)-len(d.Raw) >= 1+len(tsField)+1+8:
		d.Raw = appendInPlace(d.Raw, tsField, ts)
	default:
		e.tsBuf = appendNew(e.tsBuf[:0], d.Raw, tsField, ts)
		d.Raw = e.tsBuf
	}
	if in.Checked && !hasMeta && tsField != d.metaField {
		d.metaFree = d.Raw
	}
	p, ok := e.partitions[in.Partition]
	if !ok {
		p = &partition{max: math.MinInt64}
		e.partitions[in.Partition] = p
	}
	p.idle = false
	if d.Time > p.max {
		p.max = d.Time
	}
	e.seq++
	e.before(d)
}

// closedBefore is the end time at or before which windows are closed.
func (e *Engine) closedBefore() int64 {
	if e.watermark == math.MinInt64 {
		return math.MinInt64
	}
	return e.watermark - e.plan.Window.AllowedLateness
}

func (e *Engine) addToWindow(d *Doc) {
	e.win.InputCount++
	w := e.plan.Window
	if w.Kind == "$sessionWindow" {
		e.addToSession(d)
		return
	}
	closed := e.closedBefore()
	var one [1]int64
	var starts []int64
	if w.HopSize == w.Interval {
		one[0] = floorDiv(d.Time-w.Offset, w.Interval)*w.Interval + w.Offset
		starts = one[:]
	} else {
		starts = w.windowsFor(d.Time)
	}
	if len(starts) == 0 {
		return // in a gap between hopping windows: no window takes it
	}
	added := false
	var kept *Doc
	for _, start := range starts {
		end := start + w.Interval
		if end <= closed {
			continue
		}
		p, ok := e.panes[start]
		if !ok {
			p = &pane{start: start, end: end, meta: sourceOnly(d.Meta)}
			if w.group != nil {
				p.groups = newGroups(e.groupHint)
			}
			e.panes[start] = p
		}
		if w.group != nil {
			gd := d
			if w.group.usesMeta {
				gd = withWindow(d, start, end, nil)
			}
			if err := w.group.add(p.groups, gd); err != nil {
				e.dead("$group", err, d)
				return
			}
		} else {
			if kept == nil {
				kept = d.retain() // hopping windows share it
			}
			p.docs = append(p.docs, kept)
		}
		added = true
	}
	if !added {
		e.dead(w.Kind, fmt.Errorf("the document is late: its window closed (event time %s, watermark %s, allowed lateness %d ms)",
			msToTime(d.Time).Format(time.RFC3339Nano), msToTime(e.watermark).Format(time.RFC3339Nano), w.AllowedLateness), d)
	}
}

// sourceOnly keeps the source type of a document's metadata, for window outputs.
func sourceOnly(meta bson.Raw) bson.Raw {
	if meta == nil {
		return nil
	}
	t, err := meta.LookupErr("source", "type")
	if err != nil {
		return nil
	}
	b, _ := bson.Marshal(bson.D{{Key: "source", Value: bson.D{{Key: "type", Value: t}}}})
	return b
}

func (e *Engine) addToSession(d *Doc) {
	w := e.plan.Window
	key, err := w.PartitionBy.Eval(envFor(d.Raw, d))
	if err != nil {
		e.dead("$sessionWindow", fmt.Errorf("partitionBy: %w", err), d)
		return
	}
	if key.Type == 0 {
		key = nullValue
	}
	k := groupKey(key)
	list := e.sessions[k]
	var joined []*session
	var rest []*session
	for _, s := range list {
		if d.Time >= s.start-w.Gap && d.Time <= s.max+w.Gap {
			joined = append(joined, s)
		} else {
			rest = append(rest, s)
		}
	}
	if len(joined) == 0 && d.Time+w.Gap <= e.closedBefore() {
		e.dead("$sessionWindow", fmt.Errorf("the document is late: no open session can take it (event time %s, watermark %s)",
			msToTime(d.Time).Format(time.RFC3339Nano), msToTime(e.watermark).Format(time.RFC3339Nano)), d)
		return
	}
	s := &session{key: copyValue(key), start: d.Time, max: d.Time, meta: sourceOnly(d.Meta)}
	for _, j := range joined {
		s.start, s.max = min(s.start, j.start), max(s.max, j.max)
		s.docs = append(s.docs, j.docs...)
		if s.meta == nil {
			s.meta = j.meta
		}
	}
	s.docs = append(s.docs, seqDoc{seq: e.seq, d: d.retain()})
	sort.SliceStable(s.docs, func(i, j int) bool { return s.docs[i].seq < s.docs[j].seq })
	rest = append(rest, s)
	sort.Slice(rest, func(i, j int) bool { return rest[i].start < rest[j].start })
	e.sessions[k] = rest
}

// advance recomputes the watermark (the minimum over active partitions, never moving back)
// and closes the windows it passes.
func (e *Engine) advance() {
	w := e.plan.Window
	if w == nil || w.ProcessingTime {
		return
	}
	wm := int64(math.MaxInt64)
	active := false
	for _, p := range e.partitions {
		if p.idle {
			continue
		}
		if p.max == math.MinInt64 {
			if p.held {
				return // an announced partition has sent nothing yet
			}
			continue
		}
		active = true
		wm = min(wm, p.max)
	}
	if !active {
		return
	}
	if wm > e.watermark {
		e.watermark = wm
	}
	e.closeUpTo(e.closedBefore())
}

// closeUpTo closes and outputs every window ending at or before t, oldest first.
func (e *Engine) closeUpTo(t int64) {
	w := e.plan.Window
	if w == nil {
		return
	}
	if w.Kind == "$sessionWindow" {
		e.closeSessions(t)
		return
	}
	var starts []int64
	for s, p := range e.panes {
		if p.end <= t {
			starts = append(starts, s)
		}
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, s := range starts {
		p := e.panes[s]
		delete(e.panes, s)
		e.output(p.start, p.end, nil, p.meta, p.groups, p.docs)
	}
}

func (e *Engine) closeSessions(t int64) {
	w := e.plan.Window
	type closing struct {
		k string
		s *session
	}
	var done []closing
	for k, list := range e.sessions {
		var keep []*session
		for _, s := range list {
			if s.max+w.Gap <= t {
				done = append(done, closing{k, s})
			} else {
				keep = append(keep, s)
			}
		}
		if len(keep) == 0 {
			delete(e.sessions, k)
		} else {
			e.sessions[k] = keep
		}
	}
	sort.Slice(done, func(i, j int) bool {
		if done[i].s.start != done[j].s.start {
			return done[i].s.start < done[j].s.start
		}
		return done[i].k < done[j].k
	})
	for _, c := range done {
		s := c.s
		var gs *groups
		var docs []*Doc
		if w.group != nil {
			gs = newGroups(e.groupHint)
			key := s.key
			for _, sd := range s.docs {
				gd := sd.d
				if w.group.usesMeta {
					gd = withWindow(sd.d, s.start, s.max+w.Gap, &key)
				}
				if err := w.group.add(gs, gd); err != nil {
					e.dead("$group", err, sd.d)
				}
			}
		} else {
			for _, sd := range s.docs {
				docs = append(docs, sd.d)
			}
		}
		key := s.key
		e.output(s.start, s.max+w.Gap, &key, s.meta, gs, docs)
	}
}

// output runs a closed window's results through the rest of the inner pipeline and the
// stages after the window.
func (e *Engine) output(start, end int64, partitionKey *bson.RawValue, meta bson.Raw, gs *groups, docs []*Doc) {
	w := e.plan.Window
	win := bson.D{{Key: "start", Value: bson.DateTime(start)}, {Key: "end", Value: bson.DateTime(end)}}
	if partitionKey != nil {
		win = append(win, bson.E{Key: "partition", Value: *partitionKey})
	}
	winv := rawOf(win)
	if meta == nil {
		meta = emptyDoc
	}
	meta = setPath(meta, []string{"window"}, &winv, nil)
	if gs != nil {
		e.groupHint = len(gs.order)
		rs := w.group.results(gs)
		ds := make([]Doc, len(rs))
		docs = make([]*Doc, len(rs))
		for i, r := range rs {
			ds[i] = Doc{Raw: r, Time: start}
			docs[i] = &ds[i]
		}
	}
	for i, d := range docs {
		if gs != nil {
			d.Meta = meta // fresh documents made by $group
			continue
		}
		// Hopping windows share documents: each window's stages work on their own copy.
		cp := *d
		cp.Meta = meta
		docs[i] = &cp
	}
	// Post stages: per document for stateless stages, on the whole list for batch stages.
	for _, st := range w.post {
		if b, ok := st.(batchStage); ok {
			var err error
			if docs, err = b.apply(docs); err != nil {
				e.dead(st.Name(), err, nil)
				return
			}
			continue
		}
		var next []*Doc
		for _, d := range docs {
			if e.fatal != nil {
				return
			}
			if err := st.Process(d, nil, func(o *Doc) { next = append(next, o) }); err != nil {
				e.failedDoc(st.Name(), err, d)
			}
		}
		docs = next
	}
	e.win.OutputCount += int64(len(docs))
	for _, d := range docs {
		d.Meta = meta
		e.after(d)
	}
}

// withWindow is d with its window in the metadata, for {$meta: "stream.window..."} in $group.
func withWindow(d *Doc, start, end int64, partitionKey *bson.RawValue) *Doc {
	win := bson.D{{Key: "start", Value: bson.DateTime(start)}, {Key: "end", Value: bson.DateTime(end)}}
	if partitionKey != nil {
		win = append(win, bson.E{Key: "partition", Value: *partitionKey})
	}
	winv := rawOf(win)
	meta := d.Meta
	if meta == nil {
		meta = emptyDoc
	}
	nd := *d
	nd.Meta = setPath(meta, []string{"window"}, &winv, nil)
	return &nd
}

func rawOf(v any) bson.RawValue {
	t, b, err := bson.MarshalValue(v)
	if err != nil {
		panic(err)
	}
	return bson.RawValue{Type: t, Value: b}
}
