package client

import (
	"context"
	"net/http"
)

// Workspace is a stream processing workspace (Atlas StreamsTenant). The same type is the body
// of create and update: unset fields are left out.
type Workspace struct {
	ID                string        `json:"_id,omitempty"`
	GroupID           string        `json:"groupId,omitempty"`
	Name              string        `json:"name,omitempty"`
	DataProcessRegion *Region       `json:"dataProcessRegion,omitempty"`
	StreamConfig      *StreamConfig `json:"streamConfig,omitempty"`
	// Hostnames is the data-plane address; on create it is an spi extension to choose one.
	Hostnames         []string           `json:"hostnames,omitempty"`
	SampleConnections *SampleConnections `json:"sampleConnections,omitempty"`
	// Connections is filled by GetWorkspace with includeConnections.
	Connections []Connection `json:"connections,omitempty"`
	Links       []Link       `json:"links,omitempty"`
}

// WorkspaceUpdate is the body of UpdateWorkspace (Atlas StreamsTenantUpdateRequest): the
// region is given at the top level, not as dataProcessRegion.
type WorkspaceUpdate struct {
	CloudProvider string        `json:"cloudProvider,omitempty"`
	Region        string        `json:"region,omitempty"`
	StreamConfig  *StreamConfig `json:"streamConfig,omitempty"`
}

// Region is where Atlas would run a workspace; spid keeps it for compatibility.
type Region struct {
	CloudProvider string `json:"cloudProvider,omitempty"`
	Region        string `json:"region,omitempty"`
}

// StreamConfig is a workspace's tier: SP2, SP5, SP10, SP30 or SP50.
type StreamConfig struct {
	Tier        string `json:"tier,omitempty"`
	MaxTierSize string `json:"maxTierSize,omitempty"`
}

// SampleConnections says which sample connections a workspace has.
type SampleConnections struct {
	Solar bool `json:"solar"`
}

// ListWorkspaces returns one page of the project's workspaces.
func (c *Client) ListWorkspaces(ctx context.Context, opts ListOptions) (*Page[Workspace], error) {
	return call[Page[Workspace]](ctx, c, http.MethodGet, "/streams"+opts.Query(), nil)
}

// GetWorkspace returns one workspace, with its connections if includeConnections is set.
func (c *Client) GetWorkspace(ctx context.Context, name string, includeConnections bool) (*Workspace, error) {
	q := ""
	if includeConnections {
		q = "?includeConnections=true"
	}
	return call[Workspace](ctx, c, http.MethodGet, "/streams/"+esc(name)+q, nil)
}

// CreateWorkspace creates a workspace.
func (c *Client) CreateWorkspace(ctx context.Context, ws *Workspace) (*Workspace, error) {
	return call[Workspace](ctx, c, http.MethodPost, "/streams", ws)
}

// CreateWorkspaceWithSampleConnections creates a workspace with the sample_stream_solar connection.
func (c *Client) CreateWorkspaceWithSampleConnections(ctx context.Context, ws *Workspace) (*Workspace, error) {
	return call[Workspace](ctx, c, http.MethodPost, "/streams:withSampleConnections", ws)
}

// UpdateWorkspace changes a workspace's tier or region.
func (c *Client) UpdateWorkspace(ctx context.Context, name string, u *WorkspaceUpdate) (*Workspace, error) {
	return call[Workspace](ctx, c, http.MethodPatch, "/streams/"+esc(name), u)
}

// DeleteWorkspace deletes a workspace; its data-plane listener closes.
func (c *Client) DeleteWorkspace(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/streams/"+esc(name), nil, nil)
}
