package commands

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"

	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// The argument helpers of the stream processor commands. mongosh spreads a method's options at
// the top level of the command ({startStreamProcessor: "p", resumeFromCheckpoint: false}); the
// ASP driver spec nests them ({..., options: {clearCheckpoints: true}}). Both are accepted:
// a field given at the top level wins over the same field under options (spec §1.1, §13.2).

// checkOptions refuses fields a command does not know, at the top level and under options,
// so a misspelt option is an error rather than silently ignored. The generic arguments
// (lsid, $db, apiVersion, ...) have already left the body (see generic.go).
func checkOptions(call *Call, allowed ...string) error {
	elems, err := call.Body.Elements()
	if err != nil {
		return Errorf(CodeFailedToParse, "%s: the command is not a valid document", call.Name)
	}
	unknown := func(field string) error {
		return &Error{Code: 420, Name: "StreamProcessorInvalidOptions", Msg: fmt.Sprintf("%s.%s is not an option of %s (%s)",
			call.Name, field, call.Name, strings.Join(allowed, ", "))}
	}
	for i, e := range elems {
		k := e.Key()
		if i == 0 || k == "$db" {
			continue
		}
		if k == "options" {
			doc, ok := e.Value().DocumentOK()
			if !ok {
				if e.Value().Type == bson.TypeNull {
					continue
				}
				return Errorf(CodeTypeMismatch, "%s.options must be an object, not %s", call.Name, typeName(e.Value().Type))
			}
			inner, _ := doc.Elements()
			for _, o := range inner {
				if !slices.Contains(allowed, o.Key()) {
					return unknown("options." + o.Key())
				}
			}
			continue
		}
		if !slices.Contains(allowed, k) {
			return unknown(k)
		}
	}
	return nil
}

// processorName reads the processor name, the value of the command field: a non-empty string.
// mongosh sends null for sp.getProcessor("x").start() (spec mongosh-wire §1.1).
func processorName(call *Call) (string, error) {
	name, ok := call.Arg.StringValueOK()
	if !ok {
		return "", Errorf(CodeTypeMismatch, "%s: the processor name must be a string, not %s", call.Name, typeName(call.Arg.Type))
	}
	if name == "" {
		return "", Errorf(CodeBadValue, "%s: the processor name must not be empty", call.Name)
	}
	return name, nil
}

// option finds a field at the top level or under options. A null counts as absent, as
// mongosh sends undefined options as null.
func option(call *Call, name string) (bson.RawValue, bool, error) {
	if v, err := call.Body.LookupErr(name); err == nil && v.Type != bson.TypeNull {
		return v, true, nil
	}
	ov, err := call.Body.LookupErr("options")
	if err != nil || ov.Type == bson.TypeNull {
		return bson.RawValue{}, false, nil
	}
	doc, ok := ov.DocumentOK()
	if !ok {
		return bson.RawValue{}, false, Errorf(CodeTypeMismatch, "%s.options must be an object, not %s", call.Name, typeName(ov.Type))
	}
	if v, err := doc.LookupErr(name); err == nil && v.Type != bson.TypeNull {
		return v, true, nil
	}
	return bson.RawValue{}, false, nil
}

func optBool(call *Call, name string) (val, set bool, err error) {
	v, ok, err := option(call, name)
	if err != nil || !ok {
		return false, false, err
	}
	b, isBool := v.BooleanOK()
	if !isBool {
		return false, false, Errorf(CodeTypeMismatch, "%s.%s must be a boolean, not %s", call.Name, name, typeName(v.Type))
	}
	return b, true, nil
}

func optString(call *Call, name string) (string, bool, error) {
	v, ok, err := option(call, name)
	if err != nil || !ok {
		return "", false, err
	}
	s, isStr := v.StringValueOK()
	if !isStr {
		return "", false, Errorf(CodeTypeMismatch, "%s.%s must be a string, not %s", call.Name, name, typeName(v.Type))
	}
	return s, true, nil
}

// optInt reads a whole number (int32, int64, or a double without a fraction) in [lo, hi].
func optInt(call *Call, name string, lo, hi int64) (int64, bool, error) {
	v, ok, err := option(call, name)
	if err != nil || !ok {
		return 0, false, err
	}
	n, ok := wholeNumber(v)
	if !ok {
		return 0, false, Errorf(CodeTypeMismatch, "%s.%s must be an integer, not %s", call.Name, name, typeName(v.Type))
	}
	if n < lo || n > hi {
		return 0, false, Errorf(CodeBadValue, "%s.%s must be between %d and %d, not %d", call.Name, name, lo, hi, n)
	}
	return n, true, nil
}

