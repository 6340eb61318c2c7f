package pipeline

// OperatorStats counts the documents one stage took in and sent to the dead-letter queue: the
// per-operator part of getStreamProcessorStats with verbose (spec §5.1, operatorStats).
type OperatorStats struct {
	// Name is the stage's operator name, e.g. "$match".
	Name string
	// InputCount is the documents the stage was given; DLQCount those it failed on.
	InputCount, DLQCount int64
}

// Operators returns the stateless stages' counters in pipeline order: the stages before the
// window, the window's per-document stages, then the stages after the window. A stage's
// output count is the next one's input count. The values are live: read them on the engine's
// goroutine, or copy them there.
func (e *Engine) Operators() []OperatorStats {
	// chain registers each chain's stages last to first, and NewEngine builds the chain after
	// the window first, then the window's, then the one before it.
	out := make([]OperatorStats, len(e.ops))
	for i, op := range e.ops {
		out[len(e.ops)-1-i] = *op
	}
	return out
}
