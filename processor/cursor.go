package processor

import (
	"context"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/store"
)

// Limits of sample cursors (spec §1.3, §9).
const (
	// SampleBytesLimit ends a cursor once it has returned this many bytes (Atlas: 40 MB).
	SampleBytesLimit = 40 << 20
	// DefaultSampleBatch is getMoreSampleStreamProcessor's batchSize when none is given
	// (the ASP driver spec's default).
	DefaultSampleBatch = 5
	// MaxSampleBatch caps batchSize.
	MaxSampleBatch = 10_000
	// GetMoreWait is how long a getMore waits for documents before it returns an empty batch:
	// mongosh sends the next getMore at once after a non-empty batch, and sleeps one second
	// after an empty one, so its loop neither spins nor stalls.
	GetMoreWait = time.Second
	// cursorBufferDocs and cursorBufferBytes bound what a cursor holds for its client.
	cursorBufferDocs  = 1000
	cursorBufferBytes = 8 << 20
)

// cursor holds sampled documents for one client. A sample cursor of a running processor is a
// tap: when its buffer is full, newer documents are dropped, so a slow client never slows the
// processor. The cursor of an sp.process() without a sink is the processor's sink: a full
// buffer blocks it, so nothing is lost.
type cursor struct {
	id       int64
	p        *proc
	ws, name string
	owner    int64
	limit    int64
	blocking bool

	mu        sync.Mutex
	buf       []bson.Raw
	bufBytes  int
	sent      int64
	sentBytes int64
	closed    bool
	err       *Error
	lastUsed  time.Time
	// polling is true while a getMore waits on the cursor: it is in use, not idle.
	polling bool
	ready   chan struct{}
	space   chan struct{}
}

func newCursor(p *proc, owner, limit int64, blocking bool) *cursor {
	return &cursor{id: newCursorID(), p: p, ws: p.rec.Workspace, name: p.rec.Name, owner: owner, limit: limit,
		blocking: blocking, lastUsed: time.Now(), ready: make(chan struct{}, 1), space: make(chan struct{}, 1)}
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// dlqMessage wraps a dead-letter record as sample output shows it: {_dlqMessage: {...}}.
func dlqMessage(d bson.Raw) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(d)+20))
	b = bsoncore.AppendDocumentElement(b, "_dlqMessage", d)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// push adds documents. A tap drops what does not fit; a blocking cursor waits for room.