func wholeNumber(v bson.RawValue) (int64, bool) {
	switch v.Type {
	case bson.TypeInt32:
		return int64(v.Int32()), true
	case bson.TypeInt64:
		return v.Int64(), true
	case bson.TypeDouble:
		f := v.Double()
		if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
			return int64(f), true
		}
	}
	return 0, false
}

// optDLQ reads dlq: {connectionName, db, coll}; {} (remove, for modify) gives remove = true.
func optDLQ(call *Call) (dlq *store.DLQ, remove bool, err error) {
	v, ok, err := option(call, "dlq")
	if err != nil || !ok {
		return nil, false, err
	}
	doc, isDoc := v.DocumentOK()
	if !isDoc {
		return nil, false, Errorf(CodeTypeMismatch, "%s.dlq must be an object {connectionName, db, coll}, not %s", call.Name, typeName(v.Type))
	}
	elems, _ := doc.Elements()
	if len(elems) == 0 {
		return nil, true, nil
	}
	d := &store.DLQ{}
	for _, e := range elems {
		s, isStr := e.Value().StringValueOK()
		var dst *string
		switch e.Key() {
		case "connectionName":
			dst = &d.ConnectionName
		case "db":
			dst = &d.DB
		case "coll":
			dst = &d.Coll
		default:
			return nil, false, Errorf(CodeBadValue, "%s.dlq.%s is not a field of dlq (connectionName, db, coll)", call.Name, e.Key())
		}
		if !isStr || s == "" {
			return nil, false, Errorf(CodeTypeMismatch, "%s.dlq.%s must be a non-empty string", call.Name, e.Key())
		}
		*dst = s
	}
	if d.ConnectionName == "" || d.DB == "" || d.Coll == "" {
		return nil, false, Errorf(CodeBadValue, "%s.dlq needs connectionName, db and coll", call.Name)
	}
	return d, false, nil
}

// pipelineArg reads an array of stages from field (or the command field itself for
// processStreamProcessor).
func pipelineArg(call *Call, field string, v bson.RawValue, present bool) (bson.Raw, error) {
	if !present || v.Type == bson.TypeNull {
		return nil, Errorf(CodeFailedToParse, "%s.%s is required: an array of stages starting with $source", call.Name, field)
	}
	arr, ok := v.ArrayOK()
	if !ok {
		return nil, Errorf(CodeTypeMismatch, "%s.%s must be an array of stages, not %s", call.Name, field, typeName(v.Type))
	}
	return bson.Raw(arr), nil
}

// procErr turns a runtime error into the command's error reply.
func procErr(err error) error {
	if err == nil {
		return nil
	}
	e := processor.AsError(err)
	return &Error{Code: Code(e.Code), Msg: e.Msg, Name: e.Code.Name()}
}

// manager is the processor runtime; commands need it to be configured.
func manager(call *Call) (*processor.Manager, error) {
	m := call.Server.opts.Processors
	if m == nil {
		return nil, Errorf(CodeCommandNotFound, "no such command: '%s'", call.Name)
	}
	return m, nil
}

// target is the runtime and the processor a command names.
func target(call *Call) (*processor.Manager, string, error) {
	m, err := manager(call)
	if err != nil {
		return nil, "", err
	}
	if err := checkOptions(call, commandOptions[call.Name]...); err != nil {
		return nil, "", err
	}
	name, err := processorName(call)
	return m, name, err
}

// commandOptions are the fields each processor command accepts: what mongosh 2.12.0 and the
// ASP driver specification send (spec §1.1), top level or under options.
var commandOptions = map[string][]string{
	"createStreamProcessor":        {"pipeline", "dlq", "tier", "streamMetaFieldName", "failover", "enableAutoScaling", "autoscaling"},
	"startStreamProcessor":         {"resumeFromCheckpoint", "clearCheckpoints", "tier", "workers", "startAtOperationTime", "startAfter", "enableAutoScaling", "autoscaling", "failover"},
	"stopStreamProcessor":          {"force"},
	"dropStreamProcessor":          {"force", "ttl"},
	"modifyStreamProcessor":        {"pipeline", "resumeFromCheckpoint", "name", "dlq", "tier", "enableAutoScaling", "autoscaling", "failoverEnabled"},
	"getStreamProcessor":           {},
	"getStreamProcessorStats":      {"scale", "verbose"},
	"startSampleStreamProcessor":   {"limit"},
	"getMoreSampleStreamProcessor": {"cursorId", "cursorID", "batchSize"},
}

