// Package processor is the stream processor runtime: the processor state machine (CREATED,
// STARTED, STOPPED, FAILED; spec §4.2), the source → engine → sink loop with bounded buffers,
// aligned checkpoint barriers (runtime-design "Checkpoints"), retries with backoff, the memory
// limit of operator state, sample cursors and sp.process(), and stats and metrics.
//
// A Manager owns every processor of a spid. The data plane's commands and the Admin API's
// processor endpoints both call it, so the two planes see one runtime.
package processor

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/metrics"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// Defaults of Config.
const (
	DefaultCheckpointInterval = 5 * time.Second
	DefaultMaxProcessors      = 1000
	DefaultRetryTimeout       = 5 * time.Minute
	DefaultProcessTimeout     = 10 * time.Minute
	DefaultCursorIdleTimeout  = 2 * time.Minute
	// MaxNameLength is the longest processor name accepted, in bytes.
	MaxNameLength = 64
)

// Config configures a Manager.
type Config struct {
	Store   *store.Store
	Logger  *slog.Logger
	Metrics *metrics.Metrics
	// GroupID is the project id, the first part of a processor's ns in stats.
	GroupID string
	// CheckpointInterval is the time between periodic checkpoints (default 5 s).
	CheckpointInterval time.Duration
	// MaxProcessors is the most processors one workspace may hold (default 1000).
	MaxProcessors int
	// MemoryLimit overrides the tier's operator-state limit (80 % of the tier's RAM), in bytes;
	// 0 follows the tier.
	MemoryLimit int64
	// RetryTimeout is how long connection and transient errors are retried before the
	// processor is FAILED (default 5 minutes, spec §4.5).
	RetryTimeout time.Duration
	// ProcessTimeout bounds an sp.process() run (default 10 minutes, spec §9).
	ProcessTimeout time.Duration
	// CursorIdleTimeout frees a sample cursor no getMore has touched for this long.
	CursorIdleTimeout time.Duration
}

// Manager owns every processor of one spid.
type Manager struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	procs   map[string]*proc // by workspace + "\x00" + name
	cursors map[int64]*cursor

	// roleGen counts custom role changes (RoleChanged), for sinks' kept execute-as decisions.
	roleGen atomic.Uint64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// proc is one processor known to the manager: its record, its stats and, while it runs, its
// runner. mu serialises state transitions of this processor.
type proc struct {
	mu        sync.Mutex
	rec       store.Processor
	ephemeral bool
	stats     *stats
	run       *runner

	tapMu sync.Mutex
	taps  []*cursor

	// pcur is the cursor of an sp.process() run, deadline its time limit.
	pcur     *cursor
	deadline *time.Timer
}

func key(ws, name string) string { return ws + "\x00" + name }

