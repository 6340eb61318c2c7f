package pipeline

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// goldenCase is one case of testdata/pipelines/*.json (relaxed Extended JSON).
type goldenCase struct {
	Name     string        `bson:"name"`
	Pipeline bson.RawValue `bson:"pipeline"`
	Input    []struct {
		Doc       bson.Raw      `bson:"doc"`
		Time      bson.RawValue `bson:"time"`
		Partition int32         `bson:"partition"`
		Meta      bson.Raw      `bson:"meta"`
		// Idle marks the partition idle instead of pushing a document.
		Idle bool `bson:"idle"`
	} `bson:"input"`
	// NoFlush leaves windows open at the end (flush closes them, as the end of inline
	// documents does).
	NoFlush bool       `bson:"noFlush"`
	Output  []bson.Raw `bson:"output"`
	DLQ     []struct {
		Operator string `bson:"operator"`
		Reason   string `bson:"reason"`
	} `bson:"dlq"`
	// Error is expected instead of a result: Parse must fail with a message containing it.
	Error string `bson:"error"`
	// KeepStreamFields keeps _ts and _stream_meta in the compared output.
	KeepStreamFields bool `bson:"keepStreamFields"`
}

type goldenFile struct {
	Cases []goldenCase `bson:"cases"`
}

func loadGolden(t testing.TB) map[string][]goldenCase {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "testdata", "pipelines", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files: %v", err)
	}
	out := map[string][]goldenCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var gf goldenFile
		if err := bson.UnmarshalExtJSON(b, false, &gf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = gf.Cases
	}
	return out
}

func inputTime(v bson.RawValue) int64 {
	switch v.Type {
	case bson.TypeDateTime:
		return v.DateTime()
	case bson.TypeInt32, bson.TypeInt64, bson.TypeDouble:
		return v.AsInt64()
	case bson.TypeString:
		t, _ := time.Parse(time.RFC3339Nano, v.StringValue())
		return t.UnixMilli()
	}
	return 0
}

// withSource prepends a $source when the case's pipeline starts elsewhere.
func withSource(p bson.Raw) bson.Raw {
	first, err := bson.RawArray(p).IndexErr(0)
	if err == nil {
		if d, ok := first.DocumentOK(); ok {
			if _, err := d.LookupErr("$source"); err == nil {
				return p
			}
		}
	}
	vals, _ := bson.RawArray(p).Values()
	arr := bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "test"}}}}}
	for _, v := range vals {
		arr = append(arr, v)
	}
	_, b, _ := bson.MarshalValue(arr)
	return b
}

func strip(doc bson.Raw) bson.Raw {
	for _, f := range []string{"_ts", "_stream_meta"} {
		if _, err := doc.LookupErr(f); err == nil {
			n := newNode()
			n.add(&projField{name: f, kind: fieldExclude})
			doc = n.exclude(doc, nil)
		}
	}
	return doc
}

var fixedNow = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// runCase runs a case; snapshotAt >= 0 snapshots after that many inputs and continues in a
// fresh engine restored from it.
func runCase(t *testing.T, c goldenCase, plan *Plan, snapshotAt int) Result {
	t.Helper()
	opts := Options{ProcessorName: "golden", Now: func() time.Time { return fixedNow }}
	eng := NewEngine(plan, opts)
	var all Result
	add := func(r Result) {
		all.Out = append(all.Out, r.Out...)
		all.DLQ = append(all.DLQ, r.DLQ...)
	}
	for i, in := range c.Input {
		if i == snapshotAt {
			snap, err := eng.Snapshot()
			if err != nil {
				t.Fatalf("snapshot: %v", err)
			}
			fresh := NewEngine(plan, opts)
			if err := fresh.Restore(snap); err != nil {
				t.Fatalf("restore: %v", err)
			}
			again, _ := fresh.Snapshot()
			if !bytes.Equal(snap, again) {
				t.Fatalf("snapshot after restore differs from the snapshot restored")
			}
			eng = fresh
		}
		if in.Idle {
			add(eng.Idle(in.Partition))
			continue
		}
		add(eng.Push([]Input{{Doc: in.Doc, Meta: in.Meta, Time: inputTime(in.Time), Partition: in.Partition}}))
	}
	if !c.NoFlush {
		add(eng.Flush())
	}
	return all
}

func checkResult(t *testing.T, c goldenCase, got Result) {
	t.Helper()
	if len(got.Out) != len(c.Output) {
		t.Errorf("%d outputs, want %d:\n got: %v\nwant: %v", len(got.Out), len(c.Output), fmtDocs(got.Out, !c.KeepStreamFields), fmtDocs(c.Output, false))
		return
	}
	for i := range got.Out {
		g := got.Out[i]
		if !c.KeepStreamFields {
			g = strip(g)
		}
		if !bytes.Equal(g, c.Output[i]) {
			t.Errorf("output %d:\n got %s\nwant %s", i, g.String(), c.Output[i].String())
		}
	}
	if len(got.DLQ) != len(c.DLQ) {
		t.Errorf("%d dead letters, want %d: %v", len(got.DLQ), len(c.DLQ), fmtDocs(got.DLQ, false))
		return
	}
	for i, d := range got.DLQ {
		op, _ := d.Lookup("operatorName").StringValueOK()
		reason, _ := d.Lookup("errInfo", "reason").StringValueOK()
		if op != c.DLQ[i].Operator || !strings.Contains(reason, c.DLQ[i].Reason) {
			t.Errorf("dead letter %d: %s %q, want %s containing %q", i, op, reason, c.DLQ[i].Operator, c.DLQ[i].Reason)
		}
		if name, _ := d.Lookup("processorName").StringValueOK(); name != "golden" {
			t.Errorf("dead letter %d lacks processorName", i)
		}
	}
}

func fmtDocs(docs []bson.Raw, stripFields bool) string {
	var b strings.Builder
	for _, d := range docs {
		if stripFields {
			d = strip(d)
		}
		b.WriteString("\n  " + d.String())
	}
	return b.String()
}

// TestGolden runs every case of testdata/pipelines; window cases are run again, once for each
// input position, snapshotting there and continuing in a restored engine.
func TestGolden(t *testing.T) {
	total := 0
	for file, cases := range loadGolden(t) {
		for _, c := range cases {
			total++
			t.Run(file+"/"+c.Name, func(t *testing.T) {
				pipe := bson.Raw(c.Pipeline.Value)
				if c.Error == "" {
					pipe = withSource(pipe)
				}
				plan, err := Parse(pipe, ParseOptions{})
				if c.Error != "" {
					if err == nil || !strings.Contains(err.Error(), c.Error) {
						t.Fatalf("parse error %v, want one containing %q", err, c.Error)
					}
					return
				}
				if err != nil {
					t.Fatalf("parse: %v", err)
				}
				checkResult(t, c, runCase(t, c, plan, -1))
				if plan.Window != nil {
					for i := 1; i < len(c.Input); i++ {
						checkResult(t, c, runCase(t, c, plan, i))
					}
				}
			})
		}
	}
	t.Logf("%d golden cases", total)
	invalid := 0
	for _, c := range loadGolden(t)["invalid.json"] {
		if c.Error != "" && strings.Contains(c.Error, "$") || strings.Contains(c.Error, "stage") {
			invalid++
		}
	}
	if invalid < 60 {
		t.Errorf("only %d invalid pipelines that name their stage", invalid)
	}
}
