package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"net/http"
	"strings"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// The processor endpoints of the Atlas Admin API v2 (../shared/spec/admin-api-streams.txt:
// createStreamProcessor, getStreamProcessor, getStreamProcessors, updateStreamProcessor,
// deleteStreamProcessor, startStreamProcessor, startStreamProcessorWith, stopStreamProcessor).
// They call the same processor.Manager as the data plane's sp.* commands, so both planes see
// one runtime. Pipelines travel as Extended JSON (relaxed or canonical on the way in, relaxed
// on the way out) and are stored as BSON exactly as given.

// stopTimeout bounds a stop's or a delete's final checkpoint; a client that hangs up does not
// cut it short.
const stopTimeout = time.Minute

// dlqBody is a StreamsDLQ.
type dlqBody struct {
	ConnectionName *string         `json:"connectionName"`
	DB             *string         `json:"db"`
	Coll           *string         `json:"coll"`
	Links          json.RawMessage `json:"links"`
}

// createOptionsBody is a StreamsOptions.
type createOptionsBody struct {
	DLQ   *dlqBody        `json:"dlq"`
	Links json.RawMessage `json:"links"`
}

// modifyOptionsBody is a StreamsModifyStreamProcessorOptions.
type modifyOptionsBody struct {
	DLQ                  *dlqBody        `json:"dlq"`
	ResumeFromCheckpoint *bool           `json:"resumeFromCheckpoint"`
	Links                json.RawMessage `json:"links"`
}

// processorReadOnly are the fields of a StreamsProcessorWithStats a client may send back
// unchanged; they are ignored.
type processorReadOnly struct {
	ID                  json.RawMessage `json:"_id"`
	Links               json.RawMessage `json:"links"`
	State               json.RawMessage `json:"state"`
	Stats               json.RawMessage `json:"stats"`
	EligibleForFailover json.RawMessage `json:"eligibleForFailover"`
	ErrorMsg            json.RawMessage `json:"errorMsg"`
	ErrorCode           json.RawMessage `json:"errorCode"`
	ErrorRetryable      json.RawMessage `json:"errorRetryable"`
}

// processorBody is a StreamsProcessor as a request (createStreamProcessor).
type processorBody struct {
	processorReadOnly
	Name            *string            `json:"name"`
	Pipeline        json.RawMessage    `json:"pipeline"`
	Options         *createOptionsBody `json:"options"`
	Tier            *string            `json:"tier"`
	FailoverEnabled *bool              `json:"failoverEnabled"`
}

// modifyBody is a StreamsModifyStreamProcessor (updateStreamProcessor).
type modifyBody struct {
	processorReadOnly
	Name            *string            `json:"name"`
	Pipeline        json.RawMessage    `json:"pipeline"`
	Options         *modifyOptionsBody `json:"options"`
	Tier            *string            `json:"tier"`
	FailoverEnabled *bool              `json:"failoverEnabled"`
}

// startWithBody is a StreamsStartStreamProcessorWith (startStreamProcessorWith).
type startWithBody struct {
	ResumeFromCheckpoint *bool           `json:"resumeFromCheckpoint"`
	Tier                 *string         `json:"tier"`
	StartAtOperationTime *string         `json:"startAtOperationTime"`
	Failover             json.RawMessage `json:"failover"`
	Links                json.RawMessage `json:"links"`
}

// dlqView is a StreamsDLQ in a reply.
type dlqView struct {
	ConnectionName string `json:"connectionName"`
	DB             string `json:"db"`
	Coll           string `json:"coll"`
}

type optionsView struct {
	DLQ *dlqView `json:"dlq,omitempty"`
}

// processorView is a StreamsProcessor, the reply of createStreamProcessor.
type processorView struct {
	ID              string          `json:"_id"`
	Name            string          `json:"name"`
	Pipeline        json.RawMessage `json:"pipeline"`
	Options         *optionsView    `json:"options,omitempty"`
	Tier            string          `json:"tier,omitempty"`
	FailoverEnabled bool            `json:"failoverEnabled"`
	Links           []link          `json:"links"`
}

// processorStatsView is a StreamsProcessorWithStats: getStreamProcessor, getStreamProcessors
// and updateStreamProcessor. errorMsg, errorCode and errorRetryable are an spi extension,
// present only while the processor is FAILED, with the data plane's meaning (spec §5.4).
type processorStatsView struct {
	processorView
	State               string    `json:"state"`
	Stats               statsView `json:"stats"`
	EligibleForFailover bool      `json:"eligibleForFailover"`
	ErrorMsg            string    `json:"errorMsg,omitempty"`
	ErrorCode           int32     `json:"errorCode,omitempty"`
	ErrorRetryable      *bool     `json:"errorRetryable,omitempty"`
}