// NewManager returns a manager over cfg.Store. Call Resume to resume processors.
func NewManager(cfg Config) *Manager {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckpointInterval <= 0 {
		cfg.CheckpointInterval = DefaultCheckpointInterval
	}
	if cfg.MaxProcessors <= 0 {
		cfg.MaxProcessors = DefaultMaxProcessors
	}
	if cfg.RetryTimeout <= 0 {
		cfg.RetryTimeout = DefaultRetryTimeout
	}
	if cfg.ProcessTimeout <= 0 {
		cfg.ProcessTimeout = DefaultProcessTimeout
	}
	if cfg.CursorIdleTimeout <= 0 {
		cfg.CursorIdleTimeout = DefaultCursorIdleTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{cfg: cfg, log: cfg.Logger, procs: map[string]*proc{}, cursors: map[int64]*cursor{}, ctx: ctx, cancel: cancel}
}

// Resume loads every processor from the store and resumes those that were STARTED from their
// last checkpoint. It also starts the janitor that frees idle cursors. Call it once.
func (m *Manager) Resume() error {
	var recs []store.Processor
	if err := m.cfg.Store.View(func(tx *store.Txn) (err error) { recs, err = tx.Processors(""); return err }); err != nil {
		return err
	}
	for _, rec := range recs {
		p := m.newProc(rec, false)
		m.mu.Lock()
		m.procs[key(rec.Workspace, rec.Name)] = p
		m.mu.Unlock()
		if rec.State == store.StateStarted {
			m.log.Info("resuming processor from its last checkpoint", "workspace", rec.Workspace, "processor", rec.Name)
			p.mu.Lock()
			p.run = m.launch(p, false)
			p.mu.Unlock()
		}
	}
	m.wg.Add(1)
	go m.janitor()
	return nil
}

// newProc builds the in-memory entry of a processor, its stats restored from its checkpoint.
func (m *Manager) newProc(rec store.Processor, ephemeral bool) *proc {
	p := &proc{rec: rec, ephemeral: ephemeral, stats: newStats(m.cfg.Metrics, rec.Workspace, rec.Name)}
	if !ephemeral {
		var cp store.Checkpoint
		err := m.cfg.Store.View(func(tx *store.Txn) (err error) { cp, err = tx.Checkpoint(rec.ID); return err })
		if err == nil {
			p.stats.restore(cp.Counters, cp.Watermark)
		}
	}
	p.stats.setState(rec.State)
	return p
}

// Shutdown stops every running processor with a final checkpoint, leaving its state STARTED so
// that the next start resumes it (the SIGTERM path of the checkpoint rules), and frees cursors.
func (m *Manager) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	procs := make([]*proc, 0, len(m.procs))
	for _, p := range m.procs {
		procs = append(procs, p)
	}
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.mu.Lock()
			defer p.mu.Unlock()
			if p.run != nil {
				if err := p.run.stop(ctx); err != nil {
					m.log.Warn("processor did not stop cleanly at shutdown", "workspace", p.rec.Workspace, "processor", p.rec.Name, "err", err)
				}
				p.run = nil
			}
		}()
	}
	wg.Wait()
	m.cancel()
	m.mu.Lock()
	for id, c := range m.cursors {
		c.close()
		delete(m.cursors, id)
	}
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// get returns the processor or StreamProcessorDoesNotExist.
func (m *Manager) get(ws, name string) (*proc, *Error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	p, ok := m.procs[key(ws, name)]
	if !ok {
		return nil, notFound(name)
	}
	return p, nil
}

// lock returns a persistent processor with its lock held.
func (m *Manager) lock(ws, name string) (*proc, *Error) {
	p, e := m.get(ws, name)
	if e != nil {
		return nil, e
	}
	p.mu.Lock()
	if p.ephemeral {
		p.mu.Unlock()
		return nil, notFound(name)
	}
	return p, nil
}

var nameRE = regexp.MustCompile(`^[A-Za-z0-9_\-.]+$`)

// CheckName validates a processor name: 1 to MaxNameLength bytes of letters, digits, '_', '-'
// and '.', and not "." or ".." (the name is a path segment of the Admin API).
func CheckName(field, name string) *Error {
	switch {
	case name == "":
		return Errorf(CodeBadValue, "%s: the processor name must not be empty", field)
	case len(name) > MaxNameLength:
		return Errorf(CodeBadValue, "%s: the processor name is %d bytes long; the limit is %d", field, len(name), MaxNameLength)
	case !nameRE.MatchString(name) || name == "." || name == "..":
		return Errorf(CodeBadValue, "%s: %q is not a valid processor name: use letters, digits, '_', '-' and '.'", field, name)
	}
	return nil
}

// CreateRequest is sp.createStreamProcessor(name, pipeline, options) or POST …/processor.
type CreateRequest struct {
	Workspace string
	Name      string
	// Pipeline is the BSON array of stages.
	Pipeline            bson.Raw
	DLQ                 *store.DLQ
	Tier                string
	StreamMetaFieldName string
	FailoverEnabled     bool
	// By names who asked, for modifiedBy.
	By string
}

