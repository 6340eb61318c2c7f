package mongodb

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/pipeline/value"
)

// mergeActions are the actions the execute-as role needs on a target for a mode pair ("" for an
// expression): MongoDB's (authz.MergeActions), and find when the sink reads the target before
// writing (needsProbe; an expression may ask for any mode).
func mergeActions(wm, wnm string) []authz.DBAction {
	acts := authz.MergeActions(wm, wnm)
	if wm == "" || wnm == "" || needsProbe(wm, wnm) {
		acts = append(acts, authz.Find)
	}
	return acts
}

// target is one namespace $merge writes to, with the execute-as decision for each mode pair
// seen so far (nil: allowed).
type target struct {
	ns      authz.Namespace
	coll    *mongo.Collection
	allowed map[[2]string]error
}

// item is one document on its way to a target.
type item struct {
	orig   bson.Raw // the document as the pipeline gave it, for dead letters
	doc    bson.Raw // the document to write (with a generated _id when on holds _id)
	filter bson.Raw // {on field: value, ...}
	key    string   // identifies filter
	wm     string   // the whenMatched mode, or "pipeline"
	wnm    string
	vars   bson.Raw // {new: doc, <let>: value, ...} for a pipeline that uses variables
}

// WriteBatch writes docs with unordered bulk writes and returns once they are acknowledged.
// Each document's target and modes are resolved first (expressions evaluated, the execute-as
// role checked for a new target); documents that cannot be written for a reason of their own
// are returned as dead-letter records: a target or mode expression that fails or does not give
// a valid name or mode, a target the role may not write, a target past the 1,000th, an on field
// that is missing, null or an array, whenMatched fail on a match, whenNotMatched fail without
// one, a pipeline that fails, a write the deployment refuses (duplicate key, too large). A
// connection, authentication or write-concern failure fails the whole batch (retryable, code
// 421). Up to parallelism targets are written at once; the writes of one target keep the
// batch's order for each key.
func (s *Sink) WriteBatch(ctx context.Context, docs []bson.Raw) (rejected []bson.Raw, err error) {
	if len(docs) == 0 {
		return nil, nil
	}
	s.forgetStaleDecisions()
	if err := s.connect(); err != nil {
		return nil, err
	}
	var order []*target
	byTarget := map[*target][]item{}
	for _, d := range docs {
		t, it, reason := s.resolve(d)
		if reason != "" {
			rejected = append(rejected, s.deadLetter(d, reason))
			continue
		}
		if _, ok := byTarget[t]; !ok {
			order = append(order, t)
		}
		byTarget[t] = append(byTarget[t], it)
	}
	type result struct {
		dead []bson.Raw
		err  error
	}
	results := make([]result, len(order))
	if s.spec.parallelism <= 1 || len(order) <= 1 {
		for i, t := range order {
			results[i].dead, results[i].err = s.writeTarget(ctx, t, byTarget[t])
			if results[i].err != nil {
				return nil, results[i].err
			}
		}
	} else {
		sem := make(chan struct{}, s.spec.parallelism)
		var wg sync.WaitGroup
		for i, t := range order {
			sem <- struct{}{}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				results[i].dead, results[i].err = s.writeTarget(ctx, t, byTarget[t])
			}()
		}
		wg.Wait()
	}
	for _, r := range results {
		if r.err != nil {
			return nil, r.err
		}
		rejected = append(rejected, r.dead...)
	}
	return rejected, nil
}