// statsView is the stats object, with the field names of getStreamProcessorStats (spec §5.1):
// counts in messages, sizes in bytes, scaleFactor 1, watermark an ISO 8601 time in UTC
// (absent before the first watermark).
type statsView struct {
	Name               string `json:"name"`
	ProcessorID        string `json:"processorId"`
	Status             string `json:"status"`
	ScaleFactor        int    `json:"scaleFactor"`
	InputMessageCount  int64  `json:"inputMessageCount"`
	InputMessageSize   int64  `json:"inputMessageSize"`
	OutputMessageCount int64  `json:"outputMessageCount"`
	OutputMessageSize  int64  `json:"outputMessageSize"`
	DLQMessageCount    int64  `json:"dlqMessageCount"`
	DLQMessageSize     int64  `json:"dlqMessageSize"`
	StateSize          int64  `json:"stateSize"`
	Watermark          string `json:"watermark,omitempty"`
	// KafkaPartitions are a Kafka source's partitions, as in getStreamProcessorStats.
	KafkaPartitions []kafkaPartitionView `json:"kafkaPartitions,omitempty"`
}

// kafkaPartitionView is one partition of a Kafka source (spec §5.1 kafkaPartitions).
type kafkaPartitionView struct {
	Topic            string `json:"topic"`
	Partition        int32  `json:"partition"`
	CurrentOffset    int64  `json:"currentOffset"`
	CheckpointOffset int64  `json:"checkpointOffset"`
	IsIdle           bool   `json:"isIdle"`
	Watermark        string `json:"watermark,omitempty"`
	ConsumerGroupLag int64  `json:"consumerGroupLag"`
}

// statsStatus is stats.status for a state: the lower-case words of getStreamProcessorStats
// (spec §5.1: created, running, error, ...).
func statsStatus(state string) string {
	switch state {
	case store.StateCreated:
		return "created"
	case store.StateStarted:
		return "running"
	case store.StateStopped:
		return "stopped"
	case store.StateFailed:
		return "error"
	}
	return strings.ToLower(state)
}

func (s *Server) processorURL(r *http.Request, ws, name string) string {
	return baseURL(r) + "/api/atlas/v2/groups/" + s.groupID + "/streams/" + ws + "/processor/" + name
}

// processorView renders a processor record; tier is the processor's, else the workspace's.
func (s *Server) processorView(r *http.Request, ws store.Workspace, rec store.Processor) (processorView, *apiError) {
	pipe, err := pipelineJSON(rec.Pipeline)
	if err != nil {
		return processorView{}, internal(err)
	}
	v := processorView{ID: rec.ID, Name: rec.Name, Pipeline: pipe, Tier: rec.Tier, FailoverEnabled: rec.FailoverEnabled,
		Links: []link{{Href: s.processorURL(r, ws.Name, rec.Name), Rel: "self"}}}
	if v.Tier == "" {
		v.Tier = ws.Tier
	}
	if rec.DLQ != nil {
		v.Options = &optionsView{DLQ: &dlqView{ConnectionName: rec.DLQ.ConnectionName, DB: rec.DLQ.DB, Coll: rec.DLQ.Coll}}
	}
	return v, nil
}

func (s *Server) processorStatsView(r *http.Request, ws store.Workspace, info processor.Info) (processorStatsView, *apiError) {
	pv, e := s.processorView(r, ws, info.Processor)
	if e != nil {
		return processorStatsView{}, e
	}
	st := info.Stats
	v := processorStatsView{processorView: pv, State: info.State, Stats: statsView{
		Name: info.Name, ProcessorID: info.ID, Status: statsStatus(info.State), ScaleFactor: 1,
		InputMessageCount: st.InputCount, InputMessageSize: st.InputSize,
		OutputMessageCount: st.OutputCount, OutputMessageSize: st.OutputSize,
		DLQMessageCount: st.DLQCount, DLQMessageSize: st.DLQSize, StateSize: st.StateSize,
	}}
	if st.Watermark != math.MinInt64 && st.Watermark != 0 {
		v.Stats.Watermark = time.UnixMilli(st.Watermark).UTC().Format("2006-01-02T15:04:05.000Z")
	}
	for _, p := range st.KafkaPartitions {
		kp := kafkaPartitionView{Topic: p.Topic, Partition: p.Partition, CurrentOffset: p.CurrentOffset, CheckpointOffset: p.CheckpointOffset,
			IsIdle: p.IsIdle, ConsumerGroupLag: p.ConsumerGroupLag}
		if p.Watermark != math.MinInt64 {
			kp.Watermark = time.UnixMilli(p.Watermark).UTC().Format("2006-01-02T15:04:05.000Z")
		}
		v.Stats.KafkaPartitions = append(v.Stats.KafkaPartitions, kp)
	}
	// A failed processor, or one the runtime is retrying, says why.
	if info.State == store.StateFailed || info.ErrorMsg != "" {
		retryable := info.ErrorRetryable
		v.ErrorMsg, v.ErrorCode, v.ErrorRetryable = info.ErrorMsg, info.ErrorCode, &retryable
	}
	return v, nil
}