// Create validates and stores a new processor in state CREATED.
func (m *Manager) Create(req CreateRequest) (store.Processor, error) {
	if e := CheckName("name", req.Name); e != nil {
		return store.Processor{}, e
	}
	ws, e := m.workspace(req.Workspace)
	if e != nil {
		return store.Processor{}, e
	}
	if req.Tier != "" {
		if e := m.checkTierFor(ws, "tier", req.Tier); e != nil {
			return store.Processor{}, e
		}
	}
	if req.StreamMetaFieldName != "" {
		if e := checkMetaField(req.StreamMetaFieldName); e != nil {
			return store.Processor{}, e
		}
	}
	plan, e := m.validate(req.Workspace, req.Pipeline, true, req.DLQ)
	if e != nil {
		return store.Processor{}, e
	}
	if e := checkLookupMemory(plan, m.tierOf(store.Processor{Workspace: req.Workspace, Tier: req.Tier})); e != nil {
		return store.Processor{}, e
	}
	now := time.Now().UTC()
	rec := store.Processor{
		ID: bson.NewObjectID().Hex(), Workspace: req.Workspace, Name: req.Name,
		Pipeline: append([]byte(nil), req.Pipeline...), DLQ: req.DLQ, Tier: req.Tier,
		StreamMetaFieldName: req.StreamMetaFieldName, FailoverEnabled: req.FailoverEnabled,
		State: store.StateCreated, PipelineVersion: 1, ModifiedBy: req.By,
		Created: now, LastModified: now, LastStateChange: now,
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, dup := m.procs[key(req.Workspace, req.Name)]; dup {
		return store.Processor{}, Errorf(CodeStreamProcessorAlreadyExists, "stream processor name already exists: %s", req.Name)
	}
	n := 0
	for _, p := range m.procs {
		if p.rec.Workspace == req.Workspace && !p.ephemeral {
			n++
		}
	}
	if n >= m.cfg.MaxProcessors {
		return store.Processor{}, Errorf(CodeStreamProcessorLimit, "workspace %s already holds %d stream processors, its limit (spid --max-processors); drop one first", req.Workspace, m.cfg.MaxProcessors)
	}
	if err := m.cfg.Store.Update(func(tx *store.Txn) error { return tx.PutProcessor(rec) }); err != nil {
		return store.Processor{}, err
	}
	m.procs[key(req.Workspace, req.Name)] = m.newProc(rec, false)
	m.log.Info("processor created", "workspace", req.Workspace, "processor", req.Name, "id", rec.ID)
	return rec, nil
}

func checkMetaField(f string) *Error {
	if f == "" || f[0] == '$' || strings.ContainsAny(f, "\x00.") {
		return Errorf(CodeBadValue, "streamMetaFieldName: %q is not a field name (no '$' prefix, no '.')", f)
	}
	return nil
}

// workspace reads a workspace record.
func (m *Manager) workspace(name string) (store.Workspace, *Error) {
	var ws store.Workspace
	err := m.cfg.Store.View(func(tx *store.Txn) (err error) { ws, err = tx.Workspace(name); return err })
	if err != nil {
		return ws, Errorf(CodeBadValue, "workspace %s does not exist", name)
	}
	return ws, nil
}

// checkTierFor validates a tier name and the workspace's maxTierSize.
func (m *Manager) checkTierFor(ws store.Workspace, field, tier string) *Error {
	_, rank, ok := TierByName(tier)
	if !ok {
		_, e := checkTier(field, tier)
		return e
	}
	if ws.MaxTierSize != "" {
		if _, maxRank, ok := TierByName(ws.MaxTierSize); ok && rank > maxRank {
			return tierErr(tier, ws.MaxTierSize)
		}
	}
	return nil
}

// StartOptions are sp.x.start(options) and :startWith.
type StartOptions struct {
	// ClearCheckpoints starts fresh: resumeFromCheckpoint: false or clearCheckpoints: true.
	ClearCheckpoints bool
	// Tier, if set, changes the processor's tier.
	Tier string
	By   string
}

// Start moves a CREATED, STOPPED or FAILED processor to STARTED and runs it.
func (m *Manager) Start(ws, name string, opts StartOptions) error {
	p, e := m.lock(ws, name)
	if e != nil {
		return e
	}
	defer p.mu.Unlock()
	if p.rec.State == store.StateStarted {
		return Errorf(CodeIllegalOperation, "stream processor %s is already started; stop it first", name)
	}
	w, e := m.workspace(ws)
	if e != nil {
		return e
	}
	rec := p.rec
	if opts.Tier != "" {
		rec.Tier = opts.Tier
	}
	if rec.Tier != "" {
		if e := m.checkTierFor(w, "tier", rec.Tier); e != nil {
			return e
		}
	}
	// The connections may have changed since create: check again before running.
	plan, e := m.validate(ws, rec.Pipeline, true, rec.DLQ)
	if e != nil {
		return e
	}
	if e := checkLookupMemory(plan, m.tierOf(rec)); e != nil {
		return e
	}
	if opts.ClearCheckpoints {
		if err := m.cfg.Store.Update(func(tx *store.Txn) error { return tx.DeleteCheckpoint(rec.ID) }); err != nil {
			return err
		}
	}
	rec.State, rec.ErrorMsg, rec.ErrorCode, rec.ErrorRetryable, rec.HasStarted = store.StateStarted, "", 0, false, true
	rec.LastStateChange = time.Now().UTC()
	if err := m.put(rec); err != nil {
		return err
	}
	p.rec = rec
	p.stats.setState(rec.State)
	p.run = m.launch(p, false)
	m.log.Info("processor started", "workspace", ws, "processor", name, "tier", rec.Tier, "fresh", opts.ClearCheckpoints)
	return nil
}

func (m *Manager) put(rec store.Processor) error {
	return m.cfg.Store.Update(func(tx *store.Txn) error { return tx.PutProcessor(rec) })
}

// Stop stops a STARTED processor after a final checkpoint: after a clean stop nothing repeats.
func (m *Manager) Stop(ctx context.Context, ws, name string) error {
	p, e := m.lock(ws, name)
	if e != nil {
		return e
	}
	defer p.mu.Unlock()
	if p.rec.State != store.StateStarted {
		return Errorf(CodeIllegalOperation, "stream processor %s is not started (state %s)", name, p.rec.State)
	}
	var stopErr error
	if p.run != nil {
		stopErr = p.run.stop(ctx)
		p.run = nil
	}
	rec := p.rec
	if rec.State == store.StateStarted { // a failure while stopping already recorded FAILED
		rec.State = store.StateStopped
		rec.LastStateChange = time.Now().UTC()
		if err := m.put(rec); err != nil {
			return err
		}
		p.rec = rec
		p.stats.setState(rec.State)
	}
	m.closeTaps(p)
	if stopErr != nil {
		m.log.Warn("processor stopped without a final checkpoint", "workspace", ws, "processor", name, "err", stopErr)
	}
	m.log.Info("processor stopped", "workspace", ws, "processor", name)
	return nil
}

// Drop stops the processor if it runs and deletes it with its checkpoint.
func (m *Manager) Drop(ctx context.Context, ws, name string) error {
	p, e := m.get(ws, name)
	if e != nil {
		return e
	}
	p.mu.Lock()
	if p.pcur != nil {
		// An sp.process() sink blocked on a full cursor must not hold up the final barrier.
		p.pcur.close()
	}
	if p.run != nil {
		if err := p.run.stop(ctx); err != nil {
			m.log.Warn("processor dropped without a final checkpoint", "workspace", ws, "processor", name, "err", err)
		}
		p.run = nil
	}
	if !p.ephemeral {
		if err := m.cfg.Store.Update(func(tx *store.Txn) error { return tx.DeleteProcessor(ws, name) }); err != nil && !store.IsNotFound(err) {
			p.mu.Unlock()
			return err
		}
	}
	p.rec.State = "DROPPED"
	if p.deadline != nil {
		p.deadline.Stop()
	}
	pcur := p.pcur
	p.mu.Unlock()
	if pcur != nil {
		m.dropCursor(pcur)
	}
	m.closeTaps(p)
	m.mu.Lock()
	if m.procs[key(ws, name)] == p {
		delete(m.procs, key(ws, name))
	}
	m.mu.Unlock()
	m.cfg.Metrics.ForgetProcessor(ws, name)
	m.log.Info("processor dropped", "workspace", ws, "processor", name)
	return nil
}

// DropWorkspace drops every processor of a deleted workspace.
func (m *Manager) DropWorkspace(ctx context.Context, ws string) {
	for _, info := range m.List(ws) {
		_ = m.Drop(ctx, ws, info.Name)
	}
}

// ModifyRequest is sp.x.modify(...) or PATCH …/processor/{name} (spec §4.3).
type ModifyRequest struct {
	// NewName renames the processor.
	NewName string
	// Pipeline replaces the pipeline when not nil.
	Pipeline bson.Raw
	// DLQ replaces the dead-letter queue; RemoveDLQ ({dlq: {}}) removes it.
	DLQ       *store.DLQ
	RemoveDLQ bool
	Tier      string
	// ResumeFromCheckpoint is true by default: the new pipeline resumes from the checkpoint,
	// which limits what may change.
	ResumeFromCheckpoint bool
	By                   string
}

// Modify changes a processor that is not running.
func (m *Manager) Modify(ws, name string, req ModifyRequest) error {
	p, e := m.lock(ws, name)
	if e != nil {
		return e
	}
	defer p.mu.Unlock()
	if p.rec.State == store.StateStarted {
		return Errorf(CodeIllegalOperation, "stream processor %s is running: stop it before modifying it", name)
	}
	w, e := m.workspace(ws)
	if e != nil {
		return e
	}
	rec := p.rec
	if req.Tier != "" {
		if e := m.checkTierFor(w, "tier", req.Tier); e != nil {
			return e
		}
		rec.Tier = req.Tier
	}
	if req.RemoveDLQ {
		rec.DLQ = nil
	} else if req.DLQ != nil {
		rec.DLQ = req.DLQ
	}
	if req.Pipeline != nil {
		newPlan, e := m.validate(ws, req.Pipeline, true, rec.DLQ)
		if e != nil {
			return e
		}
		if req.ResumeFromCheckpoint && rec.HasStarted {
			oldPlan, err := pipeline.Parse(rec.Pipeline, pipeline.ParseOptions{RequireSink: true})
			if err == nil {
				if e := compatible(oldPlan, newPlan); e != nil {
					return e
				}
			}
		}
		rec.Pipeline = append([]byte(nil), req.Pipeline...)
		rec.PipelineVersion++
	} else if _, e := m.validate(ws, rec.Pipeline, true, rec.DLQ); e != nil {
		return e
	}
	newName := name
	if req.NewName != "" && req.NewName != name {
		if e := CheckName("name", req.NewName); e != nil {
			return e
		}
		newName = req.NewName
	}
	rec.Name = newName
	rec.ModifiedBy = req.By
	rec.LastModified = time.Now().UTC()
	m.mu.Lock()
	defer m.mu.Unlock()
	if newName != name {
		if _, dup := m.procs[key(ws, newName)]; dup {
			return Errorf(CodeStreamProcessorAlreadyExists, "stream processor name already exists: %s", newName)
		}
	}
	err := m.cfg.Store.Update(func(tx *store.Txn) error {
		if newName != name {
			// DeleteProcessor removes the checkpoint with the old record; a rename keeps it.
			cp, cpErr := tx.Checkpoint(rec.ID)
			if err := tx.DeleteProcessor(ws, name); err != nil {
				return err
			}
			if cpErr == nil {
				if err := tx.PutCheckpoint(cp); err != nil {
					return err
				}
			}
		}
		if !req.ResumeFromCheckpoint {
			if err := tx.DeleteCheckpoint(rec.ID); err != nil {
				return err
			}
		}
		return tx.PutProcessor(rec)
	})
	if err != nil {
		return err
	}
	if newName != name {
		delete(m.procs, key(ws, name))
		m.cfg.Metrics.ForgetProcessor(ws, name)
		p.stats = newStats(m.cfg.Metrics, ws, newName)
		p.stats.setState(rec.State)
		m.procs[key(ws, newName)] = p
	}
	p.rec = rec
	m.log.Info("processor modified", "workspace", ws, "processor", name, "newName", newName, "resumeFromCheckpoint", req.ResumeFromCheckpoint)
	return nil
}

// compatible applies spec §4.3 to a modify that resumes from the checkpoint: the $source, the
// window's type and interval stay, and a window is not removed.
func compatible(old, cur *pipeline.Plan) *Error {
	if string(old.Source.Options) != string(cur.Source.Options) {
		return Errorf(CodeStreamProcessorInvalidOption, "pipeline.0.$source: cannot change $source when resuming from the checkpoint; pass resumeFromCheckpoint: false")
	}
	switch {
	case old.Window == nil:
		return nil
	case cur.Window == nil:
		return Errorf(CodeStreamProcessorInvalidOption, "pipeline: cannot remove the window %s when resuming from the checkpoint; pass resumeFromCheckpoint: false", old.Window.Kind)
	case old.Window.Kind != cur.Window.Kind:
		return Errorf(CodeStreamProcessorInvalidOption, "pipeline: cannot change the window from %s to %s when resuming from the checkpoint; pass resumeFromCheckpoint: false", old.Window.Kind, cur.Window.Kind)
	case old.Window.Interval != cur.Window.Interval || old.Window.HopSize != cur.Window.HopSize || old.Window.Gap != cur.Window.Gap:
		return Errorf(CodeStreamProcessorInvalidOption, "pipeline: cannot change the %s interval when resuming from the checkpoint; pass resumeFromCheckpoint: false", old.Window.Kind)
	}
	return nil
}

// roles finds a custom role of the project in the registry, read at each call (a
// connectors.Env's Roles): a CUSTOM execute-as role is checked as the registry has it at create
// and at each start.
func (m *Manager) roles(name string) (store.Role, bool) {
	var r store.Role
	err := m.cfg.Store.View(func(tx *store.Txn) (err error) { r, err = tx.Role(name); return err })
	return r, err == nil
}

// validate parses a pipeline and checks every connection it names against the registry and
// the connector table.
func (m *Manager) validate(ws string, pipe bson.Raw, requireSink bool, dlq *store.DLQ) (*pipeline.Plan, *Error) {
	if len(pipe) == 0 {
		return nil, Errorf(CodeFailedToParse, "pipeline is required: an array of stages starting with $source")
	}
	conns := map[string]store.Connection{}
	err := m.cfg.Store.View(func(tx *store.Txn) error {
		list, err := tx.Connections(ws)
		for _, c := range list {
			conns[c.Name] = c
		}
		return err
	})
	if err != nil {
		return nil, AsError(err)
	}
	// A connection that does not exist is the first thing to say: the options a stage needs
	// depend on the connection's type.
	if e := unknownConnection(ws, pipe, conns); e != nil {
		return nil, e
	}
	plan, err := pipeline.Parse(pipe, pipeline.ParseOptions{RequireSink: requireSink})
	if err != nil {
		return nil, Errorf(CodeFailedToParse, "%s", err.Error())
	}
	if name := plan.Source.ConnectionName; name != "" {
		c, ok := conns[name]
		if !ok {
			return nil, Errorf(CodeStreamProcessorInvalidOption, "pipeline.0.$source.connectionName: no connection named %q in workspace %s", name, ws)
		}
		t, ok := connectors.Lookup(c.Type)
		if !ok || t.NewSource == nil {
			return nil, Errorf(CodeStreamProcessorInvalidOption, "pipeline.0.$source.connectionName: connection %q is of type %s, which this spid cannot read from yet", name, c.Type)
		}
		// A constructor only reads options (connecting is Open's work): building the source
		// here refuses bad options at create rather than at start.
		src, err := t.NewSource(connectors.Env{Workspace: ws, Connection: &c, Roles: m.roles}, plan.Source)
		if err != nil {
			return nil, classify(err)
		}
		_ = src.Close()
	}
	if s := plan.Sink; s != nil {
		switch s.ConnectionName {
		case connectors.TestLog, connectors.Discard:
		default:
			c, ok := conns[s.ConnectionName]
			if !ok {
				return nil, Errorf(CodeStreamProcessorInvalidOption, "%s.connectionName: no connection named %q in workspace %s", s.Stage, s.ConnectionName, ws)
			}
			if c.Type == store.TypeSample {
				return nil, Errorf(CodeStreamProcessorInvalidOption, "%s: connection %q is a Sample connection, which can only be a $source", s.Stage, s.ConnectionName)
			}
			t, ok := connectors.Lookup(c.Type)
			if !ok || t.NewSink == nil {
				return nil, Errorf(CodeStreamProcessorInvalidOption, "%s: connection %q is of type %s, which this spid cannot write to yet", s.Stage, s.ConnectionName, c.Type)
			}
			sink, err := t.NewSink(connectors.Env{Workspace: ws, Connection: &c, Roles: m.roles}, s)
			if err != nil {
				return nil, classify(err)
			}
			_ = sink.Close()
		}
	}
	for _, l := range plan.Lookups {
		c, ok := conns[l.ConnectionName]
		if !ok {
			return nil, Errorf(CodeStreamProcessorInvalidOption, "%s.from.connectionName: no connection named %q in workspace %s", l.Stage, l.ConnectionName, ws)
		}
		t, ok := connectors.Lookup(c.Type)
		if !ok || t.NewLookup == nil {
			return nil, Errorf(CodeStreamProcessorInvalidOption, "%s.from.connectionName: connection %q is of type %s; %s reads from a Cluster connection", l.Stage, l.ConnectionName, c.Type, l.Stage)
		}
		// Building the reader checks the execute-as role's find privilege on from, without I/O.
		lr, err := t.NewLookup(connectors.Env{Workspace: ws, Connection: &c, Roles: m.roles}, l)
		if err != nil {
			return nil, classify(err)
		}
		_ = lr.Close()
	}
	if dlq != nil {
		c, ok := conns[dlq.ConnectionName]
		switch {
		case dlq.ConnectionName == "" || dlq.DB == "" || dlq.Coll == "":
			return nil, Errorf(CodeStreamProcessorInvalidOption, "options.dlq: connectionName, db and coll are all required")
		case !ok:
			return nil, Errorf(CodeStreamProcessorInvalidOption, "options.dlq.connectionName: no connection named %q in workspace %s", dlq.ConnectionName, ws)
		case c.Type != store.TypeCluster:
			return nil, Errorf(CodeStreamProcessorInvalidOption, "options.dlq.connectionName: connection %q is of type %s; a dead-letter queue needs a Cluster connection", dlq.ConnectionName, c.Type)
		}
		// Building the writer checks its options and the execute-as role, without I/O, so a
		// dead-letter collection the role may not write to is refused at create.
		if t, ok := connectors.Lookup(c.Type); ok && t.NewDLQ != nil {
			w, err := t.NewDLQ(connectors.Env{Workspace: ws, Connection: &c, Roles: m.roles}, dlq)
			if err != nil {
				return nil, classify(err)
			}
			_ = w.Close()
		}
	}
	return plan, nil
}

// maxLookupCacheShare is the largest share of its tier's RAM a $cachedLookup's
// maxMemUsageBytes may ask for: 12.5 % (Atlas's $cachedLookup page, spec §3.4 and §9).
const maxLookupCacheShare = 8 // RAM / 8

// checkLookupMemory refuses a $cachedLookup whose maxMemUsageBytes is over 12.5 % of the
// processor tier's RAM, with code 420 naming the field, the tier and the cap.
func checkLookupMemory(plan *pipeline.Plan, t Tier) *Error {
	if plan == nil {
		return nil
	}
	for _, l := range plan.Lookups {
		if n, max := l.MaxMemUsageBytes(), t.RAM/maxLookupCacheShare; n > max {
			return Errorf(CodeStreamProcessorInvalidOption, "%s.maxMemUsageBytes: %d is over 12.5%% of tier %s's %d MiB (at most %d bytes)", l.Stage, n, t.Name, t.RAM>>20, max)
		}
	}
	return nil
}

// RunningUsing names the workspace's running (STARTED) processors whose pipeline or dead-letter
// queue uses the connection: Atlas refuses to modify or delete a connection they use (spec §4.2).
func (m *Manager) RunningUsing(ws, conn string) []string {
	var out []string
	for _, p := range m.inWorkspace(ws) {
		p.mu.Lock()
		rec := p.rec
		p.mu.Unlock()
		if rec.State != store.StateStarted {
			continue
		}
		if (rec.DLQ != nil && rec.DLQ.ConnectionName == conn) || usesConnection(bson.RawValue{Type: bson.TypeArray, Value: rec.Pipeline}, conn) {
			out = append(out, rec.Name)
		}
	}
	sort.Strings(out)
	return out
}

// usesConnection reports whether a connectionName field anywhere in v names conn.
func usesConnection(v bson.RawValue, conn string) bool {
	var elems []bson.RawElement
	switch v.Type {
	case bson.TypeEmbeddedDocument:
		elems, _ = v.Document().Elements()
	case bson.TypeArray:
		elems, _ = bson.Raw(v.Value).Elements()
	default:
		return false
	}
	for _, e := range elems {
		if e.Key() == "connectionName" {
			if name, ok := e.Value().StringValueOK(); ok && name == conn {
				return true
			}
		}
		if usesConnection(e.Value(), conn) {
			return true
		}
	}
	return false
}

// unknownConnection finds a connectionName in the first or last stage that names no
// connection of the workspace: $source.connectionName, $emit.connectionName,
// $merge.into.connectionName, $https.connectionName.
func unknownConnection(ws string, pipe bson.Raw, conns map[string]store.Connection) *Error {
	vals, err := bson.RawArray(pipe).Values()
	if err != nil || len(vals) == 0 {
		return nil
	}
	check := func(i int, stage bson.Raw) *Error {
		elem, err := stage.IndexErr(0)
		if err != nil {
			return nil
		}
		spec, ok := elem.Value().DocumentOK()
		if !ok {
			return nil
		}
		path := []string{"connectionName"}
		if elem.Key() == "$merge" {
			path = []string{"into", "connectionName"}
		}
		v, err := spec.LookupErr(path...)
		if err != nil {
			return nil
		}
		name, ok := v.StringValueOK()
		if !ok || name == "" || name == connectors.TestLog || name == connectors.Discard {
			return nil
		}
		if _, ok := conns[name]; ok {
			return nil
		}
		field := fmt.Sprintf("pipeline.%d.%s.%s", i, elem.Key(), path[0])
		if len(path) == 2 {
			field += "." + path[1]
		}
		return Errorf(CodeStreamProcessorInvalidOption, "%s: no connection named %q in workspace %s", field, name, ws)
	}
	for _, i := range []int{0, len(vals) - 1} {
		if d, ok := vals[i].DocumentOK(); ok {
			if e := check(i, d); e != nil {
				return e
			}
		}
	}
	return nil
}

// Info is a processor's definition and state with a snapshot of its stats.
type Info struct {
	store.Processor
	Stats Snapshot
}

// Get returns one processor.
func (m *Manager) Get(ws, name string) (Info, error) {
	p, e := m.get(ws, name)
	if e != nil {
		return Info{}, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ephemeral {
		return Info{}, notFound(name)
	}
	return p.info(), nil
}

// info is the processor's record and stats; a processor that is retrying after an error shows
// the error in errorMsg while it is still STARTED (spec §4.5). Call with p.mu held.
func (p *proc) info() Info {
	in := Info{Processor: p.rec, Stats: p.stats.snapshot()}
	if e := p.stats.retry.Load(); e != nil && in.State == store.StateStarted {
		in.ErrorMsg, in.ErrorCode, in.ErrorRetryable = e.Msg, int32(e.Code), true
	}
	return in
}

// inWorkspace is a workspace's processors as of now, without sp.process() runs.
func (m *Manager) inWorkspace(ws string) []*proc {
	m.mu.Lock()
	defer m.mu.Unlock()
	var ps []*proc
	for _, p := range m.procs {
		if p.rec.Workspace == ws && !p.ephemeral {
			ps = append(ps, p)
		}
	}
	return ps
}

// List returns a workspace's processors sorted by name (sp.process() runs are not listed).
func (m *Manager) List(ws string) []Info {
	ps := m.inWorkspace(ws)
	out := make([]Info, 0, len(ps))
	for _, p := range ps {
		p.mu.Lock()
		out = append(out, p.info())
		p.mu.Unlock()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// StatsOf returns a processor's stats; verbose adds per-operator stats and latency.
func (m *Manager) StatsOf(ws, name string) (Info, []pipeline.OperatorStats, error) {
	p, e := m.get(ws, name)
	if e != nil {
		return Info{}, nil, e
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.info(), p.stats.operators(), nil
}

// GroupID is the project id the manager reports in stats' ns.
func (m *Manager) GroupID() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.cfg.GroupID
}

// SetGroupID sets the project id once the first start created the project.
func (m *Manager) SetGroupID(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cfg.GroupID = id
}

// fail records a processor's failure: FAILED with errorMsg, errorCode and errorRetryable.
func (m *Manager) fail(p *proc, r *runner, e *Error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.run != r { // stopped or restarted meanwhile
		return
	}
	p.run = nil
	rec := p.rec
	rec.State = store.StateFailed
	rec.ErrorMsg, rec.ErrorCode, rec.ErrorRetryable = e.Msg, int32(e.Code), e.Retryable
	rec.LastStateChange = time.Now().UTC()
	if !p.ephemeral {
		if err := m.put(rec); err != nil {
			m.log.Error("could not record a processor failure", "workspace", rec.Workspace, "processor", rec.Name, "err", err)
		}
	}
	p.rec = rec
	p.stats.setState(rec.State)
	m.log.Error("processor failed", "workspace", rec.Workspace, "processor", rec.Name, "code", int32(e.Code), "codeName", e.Code.Name(), "errorMsg", e.Msg)
	if p.pcur != nil {
		p.pcur.fail(e)
	}
	go m.closeTaps(p)
}

// launch starts a runner for p; p.mu is held.
func (m *Manager) launch(p *proc, fresh bool) *runner {
	r := newRunner(m, p, fresh)
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		r.supervise()
	}()
	return r
}

// stateLimit is the operator-state limit of a processor.
func (m *Manager) stateLimit(rec store.Processor) (int64, string) {
	t := m.tierOf(rec)
	if m.cfg.MemoryLimit > 0 {
		return m.cfg.MemoryLimit, "spid --processor-memory-limit"
	}
	return t.StateLimit(), fmt.Sprintf("80%% of tier %s's %d MiB", t.Name, t.RAM>>20)
}

// tierOf is the tier a processor runs at: its own, else its workspace's, else SP10.
func (m *Manager) tierOf(rec store.Processor) Tier {
	tier := rec.Tier
	if tier == "" {
		var ws store.Workspace
		_ = m.cfg.Store.View(func(tx *store.Txn) (err error) { ws, err = tx.Workspace(rec.Workspace); return err })
		tier = ws.Tier
	}
	t, _, ok := TierByName(tier)
	if !ok {
		t, _, _ = TierByName("SP10")
	}
	return t
}

// newCursorID returns a random positive cursor id.
func newCursorID() int64 {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int64(binary.LittleEndian.Uint64(b[:])>>1) | 1
}

var errStopped = errors.New("processor stopped")