func (c *cursor) push(ctx context.Context, docs []bson.Raw, dlq bool) error {
	for _, d := range docs {
		if dlq {
			d = dlqMessage(d)
		}
		for {
			c.mu.Lock()
			if c.closed {
				c.mu.Unlock()
				return nil
			}
			if len(c.buf) < cursorBufferDocs && c.bufBytes+len(d) <= cursorBufferBytes || len(c.buf) == 0 {
				c.buf = append(c.buf, d)
				c.bufBytes += len(d)
				c.mu.Unlock()
				break
			}
			c.mu.Unlock()
			if !c.blocking {
				signal(c.ready)
				return nil
			}
			signal(c.ready)
			select {
			case <-c.space:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	signal(c.ready)
	return nil
}

// close ends the cursor: what it holds is still returned, then cursorId 0.
func (c *cursor) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	signal(c.ready)
	signal(c.space)
}

// fail ends the cursor with the processor's error.
func (c *cursor) fail(e *Error) {
	c.mu.Lock()
	c.err = e
	c.mu.Unlock()
	c.close()
}

// take waits up to wait for documents and returns at most n of them, and whether the cursor
// is exhausted (closed and empty, at its limit, or at SampleBytesLimit).
func (c *cursor) take(ctx context.Context, n int, wait time.Duration) ([]bson.Raw, bool, *Error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	c.mu.Lock()
	c.polling = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.polling = false
		c.lastUsed = time.Now()
		c.mu.Unlock()
	}()
	for {
		c.mu.Lock()
		c.lastUsed = time.Now()
		if len(c.buf) > 0 || c.closed {
			break
		}
		c.mu.Unlock()
		select {
		case <-c.ready:
		case <-deadline.C:
			return nil, false, nil
		case <-ctx.Done():
			return nil, false, nil
		}
	}
	defer c.mu.Unlock()
	if c.limit > 0 {
		n = int(min(int64(n), c.limit-c.sent))
	}
	k := min(n, len(c.buf))
	out := make([]bson.Raw, k)
	copy(out, c.buf[:k])
	c.buf = append(c.buf[:0], c.buf[k:]...)
	for _, d := range out {
		c.bufBytes -= len(d)
		c.sentBytes += int64(len(d))
	}
	c.sent += int64(k)
	signal(c.space)
	end := (c.closed && len(c.buf) == 0) || (c.limit > 0 && c.sent >= c.limit) || c.sentBytes >= SampleBytesLimit
	if end && len(out) == 0 && c.err != nil {
		return nil, true, c.err
	}
	return out, end, nil
}

// cursorSink is the connectors.Sink of an sp.process() without a sink of its own.
type cursorSink struct {
	c   *cursor
	dlq bool
}

func (s *cursorSink) WriteBatch(ctx context.Context, docs []bson.Raw) ([]bson.Raw, error) {
	return nil, s.c.push(ctx, docs, s.dlq)
}
func (s *cursorSink) Flush(context.Context) error { return nil }
func (s *cursorSink) Close() error                { return nil }

// tap gives a batch to the processor's sample cursors.
func (m *Manager) tap(p *proc, docs []bson.Raw, dlq bool) (kept bool) {
	p.tapMu.Lock()
	taps := p.taps
	p.tapMu.Unlock()
	for _, c := range taps {
		_ = c.push(context.Background(), docs, dlq)
	}
	return len(taps) > 0
}

// closeTaps ends every sample cursor of p.
func (m *Manager) closeTaps(p *proc) {
	p.tapMu.Lock()
	taps := p.taps
	p.taps = nil
	p.tapMu.Unlock()
	for _, c := range taps {
		c.close()
	}
}

// StartSample opens a sample cursor on a running processor (sp.x.sample()). limit 0 means no
// limit. owner is the connection that asked; its closing frees the cursor.
func (m *Manager) StartSample(ws, name string, limit, owner int64) (int64, error) {
	p, e := m.get(ws, name)
	if e != nil {
		return 0, e
	}
	p.mu.Lock()
	state := p.rec.State
	p.mu.Unlock()
	if p.ephemeral {
		return 0, notFound(name)
	}
	if state != store.StateStarted {
		return 0, Errorf(CodeIllegalOperation, "stream processor %s is not running (state %s): start it to sample its output", name, state)
	}
	c := newCursor(p, owner, limit, false)
	p.tapMu.Lock()
	p.taps = append(p.taps, c)
	p.tapMu.Unlock()
	m.mu.Lock()
	m.cursors[c.id] = c
	m.mu.Unlock()
	return c.id, nil
}

// GetMore returns the next batch of a sample cursor and the cursor id to send next (0 once
// the cursor is exhausted).
func (m *Manager) GetMore(ctx context.Context, ws, name string, id int64, batch int) ([]bson.Raw, int64, error) {
	m.mu.Lock()
	c, ok := m.cursors[id]
	m.mu.Unlock()
	if !ok || c.ws != ws || c.name != name {
		return nil, 0, Errorf(CodeCursorNotFound, "cursor id %d not found for stream processor %s", id, name)
	}
	if batch <= 0 {
		batch = DefaultSampleBatch
	}
	batch = min(batch, MaxSampleBatch)
	docs, end, err := c.take(ctx, batch, GetMoreWait)
	if end {
		m.dropCursor(c)
		if err != nil {
			return nil, 0, err
		}
		return docs, 0, nil
	}
	return docs, id, nil
}

func (m *Manager) dropCursor(c *cursor) {
	m.mu.Lock()
	delete(m.cursors, c.id)
	m.mu.Unlock()
	c.close()
	p := c.p
	p.tapMu.Lock()
	for i, t := range p.taps {
		if t == c {
			p.taps = append(p.taps[:i:i], p.taps[i+1:]...)
			break
		}
	}
	p.tapMu.Unlock()
}

// ProcessOptions are sp.process(pipeline, options).
type ProcessOptions struct {
	Workspace           string
	Pipeline            bson.Raw
	DLQ                 *store.DLQ
	StreamMetaFieldName string
	Tier                string
	// Owner is the connection that asked; its closing drops the processor.
	Owner int64
}

// Process runs a temporary processor whose output goes to a cursor (sp.process()). It runs
// until dropped, until its connection closes, or for ProcessTimeout at most.
func (m *Manager) Process(opts ProcessOptions) (string, int64, error) {
	ws, e := m.workspace(opts.Workspace)
	if e != nil {
		return "", 0, e
	}
	if opts.Tier != "" {
		if e := m.checkTierFor(ws, "options.tier", opts.Tier); e != nil {
			return "", 0, e
		}
	}
	if opts.StreamMetaFieldName != "" {
		if e := checkMetaField(opts.StreamMetaFieldName); e != nil {
			return "", 0, e
		}
	}
	plan, e := m.validate(opts.Workspace, opts.Pipeline, false, opts.DLQ)
	if e != nil {
		return "", 0, e
	}
	if e := checkLookupMemory(plan, m.tierOf(store.Processor{Workspace: opts.Workspace})); e != nil {
		return "", 0, e
	}
	now := time.Now().UTC()
	id := bson.NewObjectID().Hex()
	rec := store.Processor{ID: id, Workspace: opts.Workspace, Name: "process-" + id, Pipeline: append([]byte(nil), opts.Pipeline...),
		DLQ: opts.DLQ, Tier: opts.Tier, StreamMetaFieldName: opts.StreamMetaFieldName, State: store.StateStarted,
		PipelineVersion: 1, HasStarted: true, Created: now, LastModified: now, LastStateChange: now}
	p := &proc{rec: rec, ephemeral: true, stats: newStats(nil, rec.Workspace, rec.Name)}
	c := newCursor(p, opts.Owner, 0, plan.Sink == nil)
	p.pcur = c
	if plan.Sink != nil {
		p.taps = []*cursor{c}
	}
	m.mu.Lock()
	m.procs[key(rec.Workspace, rec.Name)] = p
	m.cursors[c.id] = c
	m.mu.Unlock()
	p.mu.Lock()
	p.run = m.launch(p, true)
	p.deadline = time.AfterFunc(m.cfg.ProcessTimeout, func() {
		m.log.Info("sp.process() reached its time limit", "workspace", rec.Workspace, "processor", rec.Name, "limit", m.cfg.ProcessTimeout)
		c.close()
		_ = m.Drop(context.Background(), rec.Workspace, rec.Name)
	})
	p.mu.Unlock()
	m.log.Info("sp.process() started", "workspace", rec.Workspace, "processor", rec.Name)
	return rec.Name, c.id, nil
}

// ReleaseOwner frees what a closed connection left: its sample cursors and its sp.process()
// processors.
func (m *Manager) ReleaseOwner(owner int64) {
	m.mu.Lock()
	var mine []*cursor
	for _, c := range m.cursors {
		if c.owner == owner {
			mine = append(mine, c)
		}
	}
	m.mu.Unlock()
	for _, c := range mine {
		m.dropCursor(c)
		if c.p.ephemeral {
			_ = m.Drop(context.Background(), c.ws, c.name)
		}
	}
}

// janitor frees cursors no client has polled for CursorIdleTimeout, with their sp.process()
// processors.
func (m *Manager) janitor() {
	defer m.wg.Done()
	t := time.NewTicker(max(m.cfg.CursorIdleTimeout/4, 100*time.Millisecond))
	defer t.Stop()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-t.C:
		}
		// The manager's lock is never held while waiting for a cursor's.
		m.mu.Lock()
		all := make([]*cursor, 0, len(m.cursors))
		for _, c := range m.cursors {
			all = append(all, c)
		}
		m.mu.Unlock()
		var idle []*cursor
		for _, c := range all {
			c.mu.Lock()
			if !c.polling && time.Since(c.lastUsed) > m.cfg.CursorIdleTimeout {
				idle = append(idle, c)
			}
			c.mu.Unlock()
		}
		for _, c := range idle {
			m.log.Info("freeing an idle sample cursor", "workspace", c.ws, "processor", c.name, "cursorId", c.id)
			m.dropCursor(c)
			if c.p.ephemeral {
				_ = m.Drop(context.Background(), c.ws, c.name)
			}
		}
	}
}

// CursorCount is the number of open sample cursors (for tests and metrics).
func (m *Manager) CursorCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.cursors)
}

// ProcessorCount is the number of processors the manager holds, sp.process() runs included.
func (m *Manager) ProcessorCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.procs)
}
