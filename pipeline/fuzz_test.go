package pipeline

import (
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// FuzzParse feeds arbitrary bytes to the parser as a pipeline; whatever it accepts is run on a
// few documents, through windows and a flush. Nothing may panic or hang.
func FuzzParse(f *testing.F) {
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			f.Add(c.Pipeline.Value)
		}
	}
	docs := []bson.Raw{mustDoc(bson.D{{Key: "a", Value: 1}, {Key: "b", Value: "x"}}), mustDoc(bson.D{{Key: "a", Value: bson.A{1, 2}}, {Key: "t", Value: bson.DateTime(5)}})}
	f.Fuzz(func(t *testing.T, data []byte) {
		if bson.Raw(data).Validate() != nil {
			return
		}
		plan, err := Parse(data, ParseOptions{})
		if err != nil {
			return
		}
		eng := NewEngine(plan, Options{Now: func() time.Time { return fixedNow }})
		for i, d := range docs {
			eng.Push([]Input{{Doc: d, Time: int64(i) * 1000}})
		}
		if snap, err := eng.Snapshot(); err == nil {
			_ = NewEngine(plan, Options{}).Restore(snap)
		}
		eng.Flush()
	})
}

func mustDoc(d bson.D) bson.Raw {
	b, err := bson.Marshal(d)
	if err != nil {
		panic(err)
	}
	return b
}

// FuzzPush runs arbitrary bytes through the golden pipelines as an input document (and its
// stream metadata): a malformed document becomes a dead letter or is processed as far as its
// bytes allow; nothing may panic.
func FuzzPush(f *testing.F) {
	var plans []*Plan
	for _, cases := range loadGolden(f) {
		for _, c := range cases {
			if c.Error != "" {
				continue
			}
			plan, err := Parse(withSource(bson.Raw(c.Pipeline.Value)), ParseOptions{})
			if err != nil {
				continue
			}
			plans = append(plans, plan)
			for _, in := range c.Input {
				f.Add(uint16(len(plans)-1), []byte(in.Doc), []byte(in.Meta))
			}
		}
	}
	f.Add(uint16(0), []byte{5, 0, 0, 0, 0}, []byte{5, 0, 0, 0})
	f.Fuzz(func(t *testing.T, which uint16, doc, meta []byte) {
		plan := plans[int(which)%len(plans)]
		eng := NewEngine(plan, Options{Now: func() time.Time { return fixedNow }})
		eng.Push([]Input{{Doc: doc, Meta: meta, Time: 1000}, {Doc: doc, Time: 2000}})
		eng.Flush()
	})
}
