package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// Processor is a stream processor (Atlas StreamsProcessorWithStats; StreamsProcessor, the body
// of create and the reply to it, has no state or stats). Pipeline is the array of stages as
// Extended JSON: spid replies in relaxed form and accepts relaxed or canonical.
type Processor struct {
	ID              string            `json:"_id,omitempty"`
	Name            string            `json:"name,omitempty"`
	Pipeline        json.RawMessage   `json:"pipeline,omitempty"`
	Options         *ProcessorOptions `json:"options,omitempty"`
	Tier            string            `json:"tier,omitempty"`
	FailoverEnabled bool              `json:"failoverEnabled,omitempty"`
	// State is CREATED, STARTED, STOPPED or FAILED.
	State string `json:"state,omitempty"`
	// Stats are the processor's counters; nil in the reply to create.
	Stats               *ProcessorStats `json:"stats,omitempty"`
	EligibleForFailover bool            `json:"eligibleForFailover,omitempty"`
	// ErrorMsg, ErrorCode and ErrorRetryable say why a FAILED processor failed (an spi
	// extension).
	ErrorMsg       string `json:"errorMsg,omitempty"`
	ErrorCode      int32  `json:"errorCode,omitempty"`
	ErrorRetryable *bool  `json:"errorRetryable,omitempty"`
	Links          []Link `json:"links,omitempty"`
}

// ProcessorOptions are a processor's options (Atlas StreamsOptions).
type ProcessorOptions struct {
	DLQ *DLQ `json:"dlq,omitempty"`
}

// DLQ is a dead-letter queue: a collection reached through a Cluster connection.
type DLQ struct {
	ConnectionName string `json:"connectionName,omitempty"`
	DB             string `json:"db,omitempty"`
	Coll           string `json:"coll,omitempty"`
}

// ProcessorStats are the stats object of StreamsProcessorWithStats, with the field names of
// getStreamProcessorStats: counts in messages, sizes in bytes.
type ProcessorStats struct {
	Name               string `json:"name"`
	ProcessorID        string `json:"processorId"`
	Status             string `json:"status"`
	ScaleFactor        int64  `json:"scaleFactor"`
	InputMessageCount  int64  `json:"inputMessageCount"`
	InputMessageSize   int64  `json:"inputMessageSize"`
	OutputMessageCount int64  `json:"outputMessageCount"`
	OutputMessageSize  int64  `json:"outputMessageSize"`
	DLQMessageCount    int64  `json:"dlqMessageCount"`
	DLQMessageSize     int64  `json:"dlqMessageSize"`
	StateSize          int64  `json:"stateSize"`
	// Watermark is an ISO 8601 time, empty before the first watermark.
	Watermark string `json:"watermark,omitempty"`
}

// ProcessorModify is the body of ModifyProcessor (Atlas StreamsModifyStreamProcessor): unset
// fields are left as they are.
type ProcessorModify struct {
	// Name renames the processor.
	Name     string                  `json:"name,omitempty"`
	Pipeline json.RawMessage         `json:"pipeline,omitempty"`
	Options  *ProcessorModifyOptions `json:"options,omitempty"`
	Tier     string                  `json:"tier,omitempty"`
}

// ProcessorModifyOptions are the options of a modify. DLQ set to &DLQ{} removes the
// dead-letter queue; ResumeFromCheckpoint false starts the new pipeline afresh.
type ProcessorModifyOptions struct {
	DLQ                  *DLQ  `json:"dlq,omitempty"`
	ResumeFromCheckpoint *bool `json:"resumeFromCheckpoint,omitempty"`
}

// StartWith is the body of StartProcessorWith (Atlas StreamsStartStreamProcessorWith).
type StartWith struct {
	// ResumeFromCheckpoint false starts afresh; nil or true resumes from the last checkpoint.
	ResumeFromCheckpoint *bool `json:"resumeFromCheckpoint,omitempty"`
	// Tier, if set, runs the processor at this tier from now on.
	Tier string `json:"tier,omitempty"`
}

func processorPath(workspace, name string) string {
	return "/streams/" + esc(workspace) + "/processor/" + esc(name)
}

// ListProcessors returns one page of a workspace's processors with their stats.
func (c *Client) ListProcessors(ctx context.Context, workspace string, opts ListOptions) (*Page[Processor], error) {
	return call[Page[Processor]](ctx, c, http.MethodGet, "/streams/"+esc(workspace)+"/processors"+opts.Query(), nil)
}

// GetProcessor returns one processor with its state and stats.
func (c *Client) GetProcessor(ctx context.Context, workspace, name string) (*Processor, error) {
	return call[Processor](ctx, c, http.MethodGet, processorPath(workspace, name), nil)
}

// CreateProcessor creates a processor in state CREATED: p needs Name and Pipeline, and may set
// Options.DLQ, Tier and FailoverEnabled.
func (c *Client) CreateProcessor(ctx context.Context, workspace string, p *Processor) (*Processor, error) {
	return call[Processor](ctx, c, http.MethodPost, "/streams/"+esc(workspace)+"/processor", p)
}

// ModifyProcessor changes a processor that is not running and returns it as it now is.
func (c *Client) ModifyProcessor(ctx context.Context, workspace, name string, m *ProcessorModify) (*Processor, error) {
	return call[Processor](ctx, c, http.MethodPatch, processorPath(workspace, name), m)
}

// DeleteProcessor deletes a processor, stopping it first if it runs.
func (c *Client) DeleteProcessor(ctx context.Context, workspace, name string) error {
	return c.Do(ctx, http.MethodDelete, processorPath(workspace, name), nil, nil)
}

// StartProcessor starts a CREATED, STOPPED or FAILED processor from its last checkpoint.
func (c *Client) StartProcessor(ctx context.Context, workspace, name string) error {
	return c.Do(ctx, http.MethodPost, processorPath(workspace, name)+":start", nil, nil)
}

// StartProcessorWith starts a processor with options.
func (c *Client) StartProcessorWith(ctx context.Context, workspace, name string, opts *StartWith) error {
	if opts == nil {
		opts = &StartWith{}
	}
	return c.Do(ctx, http.MethodPost, processorPath(workspace, name)+":startWith", opts, nil)
}

// StopProcessor stops a STARTED processor after a final checkpoint.
func (c *Client) StopProcessor(ctx context.Context, workspace, name string) error {
	return c.Do(ctx, http.MethodPost, processorPath(workspace, name)+":stop", nil, nil)
}