// who names the caller for modifiedBy.
func who(call *Call) string {
	if s := sessionOf(call.Conn); s.user != nil {
		return s.user.name
	}
	return ""
}

// statusOf is stats.status for a state (spec §5.1: created, running, error, stopped).
func statusOf(state string) string {
	switch state {
	case store.StateCreated:
		return "created"
	case store.StateStarted:
		return "running"
	case store.StateFailed:
		return "error"
	}
	return "stopped"
}

// tierOf is the processor's tier, or the workspace's default.
func tierOf(call *Call, p store.Processor) string {
	if p.Tier != "" {
		return p.Tier
	}
	var ws store.Workspace
	_ = call.Server.opts.Store.View(func(tx *store.Txn) (err error) { ws, err = tx.Workspace(p.Workspace); return err })
	return ws.Tier
}

// processorDoc is a processor as listStreamProcessors shows it (spec §4.1, §5.2); the filter
// of listStreamProcessors matches this document.
func processorDoc(call *Call, p store.Processor) bson.Raw {
	b := bsoncore.NewDocumentBuilder().
		AppendString("id", p.ID).
		AppendString("name", p.Name).
		AppendArray("pipeline", p.Pipeline).
		AppendString("state", p.State).
		AppendString("tier", tierOf(call, p)).
		AppendString("errorMsg", p.ErrorMsg).
		AppendDateTime("lastModified", p.LastModified.UnixMilli()).
		AppendDateTime("lastStateChange", p.LastStateChange.UnixMilli())
	if p.ErrorMsg != "" {
		// As getStreamProcessor has them (spec §5.4), so a script can tell a retryable failure.
		b.AppendInt32("errorCode", p.ErrorCode).AppendBoolean("errorRetryable", p.ErrorRetryable)
	}
	if opts := optionsDoc(p); opts != nil {
		b.AppendDocument("options", opts)
	}
	return bson.Raw(b.Build())
}

func dlqDoc(d *store.DLQ) bsoncore.Document {
	return bsoncore.NewDocumentBuilder().AppendString("connectionName", d.ConnectionName).AppendString("db", d.DB).AppendString("coll", d.Coll).Build()
}

func optionsDoc(p store.Processor) bsoncore.Document {
	if p.DLQ == nil && p.StreamMetaFieldName == "" {
		return nil
	}
	b := bsoncore.NewDocumentBuilder()
	if p.DLQ != nil {
		b.AppendDocument("dlq", dlqDoc(p.DLQ))
	}
	if p.StreamMetaFieldName != "" {
		b.AppendString("streamMetaFieldName", p.StreamMetaFieldName)
	}
	return b.Build()
}

// appendInfo appends getStreamProcessor's fields (spec §5.4).
func appendInfo(call *Call, r *Reply, p store.Processor) {
	r.String("id", p.ID)
	r.String("processorId", p.ID)
	r.String("name", p.Name)
	r.String("state", p.State)
	r.RawArray("pipeline", p.Pipeline)
	r.Int32("pipelineVersion", p.PipelineVersion)
	r.String("tier", tierOf(call, p))
	if p.DLQ != nil {
		r.Document("dlq", dlqDoc(p.DLQ))
	}
	if p.StreamMetaFieldName != "" {
		r.String("streamMetaFieldName", p.StreamMetaFieldName)
	}
	r.Bool("enableAutoScaling", false)
	r.Bool("failoverEnabled", p.FailoverEnabled)
	r.Time("lastStateChange", p.LastStateChange)
	r.Time("lastModifiedAt", p.LastModified)
	r.String("modifiedBy", p.ModifiedBy)
	r.Bool("hasStarted", p.HasStarted)
	r.String("errorMsg", p.ErrorMsg)
	r.Bool("errorRetryable", p.ErrorRetryable)
	r.Int32("errorCode", p.ErrorCode)
}