// pipelineJSON renders a stored BSON pipeline (an array) as relaxed Extended JSON.
func pipelineJSON(p []byte) (json.RawMessage, error) {
	if len(p) == 0 {
		return json.RawMessage("[]"), nil
	}
	doc := bson.D{{Key: "p", Value: bson.RawValue{Type: bson.TypeArray, Value: p}}}
	j, err := bson.MarshalExtJSON(doc, false, false)
	if err != nil {
		return nil, err
	}
	var out struct {
		P json.RawMessage `json:"p"`
	}
	if err := json.Unmarshal(j, &out); err != nil {
		return nil, err
	}
	return out.P, nil
}

// pipelineBSON converts a pipeline sent as Extended JSON (relaxed or canonical) to a BSON
// array. The stages themselves are checked by the processor runtime.
func pipelineBSON(raw json.RawMessage) (bson.Raw, *apiError) {
	t := bytes.TrimSpace(raw)
	if len(t) == 0 || t[0] != '[' {
		return nil, invalid("pipeline", "must be an array of stages, like [{\"$source\": {...}}, ...], not %s", jsonKind(t))
	}
	wrapped := make([]byte, 0, len(t)+8)
	wrapped = append(append(append(wrapped, `{"p":`...), t...), '}')
	var doc bson.Raw
	if err := bson.UnmarshalExtJSON(wrapped, false, &doc); err != nil {
		return nil, invalid("pipeline", "is not valid Extended JSON: %v", err)
	}
	arr, ok := doc.Lookup("p").ArrayOK()
	if !ok {
		return nil, invalid("pipeline", "must be an array of stages")
	}
	return bson.Raw(arr), nil
}

// jsonKind names the JSON type of a value for messages.
func jsonKind(v []byte) string {
	if len(v) == 0 {
		return "nothing"
	}
	switch v[0] {
	case '{':
		return "an object"
	case '"':
		return "a string"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	}
	return "a number"
}

// isNull reports whether an optional JSON value was left out or sent as null.
func isNull(v json.RawMessage) bool {
	t := bytes.TrimSpace(v)
	return len(t) == 0 || string(t) == "null"
}

// dlqOf checks a StreamsDLQ: all three fields or none ({} removes the queue on modify).
func dlqOf(b *dlqBody) (dlq *store.DLQ, empty bool, e *apiError) {
	if b == nil {
		return nil, false, nil
	}
	val := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	d := store.DLQ{ConnectionName: val(b.ConnectionName), DB: val(b.DB), Coll: val(b.Coll)}
	if d == (store.DLQ{}) {
		return nil, true, nil
	}
	for _, f := range []struct{ name, v string }{{"connectionName", d.ConnectionName}, {"db", d.DB}, {"coll", d.Coll}} {
		if f.v == "" {
			return nil, false, missing("options.dlq." + f.name)
		}
	}
	return &d, false, nil
}

// procRuntime returns the processor runtime, or an error if spid was started without one.
func (s *Server) procRuntime() (*processor.Manager, *apiError) {
	if s.opts.Processors == nil {
		return nil, errorf(http.StatusServiceUnavailable, "SERVICE_UNAVAILABLE", "This spid runs no stream processor runtime.")
	}
	return s.opts.Processors, nil
}

// procWorkspace reads the workspace of a processor request: 404 if it does not exist.
func (s *Server) procWorkspace(r *http.Request) (store.Workspace, *processor.Manager, *apiError) {
	m, e := s.procRuntime()
	if e != nil {
		return store.Workspace{}, nil, e
	}
	name := r.PathValue("tenantName")
	var ws store.Workspace
	err := s.opts.Store.View(func(tx *store.Txn) (err error) { ws, err = tx.Workspace(name); return err })
	if store.IsNotFound(err) {
		return ws, nil, notFound("workspace", name)
	}
	if err != nil {
		return ws, nil, internal(err)
	}
	return ws, m, nil
}

