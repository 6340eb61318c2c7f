package pipeline

// OperatorStats counts the documents one operator took in, passed on and sent to the
// dead-letter queue: the per-operator part of getStreamProcessorStats with verbose (spec §5.1,
// operatorStats).
type OperatorStats struct {
	// Name is the operator's name, e.g. "$match" or "$tumblingWindow".
	Name string
	// InputCount is the documents the operator was given, OutputCount those it passed on,
	// DLQCount those it failed on.
	InputCount, OutputCount, DLQCount int64
	// StateSize and MaxMemoryUsage are the bytes a $cachedLookup's cache holds and may hold
	// (maxMemUsageBytes); 0 for other operators.
	StateSize, MaxMemoryUsage int64

	st Stage
}

// SourceDeadLetters counts the inputs that became dead letters at $source: records the source
// could not turn into documents (Input.Err), malformed documents, a timeField that failed.
// Read it on the engine's goroutine.
func (e *Engine) SourceDeadLetters() int64 { return e.srcDLQ }

// Operators returns the operators' counters in pipeline order: the stages before the window,
// the window's per-document stages, the window itself (its input, and the results it emitted
// after its inner pipeline), then the stages after the window. Read them on the engine's
// goroutine.
func (e *Engine) Operators() []OperatorStats {
	// chain registers each chain's stages last to first, and NewEngine builds the chain after
	// the window first, then the window's, then the one before it.
	n := len(e.ops)
	nAfter := len(e.plan.After)
	if e.plan.Window == nil {
		nAfter = 0
	}
	out := make([]OperatorStats, 0, n+1)
	for i := n - 1; i >= nAfter; i-- {
		out = append(out, *e.ops[i])
	}
	winAt := -1
	if e.win != nil {
		winAt = len(out)
		out = append(out, *e.win)
	}
	for i := nAfter - 1; i >= 0; i-- {
		out = append(out, *e.ops[i])
	}
	for i := range out {
		if l, ok := out[i].st.(*lookupStage); ok && l.cache != nil {
			out[i].StateSize, out[i].MaxMemoryUsage = l.cache.used, l.cache.max
		}
		out[i].st = nil
	}
	// A stage's output is what the next one took in; the window counts its own.
	for i := range out {
		if i == winAt {
			continue
		}
		if i+1 < len(out) {
			out[i].OutputCount = out[i+1].InputCount
		} else {
			out[i].OutputCount = e.emitted
		}
	}
	return out
}
