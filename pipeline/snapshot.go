package pipeline

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// snapshot layout version.
const snapshotVersion = 1

func docOrNull(d bson.Raw) any {
	if d == nil {
		return nil
	}
	return d
}

func docsValue(docs []*Doc, seqs []int64) bson.A {
	out := bson.A{}
	for i, d := range docs {
		item := bson.D{{Key: "raw", Value: d.Raw}, {Key: "meta", Value: docOrNull(d.Meta)}, {Key: "time", Value: d.Time}}
		if seqs != nil {
			item = append(item, bson.E{Key: "seq", Value: seqs[i]})
		}
		out = append(out, item)
	}
	return out
}

// Snapshot serializes the engine's state (watermarks and open windows) deterministically:
// restoring it into a fresh engine for the same pipeline and continuing gives exactly the
// output the uninterrupted engine would have given.
func (e *Engine) Snapshot() ([]byte, error) {
	parts := bson.A{}
	var ids []int32
	for p := range e.partitions {
		ids = append(ids, p)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	for _, id := range ids {
		p := e.partitions[id]
		parts = append(parts, bson.D{{Key: "p", Value: id}, {Key: "max", Value: p.max}, {Key: "idle", Value: p.idle}})
	}
	panes := bson.A{}
	var starts []int64
	for s := range e.panes {
		starts = append(starts, s)
	}
	sort.Slice(starts, func(i, j int) bool { return starts[i] < starts[j] })
	for _, s := range starts {
		p := e.panes[s]
		item := bson.D{{Key: "start", Value: p.start}, {Key: "end", Value: p.end}, {Key: "meta", Value: docOrNull(p.meta)}}
		if p.groups != nil {
			item = append(item, bson.E{Key: "groups", Value: e.plan.Window.group.snapshot(p.groups)})
		} else {
			item = append(item, bson.E{Key: "docs", Value: docsValue(p.docs, nil)})
		}
		panes = append(panes, item)
	}
	sessions := bson.A{}
	var keys []string
	for k := range e.sessions {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		for _, s := range e.sessions[k] {
			docs := make([]*Doc, len(s.docs))
			seqs := make([]int64, len(s.docs))
			for i, sd := range s.docs {
				docs[i], seqs[i] = sd.d, sd.seq
			}
			sessions = append(sessions, bson.D{{Key: "k", Value: k}, {Key: "key", Value: s.key}, {Key: "start", Value: s.start},
				{Key: "max", Value: s.max}, {Key: "meta", Value: docOrNull(s.meta)}, {Key: "docs", Value: docsValue(docs, seqs)}})
		}
	}
	return bson.Marshal(bson.D{
		{Key: "v", Value: int32(snapshotVersion)},
		{Key: "watermark", Value: e.watermark},
		{Key: "seq", Value: e.seq},
		{Key: "partitions", Value: parts},
		{Key: "panes", Value: panes},
		{Key: "sessions", Value: sessions},
	})
}

func metaOf(v bson.RawValue) bson.Raw {
	if d, ok := v.DocumentOK(); ok {
		return append(bson.Raw(nil), d...)
	}
	return nil
}

func docsFrom(v bson.RawValue) ([]*Doc, []int64) {
	var docs []*Doc
	var seqs []int64
	for _, item := range valuesOf(v) {
		d, ok := item.DocumentOK()
		if !ok {
			continue
		}
		raw, _ := d.Lookup("raw").DocumentOK()
		docs = append(docs, &Doc{Raw: append(bson.Raw(nil), raw...), Meta: metaOf(d.Lookup("meta")), Time: d.Lookup("time").Int64()})
		if s, err := d.LookupErr("seq"); err == nil {
			seqs = append(seqs, s.Int64())
		}
	}
	return docs, seqs
}

// Restore replaces the engine's state with a snapshot of an engine for the same pipeline.
func (e *Engine) Restore(snapshot []byte) error {
	doc := bson.Raw(snapshot)
	if err := doc.Validate(); err != nil {
		return errBadSnapshot
	}
	if v, ok := doc.Lookup("v").Int32OK(); !ok || v != snapshotVersion {
		return errBadSnapshot
	}
	e.watermark = doc.Lookup("watermark").Int64()
	e.seq = doc.Lookup("seq").Int64()
	e.partitions = map[int32]*partition{}
	for _, item := range valuesOf(doc.Lookup("partitions")) {
		d, _ := item.DocumentOK()
		e.partitions[d.Lookup("p").Int32()] = &partition{max: d.Lookup("max").Int64(), idle: d.Lookup("idle").Boolean()}
	}
	e.panes = map[int64]*pane{}
	for _, item := range valuesOf(doc.Lookup("panes")) {
		d, _ := item.DocumentOK()
		p := &pane{start: d.Lookup("start").Int64(), end: d.Lookup("end").Int64(), meta: metaOf(d.Lookup("meta"))}
		if g, err := d.LookupErr("groups"); err == nil {
			if e.plan.Window == nil || e.plan.Window.group == nil {
				return errBadSnapshot
			}
			gs, err := e.plan.Window.group.restore(g)
			if err != nil {
				return err
			}
			p.groups = gs
		} else {
			p.docs, _ = docsFrom(d.Lookup("docs"))
		}
		e.panes[p.start] = p
	}
	e.sessions = map[string][]*session{}
	for _, item := range valuesOf(doc.Lookup("sessions")) {
		d, _ := item.DocumentOK()
		k := d.Lookup("k").StringValue()
		s := &session{key: copyValue(d.Lookup("key")), start: d.Lookup("start").Int64(), max: d.Lookup("max").Int64(), meta: metaOf(d.Lookup("meta"))}
		docs, seqs := docsFrom(d.Lookup("docs"))
		for i := range docs {
			s.docs = append(s.docs, seqDoc{seq: seqs[i], d: docs[i]})
		}
		e.sessions[k] = append(e.sessions[k], s)
	}
	return nil
}