// processorError maps a processor runtime error to an Atlas-style error: 404 for a processor
// that does not exist, 409 for a name taken, an illegal state transition or the workspace's
// processor limit, 400 for an invalid pipeline or option (naming the field), 500 otherwise.
func processorError(err error, ws, name string) *apiError {
	var pe *processor.Error
	if !errors.As(err, &pe) {
		return internal(err)
	}
	switch pe.Code {
	case processor.CodeStreamProcessorDoesNotExist:
		return &apiError{Status: http.StatusNotFound, Code: "RESOURCE_NOT_FOUND",
			Detail: "No stream processor named \"" + name + "\" exists in workspace \"" + ws + "\".", Params: []any{name}}
	case processor.CodeStreamProcessorAlreadyExists:
		taken := name
		if i := strings.LastIndex(pe.Msg, ": "); i >= 0 {
			taken = pe.Msg[i+2:]
		}
		return duplicate("stream processor", taken)
	case processor.CodeIllegalOperation, processor.CodeStreamProcessorLimit:
		return &apiError{Status: http.StatusConflict, Code: "CONFLICT", Detail: sentence(pe.Msg), Params: []any{name}}
	case processor.CodeFailedToParse:
		return invalid("pipeline", "%s", pe.Msg)
	case processor.CodeBadValue, processor.CodeTypeMismatch, processor.CodeInvalidOptions, processor.CodeStreamProcessorInvalidOption:
		field, reason := fieldOf(pe.Msg)
		return invalid(field, "%s", reason)
	}
	return internal(err)
}

// fieldOf splits a runtime message "field: reason"; a message without a field prefix is
// about the pipeline. Fields of a stage ("$emit.connectionName") are named under pipeline.
func fieldOf(msg string) (field, reason string) {
	i := strings.Index(msg, ": ")
	if i <= 0 || strings.ContainsAny(msg[:i], " \t") {
		return "pipeline", msg
	}
	field, reason = msg[:i], msg[i+2:]
	if strings.HasPrefix(field, "$") {
		field = "pipeline." + field
	}
	return field, reason
}

// sentence capitalises a runtime message and ends it with a period, as Atlas details read.
func sentence(msg string) string {
	if msg == "" {
		return msg
	}
	msg = strings.ToUpper(msg[:1]) + msg[1:]
	if !strings.HasSuffix(msg, ".") {
		msg += "."
	}
	return msg
}

