package pipeline

import "go.mongodb.org/mongo-driver/v2/bson"

// Per-item overheads of the state size estimate: Go headers of a retained document, a group
// entry and an accumulator, so that many small items are not counted as free.
const (
	docOverhead   = 64
	groupOverhead = 96
	accOverhead   = 48
	valueOverhead = 24
)

// StateSize estimates, in bytes, the operator state the engine holds: the documents and groups
// of its open windows. It is the stats field stateSize (spec §5.1) and what the processor's
// memory limit is checked against (spec §9: state beyond 80 % of the tier's RAM fails the
// processor). It walks the open windows, O(windows + groups), so callers sample it rather than
// calling it per document.
func (e *Engine) StateSize() int64 {
	var n int64
	for _, p := range e.panes {
		n += int64(len(p.meta))
		for _, d := range p.docs {
			n += docSize(d)
		}
		if p.groups != nil {
			n += p.groups.size()
		}
	}
	for _, list := range e.sessions {
		for _, s := range list {
			n += int64(len(s.meta)) + int64(len(s.key.Value))
			for _, sd := range s.docs {
				n += docSize(sd.d)
			}
		}
	}
	return n
}

func docSize(d *Doc) int64 { return int64(len(d.Raw)+len(d.Meta)) + docOverhead }

func (st *groups) size() int64 {
	n := int64(cap(st.bytes))
	for _, g := range st.order {
		n += groupOverhead + int64(len(g.key))
		for _, a := range g.accs {
			n += accOverhead
			if s, ok := a.(interface{ size() int64 }); ok {
				n += s.size()
			}
		}
	}
	return n
}

func valuesSize(vs []bson.RawValue) int64 {
	var n int64
	for _, v := range vs {
		n += valueOverhead + int64(len(v.Value))
	}
	return n
}

func (a *pushAcc) size() int64       { return valuesSize(a.vals) }
func (a *nAcc) size() int64          { return valuesSize(a.vals) }
func (a *mergeAcc) size() int64      { return int64(len(a.doc)) }
func (a *percentileAcc) size() int64 { return int64(8 * cap(a.vals)) }
func (a *topAcc) size() int64 {
	var n int64
	for _, it := range a.items {
		n += 2*valueOverhead + int64(len(it.out.Value)+len(it.key.Value))
	}
	return n
}