// resolve evaluates a document's target and modes, checks the target against the execute-as
// role, and builds its filter. A reason says why the document cannot be written.
func (s *Sink) resolve(d bson.Raw) (*target, item, string) {
	it := item{orig: d}
	if err := d.Validate(); err != nil {
		return nil, it, "$merge: the document is not valid BSON"
	}
	if len(d) > maxBSONSize {
		return nil, it, fmt.Sprintf("$merge: the document is %d bytes, over MongoDB's 16 MiB limit", len(d))
	}
	env := &s.evalEnv
	env.Root, env.Meta, env.MetaDoc = d, nil, nil
	if s.spec.evaluates() {
		// Only expressions read the stream metadata ({$meta: ...}).
		if v, err := d.LookupErr(s.meta); err == nil {
			env.MetaDoc, _ = v.DocumentOK()
		}
	}
	ns := authz.Namespace{DB: s.spec.db, Coll: s.spec.coll}
	if s.spec.dbExpr != nil {
		v, err := s.spec.dbExpr.Eval(env)
		if err != nil {
			return nil, it, fmt.Sprintf("$merge.into.db: %v", err)
		}
		str, ok := v.StringValueOK()
		if !ok || str == "" {
			return nil, it, fmt.Sprintf("$merge.into.db must evaluate to a non-empty string, not %s", describe(v))
		}
		ns.DB = str
	}
	if s.spec.collExpr != nil {
		v, err := s.spec.collExpr.Eval(env)
		if err != nil {
			return nil, it, fmt.Sprintf("$merge.into.coll: %v", err)
		}
		str, ok := v.StringValueOK()
		if !ok || str == "" {
			return nil, it, fmt.Sprintf("$merge.into.coll must evaluate to a non-empty string, not %s", describe(v))
		}
		ns.Coll = str
	}
	if msg := nsError(ns.DB, ns.Coll); msg != "" {
		return nil, it, fmt.Sprintf("$merge into %s: %s", ns, msg)
	}
	it.wm, it.wnm = s.spec.whenMatched, s.spec.whenNotMatched
	if s.spec.wmExpr != nil {
		v, err := s.spec.wmExpr.Eval(env)
		if err != nil {
			return nil, it, fmt.Sprintf("$merge.whenMatched: %v", err)
		}
		if str, ok := v.StringValueOK(); ok && matchedModes[str] {
			it.wm = str
		} else {
			return nil, it, fmt.Sprintf("$merge.whenMatched must evaluate to replace, keepExisting, merge, delete or fail, not %s", describe(v))
		}
	}
	if s.spec.wnmExpr != nil {
		v, err := s.spec.wnmExpr.Eval(env)
		if err != nil {
			return nil, it, fmt.Sprintf("$merge.whenNotMatched: %v", err)
		}
		if str, ok := v.StringValueOK(); ok && notMatchedModes[str] {
			it.wnm = str
		} else {
			return nil, it, fmt.Sprintf("$merge.whenNotMatched must evaluate to insert, discard or fail, not %s", describe(v))
		}
	}
	if msg := comboError(it.wm, it.wnm); msg != "" {
		return nil, it, "$merge: " + msg
	}
	t := s.targets[ns]
	if t == nil {
		if len(s.targets) >= maxTargets {
			return nil, it, fmt.Sprintf("$merge into %s: this processor already writes to %d distinct namespaces, Atlas's limit for a dynamic target (spec §9); the document is not written", ns, maxTargets)
		}
		t = &target{ns: ns, allowed: map[[2]string]error{}}
		s.targets[ns] = t
	}
	if t.coll == nil && s.client != nil {
		t.coll = s.client.Database(ns.DB).Collection(ns.Coll)
	}
	modes := [2]string{it.wm, it.wnm}
	denied, seen := t.allowed[modes]
	if !seen {
		if s.spec.dynamic() {
			denied = executeAs(s.env, s.cl, ns, mergeActions(it.wm, it.wnm)...)
		}
		t.allowed[modes] = denied
	}
	if denied != nil {
		return nil, it, fmt.Sprintf("$merge into %s: %v", ns, denied)
	}
	doc := d
	if s.spec.onID {
		if _, err := d.LookupErr("_id"); err != nil {
			doc = withID(d)
		}
	}
	it.doc = doc
	fidx, filter := bsoncore.AppendDocumentStart(nil)
	var kb strings.Builder
	for _, f := range s.spec.on {
		v, err := doc.LookupErr(strings.Split(f, ".")...)
		if err != nil || v.Type == bson.TypeNull || v.Type == bson.TypeUndefined || v.Type == bson.TypeArray {
			return nil, it, fmt.Sprintf("$merge into %s: the document's on field %q must be present and must not be null or an array", ns, f)
		}
		filter = bsoncore.AppendValueElement(filter, f, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		writeKey(&kb, f, v)
	}
	filter, _ = bsoncore.AppendDocumentEnd(filter, fidx)
	it.filter, it.key = filter, kb.String()
	if it.wm == "pipeline" && s.spec.usesVars {
		vidx, vars := bsoncore.AppendDocumentStart(nil)
		vars = bsoncore.AppendDocumentElement(vars, "new", doc)
		for _, lv := range s.spec.let {
			v, err := lv.e.Eval(env)
			if err != nil {
				return nil, it, fmt.Sprintf("$merge.let.%s: %v", lv.name, err)
			}
			if v.Type == 0 || v.Equal(value.Missing) {
				v = bson.RawValue{Type: bson.TypeNull}
			}
			vars = bsoncore.AppendValueElement(vars, lv.name, bsoncore.Value{Type: bsoncore.Type(v.Type), Data: v.Value})
		}
		vars, _ = bsoncore.AppendDocumentEnd(vars, vidx)
		it.vars = vars
	}
	return t, it, ""
}

func writeKey(kb *strings.Builder, f string, v bson.RawValue) {
	kb.WriteString(f)
	kb.WriteByte(0)
	kb.WriteByte(byte(v.Type))
	kb.Write(v.Value)
}

// describe names a value's type for a dead-letter reason.
func describe(v bson.RawValue) string {
	if v.Type == 0 {
		return "missing"
	}
	if s, ok := v.StringValueOK(); ok {
		return fmt.Sprintf("%q", s)
	}
	return v.Type.String()
}

// writeTarget writes one target's items in bulk writes of at most batchSize writes; a key that
// repeats within a chunk starts a new round, so that the writes to one key apply in order
// whatever order the deployment applies an unordered batch in. Should the deployment refuse the
// target itself (refusedTarget), the documents of the batch not yet written to it become dead
// letters with the deployment's reason, and the others are kept: the next batch tries the
// target again.
func (s *Sink) writeTarget(ctx context.Context, t *target, items []item) (rejected []bson.Raw, err error) {
	for len(items) > 0 {
		n := min(len(items), s.spec.batchSize)
		chunk := items[:n]
		items = items[n:]
		rs := rounds(chunk)
		for i, r := range rs {
			dead, err := s.writeRound(ctx, t, r)
			rejected = append(rejected, dead...)
			var rt *refusedTarget
			if errors.As(err, &rt) {
				for _, d := range rt.unwritten {
					rejected = append(rejected, s.deadLetter(d, rt.reason))
				}
				for _, later := range append(rs[i+1:], items) {
					for _, it := range later {
						rejected = append(rejected, s.deadLetter(it.orig, rt.reason))
					}
				}
				return rejected, nil
			}
			if err != nil {
				return nil, err
			}
		}
	}
	return rejected, nil
}

// refusedTarget is the deployment's refusal of a target itself, for a reason that sending the
// writes again will not change (targetCodes): unwritten are the documents of the round it
// refused, as the pipeline gave them.
type refusedTarget struct {
	reason    string
	unwritten []bson.Raw
}

func (e *refusedTarget) Error() string { return e.reason }

// targetCodes are the command errors by which a deployment refuses a namespace itself rather
// than the connection, the credentials or the moment: a name it does not accept
// (InvalidNamespace, 73; FerretDB answers it for names MongoDB accepts but FerretDB does not), a
// view (CommandNotSupportedOnView, 166), an operation the collection's kind forbids
// (IllegalOperation, 20). Sending again cannot succeed, so the documents become dead letters
// rather than a retryable failure of the processor. Codes: mongo's error_codes.yml.
var targetCodes = map[int32]bool{20: true, 73: true, 166: true}

// outcome reads the result of a bulk write of models whose documents (as the pipeline gave
// them) are origs: the writes the deployment refused for the document's own sake as dead
// letters; a refusal of the target as *refusedTarget; anything else (connection,
// authentication, authorization, write concern, an index out of range) as a retryable 421.
func (s *Sink) outcome(t *target, err error, origs []bson.Raw) (rejected []bson.Raw, _ error) {
	if err == nil {
		return nil, nil
	}
	var bwe mongo.BulkWriteException
	if errors.As(err, &bwe) && bwe.WriteConcernError == nil && len(bwe.WriteErrors) > 0 && !authError(bwe) {
		failed := map[int]bool{}
		for _, we := range bwe.WriteErrors {
			if we.Index < 0 || we.Index >= len(origs) || failed[we.Index] {
				return nil, s.connErrorNS(t.ns, err)
			}
			failed[we.Index] = true
			rejected = append(rejected, s.deadLetter(origs[we.Index], fmt.Sprintf("$merge into %s: write refused by the deployment: %s (code %d)", t.ns, s.scrub(we.Message), we.Code)))
		}
		return rejected, nil
	}
	if rt := s.refusal(t, err, origs); rt != nil {
		return nil, rt
	}
	return nil, s.connErrorNS(t.ns, err)
}

// refusal is err as a *refusedTarget when it is a command error of targetCodes, or nil.
func (s *Sink) refusal(t *target, err error, origs []bson.Raw) *refusedTarget {
	var ce mongo.CommandError
	if !errors.As(err, &ce) || !targetCodes[ce.Code] {
		return nil
	}
	name := ce.Name
	if name == "" {
		name = "code"
	}
	return &refusedTarget{unwritten: origs,
		reason: fmt.Sprintf("$merge into %s: the deployment refuses the target: %s (%s %d); the document is not written", t.ns, s.scrub(ce.Message), name, ce.Code)}
}

// rounds splits items into rounds of distinct keys: a key's first write goes to round 0, its
// next to the round after the last that holds it; other keys join the earliest round they can.
func rounds(items []item) [][]item {
	var out [][]item
	seen := map[string]int{} // key → index of the last round that writes it
	for _, it := range items {
		i := 0
		if last, ok := seen[it.key]; ok {
			i = last + 1
		}
		for i >= len(out) {
			out = append(out, nil)
		}
		out[i] = append(out[i], it)
		seen[it.key] = i
	}
	return out
}

// writeRound writes items with distinct keys as one unordered bulk write, after reading the
// documents they match when a mode depends on it. When a bulk write of more than one write comes
// back with write errors, its writes are sent again one at a time, and each document's outcome
// is the answer to its own write: some servers (FerretDB 1.x) stop an unordered bulk write at
// its first error and report it at index 0, so the indices of a batch's errors cannot be
// trusted. Sending a write that was applied again changes nothing: every model (see model) is
// an upsert or replacement of a whole document or a $set/$setOnInsert of fixed values, or a
// deleteOne of a filter on the on fields (which MongoDB requires to be unique), all computed
// once, from one probe, before the first send. A write refused again becomes a dead letter with
// the deployment's reason; an error of the target itself is a *refusedTarget.
func (s *Sink) writeRound(ctx context.Context, t *target, items []item) (rejected []bson.Raw, err error) {
	var matched map[string]bson.Raw
	for _, it := range items {
		if needsProbe(it.wm, it.wnm) {
			if matched, err = s.probe(ctx, t, items); err != nil {
				var origs []bson.Raw
				for _, it := range items {
					origs = append(origs, it.orig)
				}
				if rt := s.refusal(t, err, origs); rt != nil {
					return nil, rt
				}
				return nil, s.connErrorNS(t.ns, err)
			}
			break
		}
	}
	var models []mongo.WriteModel
	var origs []bson.Raw
	for _, it := range items {
		m, reason := s.model(t, it, matched)
		if reason != "" {
			rejected = append(rejected, s.deadLetter(it.orig, reason))
			continue
		}
		if m != nil {
			models = append(models, m)
			origs = append(origs, it.orig)
		}
	}
	if len(models) == 0 {
		return rejected, nil
	}
	unordered := options.BulkWrite().SetOrdered(false)
	_, err = t.coll.BulkWrite(ctx, models, unordered)
	var bwe mongo.BulkWriteException
	if len(models) == 1 || !errors.As(err, &bwe) || bwe.WriteConcernError != nil || len(bwe.WriteErrors) == 0 || authError(bwe) {
		dead, err := s.outcome(t, err, origs)
		return append(rejected, dead...), err
	}
	for i := range models {
		_, err := t.coll.BulkWrite(ctx, models[i:i+1], unordered)
		dead, err := s.outcome(t, err, origs[i:i+1])
		var rt *refusedTarget
		if errors.As(err, &rt) {
			rt.unwritten = origs[i:]
			return rejected, rt
		}
		if err != nil {
			return nil, err
		}
		rejected = append(rejected, dead...)
	}
	return rejected, nil
}

// probe finds the documents of t that items' filters match, by key. Its error is the driver's,
// for writeRound to classify.
func (s *Sink) probe(ctx context.Context, t *target, items []item) (map[string]bson.Raw, error) {
	ors := bson.A{}
	for _, it := range items {
		if needsProbe(it.wm, it.wnm) {
			ors = append(ors, it.filter)
		}
	}
	filter := bson.D{{Key: "$or", Value: ors}}
	if len(ors) == 1 {
		filter = nil
	}
	var cur *mongo.Cursor
	var err error
	if filter == nil {
		cur, err = t.coll.Find(ctx, ors[0])
	} else {
		cur, err = t.coll.Find(ctx, filter)
	}
	if err != nil {
		return nil, err
	}
	defer func() { _ = cur.Close(context.Background()) }()
	out := map[string]bson.Raw{}
	for cur.Next(ctx) {
		doc := append(bson.Raw(nil), cur.Current...)
		var kb strings.Builder
		ok := true
		for _, f := range s.spec.on {
			v, err := doc.LookupErr(strings.Split(f, ".")...)
			if err != nil {
				ok = false
				break
			}
			writeKey(&kb, f, v)
		}
		if ok {
			out[kb.String()] = doc
		}
	}
	if err := cur.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// model builds the write of one item (MongoDB manual, $merge): replace is a replacement, merge
// {$set: doc}, keepExisting {$setOnInsert: doc}, delete a deleteOne, fail an insert of what
// matches nothing (an upsert of the filter, so that it can be sent again), a pipeline the replacement of the matched document by the pipeline's result
// (computed here, with $$new and let bound); whenNotMatched insert makes a write an upsert or
// an insert, discard writes nothing new, and fail turns an unmatched document into a dead
// letter. matched holds the probed documents by key when the modes need them. A nil model with
// no reason writes nothing.
func (s *Sink) model(t *target, it item, matched map[string]bson.Raw) (mongo.WriteModel, string) {
	upsert := it.wnm == "insert"
	if !needsProbe(it.wm, it.wnm) {
		switch it.wm {
		case "replace":
			return mongo.NewReplaceOneModel().SetFilter(it.filter).SetReplacement(it.doc).SetUpsert(upsert), ""
		case "keepExisting":
			return mongo.NewUpdateOneModel().SetFilter(it.filter).SetUpdate(s.update("$setOnInsert", it.doc, it.filter)).SetUpsert(upsert), ""
		case "delete": // with discard
			return mongo.NewDeleteOneModel().SetFilter(it.filter), ""
		default: // merge
			return mongo.NewUpdateOneModel().SetFilter(it.filter).SetUpdate(s.update("$set", it.doc, it.filter)).SetUpsert(upsert), ""
		}
	}
	existing, found := matched[it.key]
	if !found {
		switch it.wnm {
		case "discard":
			return nil, ""
		case "fail":
			return nil, fmt.Sprintf("$merge into %s: no document matches %s and whenNotMatched is fail (MongoDB's MergeStageNoMatchingDocument, code 13113)", t.ns, it.filter)
		}
		// An insert of the document as it is, whatever whenMatched is: with a pipeline too,
		// as mongod's $merge inserts the supplied document (UpsertType kInsertSuppliedDoc) and
		// Atlas Stream Processing's $merge does. It is written as an upsert of the filter, so
		// that sending it again (after a partial failure of the bulk write) changes nothing.
		return mongo.NewReplaceOneModel().SetFilter(it.filter).SetReplacement(it.doc).SetUpsert(true), ""
	}
	switch it.wm {
	case "fail":
		return nil, fmt.Sprintf("$merge into %s: a document matches %s and whenMatched is fail (MongoDB's $merge fails with DuplicateKey, code 11000)", t.ns, it.filter)
	case "delete":
		return mongo.NewDeleteOneModel().SetFilter(it.filter), ""
	case "replace":
		return mongo.NewReplaceOneModel().SetFilter(it.filter).SetReplacement(it.doc), ""
	case "merge":
		return mongo.NewUpdateOneModel().SetFilter(it.filter).SetUpdate(s.update("$set", it.doc, it.filter)), ""
	}
	// pipeline
	out, reason := s.applyPipeline(it, existing)
	if reason != "" {
		return nil, reason
	}
	id := existing.Lookup("_id")
	if v, err := out.LookupErr("_id"); err != nil {
		out = withValueID(out, id)
	} else if !v.Equal(id) {
		return nil, fmt.Sprintf("$merge into %s: the whenMatched pipeline changes the matched document's _id, which is immutable (MongoDB's ImmutableField, code 66)", t.ns)
	}
	return mongo.NewReplaceOneModel().SetFilter(idFilter(id)).SetReplacement(out), ""
}

// idFilter is {_id: id}.
func idFilter(id bson.RawValue) bson.Raw {
	idx, f := bsoncore.AppendDocumentStart(nil)
	f = bsoncore.AppendValueElement(f, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
	f, _ = bsoncore.AppendDocumentEnd(f, idx)
	return f
}

// applyPipeline runs the whenMatched pipeline over doc.
func (s *Sink) applyPipeline(it item, doc bson.Raw) (bson.Raw, string) {
	stages := s.spec.wmStages
	if !s.spec.usesVars {
		// The compiled stages are shared by the targets written in parallel.
		s.pipeMu.Lock()
		defer s.pipeMu.Unlock()
	} else {
		rewritten, _ := substituteVars(s.spec.wmPipeline, it.vars)
		var err error
		if stages, err = pipeline.ParseUpdateStages(rewritten); err != nil {
			return nil, fmt.Sprintf("$merge.whenMatched: %v", err)
		}
	}
	out, err := pipeline.ApplyStages(stages, doc)
	if err != nil {
		return nil, fmt.Sprintf("$merge.whenMatched: %v", err)
	}
	return out, ""
}

// withValueID returns d with id as its first field, _id.
func withValueID(d bson.Raw, id bson.RawValue) bson.Raw {
	idx, b := bsoncore.AppendDocumentStart(make([]byte, 0, len(d)+len(id.Value)+8))
	b = bsoncore.AppendValueElement(b, "_id", bsoncore.Value{Type: bsoncore.Type(id.Type), Data: id.Value})
	b = append(b, d[4:len(d)-1]...)
	b, _ = bsoncore.AppendDocumentEnd(b, idx)
	return b
}

// authError says whether the write errors are the role's or user's lack of privilege
// (Unauthorized, 13), which fails the processor rather than the documents.
func authError(bwe mongo.BulkWriteException) bool {
	for _, we := range bwe.WriteErrors {
		if we.Code == 13 {
			return true
		}
	}
	return false
}