func (s *Server) createProcessor(w http.ResponseWriter, r *http.Request, c *caller) *apiError {
	// Held until the processor is stored, so that a concurrent delete of the workspace cannot
	// leave it behind (deleteWorkspace drops the workspace's processors under the same lock).
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	var b processorBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.Name == nil || *b.Name == "" {
		return missing("name")
	}
	if isNull(b.Pipeline) {
		return missing("pipeline")
	}
	pipe, e := pipelineBSON(b.Pipeline)
	if e != nil {
		return e
	}
	req := processor.CreateRequest{Workspace: ws.Name, Name: *b.Name, Pipeline: pipe, By: c.key.PublicKey}
	if b.Options != nil {
		dlq, _, e := dlqOf(b.Options.DLQ)
		if e != nil {
			return e
		}
		req.DLQ = dlq
	}
	if b.Tier != nil {
		req.Tier = *b.Tier
	}
	if b.FailoverEnabled != nil {
		req.FailoverEnabled = *b.FailoverEnabled
	}
	rec, err := m.Create(req)
	if err != nil {
		return processorError(err, ws.Name, *b.Name)
	}
	v, e := s.processorView(r, ws, rec)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) getProcessor(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	name := r.PathValue("processorName")
	info, err := m.Get(ws.Name, name)
	if err != nil {
		return processorError(err, ws.Name, name)
	}
	v, e := s.processorStatsView(r, ws, info)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) listProcessors(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	infos := m.List(ws.Name)
	views := make([]processorStatsView, len(infos))
	for i, info := range infos {
		if views[i], e = s.processorStatsView(r, ws, info); e != nil {
			return e
		}
	}
	p, e := listPage(r, views)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) modifyProcessor(w http.ResponseWriter, r *http.Request, c *caller) *apiError {
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	name := r.PathValue("processorName")
	var b modifyBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	req := processor.ModifyRequest{ResumeFromCheckpoint: true, By: c.key.PublicKey}
	if b.Name != nil {
		if *b.Name == "" {
			return invalid("name", "must not be empty")
		}
		req.NewName = *b.Name
	}
	if !isNull(b.Pipeline) {
		pipe, e := pipelineBSON(b.Pipeline)
		if e != nil {
			return e
		}
		req.Pipeline = pipe
	}
	if b.Options != nil {
		dlq, empty, e := dlqOf(b.Options.DLQ)
		if e != nil {
			return e
		}
		req.DLQ, req.RemoveDLQ = dlq, empty
		if b.Options.ResumeFromCheckpoint != nil {
			req.ResumeFromCheckpoint = *b.Options.ResumeFromCheckpoint
		}
	}
	if b.Tier != nil {
		if *b.Tier == "" {
			return invalid("tier", "must not be empty: use SP2, SP5, SP10, SP30 or SP50")
		}
		req.Tier = *b.Tier
	}
	if b.FailoverEnabled != nil {
		info, err := m.Get(ws.Name, name)
		if err != nil {
			return processorError(err, ws.Name, name)
		}
		if *b.FailoverEnabled != info.FailoverEnabled {
			return invalid("failoverEnabled", "cannot be changed: spid has no failover regions")
		}
	}
	if err := m.Modify(ws.Name, name, req); err != nil {
		return processorError(err, ws.Name, name)
	}
	now := name
	if req.NewName != "" {
		now = req.NewName
	}
	info, err := m.Get(ws.Name, now)
	if err != nil {
		return processorError(err, ws.Name, now)
	}
	v, e := s.processorStatsView(r, ws, info)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteProcessor(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	name := r.PathValue("processorName")
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), stopTimeout)
	defer cancel()
	if err := m.Drop(ctx, ws.Name, name); err != nil {
		return processorError(err, ws.Name, name)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// processorAction serves POST …/processor/{name}:start, :startWith and :stop: a path segment
// cannot hold both a wildcard and a literal, so the action is split off here. Processor names
// hold no ':' (processor.CheckName).
func (s *Server) processorAction(w http.ResponseWriter, r *http.Request, c *caller) *apiError {
	seg := r.PathValue("processorAction")
	i := strings.LastIndexByte(seg, ':')
	if i <= 0 {
		return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No endpoint %s %s: use …/processor/{processorName}:start, :startWith or :stop.", r.Method, r.URL.Path)
	}
	name, action := seg[:i], seg[i+1:]
	switch action {
	case "start", "startWith", "stop":
	default:
		return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No endpoint %s %s: the processor actions are :start, :startWith and :stop.", r.Method, r.URL.Path)
	}
	ws, m, e := s.procWorkspace(r)
	if e != nil {
		return e
	}
	var err error
	switch action {
	case "start":
		err = m.Start(ws.Name, name, processor.StartOptions{By: c.key.PublicKey})
	case "startWith":
		var b startWithBody
		if r.ContentLength != 0 { // no body: the defaults, as :start
			if e := decodeBody(w, r, &b); e != nil {
				return e
			}
		}
		opts := processor.StartOptions{By: c.key.PublicKey}
		if b.ResumeFromCheckpoint != nil {
			opts.ClearCheckpoints = !*b.ResumeFromCheckpoint
		}
		if b.Tier != nil {
			if *b.Tier == "" {
				return invalid("tier", "must not be empty: use SP2, SP5, SP10, SP30 or SP50")
			}
			opts.Tier = *b.Tier
		}
		if b.StartAtOperationTime != nil {
			return invalid("startAtOperationTime", "is not supported by spid yet: it applies to change stream sources")
		}
		if !isNull(b.Failover) {
			return invalid("failover", "is not supported: spid has no failover regions")
		}
		err = m.Start(ws.Name, name, opts)
	case "stop":
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), stopTimeout)
		defer cancel()
		err = m.Stop(ctx, ws.Name, name)
	}
	if err != nil {
		return processorError(err, ws.Name, name)
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// processorRoutes registers the processor endpoints: reads for every project role, writes for
// Project Owner and Project Stream Processing Owner (resStreams, as workspaces and connections).
func (s *Server) processorRoutes(b string) {
	p := b + "/streams/{tenantName}/processor"
	s.handle("POST "+p, resStreams, true, s.createProcessor)
	s.handle("GET "+b+"/streams/{tenantName}/processors", resStreams, false, s.listProcessors)
	s.handle("GET "+p+"/{processorName}", resStreams, false, s.getProcessor)
	s.handle("PATCH "+p+"/{processorName}", resStreams, true, s.modifyProcessor)
	s.handle("DELETE "+p+"/{processorName}", resStreams, true, s.deleteProcessor)
	s.handle("POST "+p+"/{processorAction}", resStreams, true, s.processorAction)
}
