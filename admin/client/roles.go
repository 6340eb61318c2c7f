package client

import (
	"context"
	"net/http"
)

// CustomRole is a custom database role.
type CustomRole struct {
	RoleName       string          `json:"roleName,omitempty"`
	Actions        []RoleAction    `json:"actions,omitempty"`
	InheritedRoles []InheritedRole `json:"inheritedRoles,omitempty"`
}

// RoleAction is one privilege: an Atlas action name such as LIST_STREAM_PROCESSORS and what
// it applies to.
type RoleAction struct {
	Action    string         `json:"action"`
	Resources []RoleResource `json:"resources,omitempty"`
}

// RoleResource is the cluster (stream processing actions) or a database and collection.
type RoleResource struct {
	Cluster    bool   `json:"cluster,omitempty"`
	DB         string `json:"db,omitempty"`
	Collection string `json:"collection,omitempty"`
}

// InheritedRole is a role a custom role includes.
type InheritedRole struct {
	DB   string `json:"db"`
	Role string `json:"role"`
}

// ListCustomRoles returns every custom role; the API does not paginate them.
func (c *Client) ListCustomRoles(ctx context.Context) ([]CustomRole, error) {
	roles, err := call[[]CustomRole](ctx, c, http.MethodGet, "/customDBRoles/roles", nil)
	if err != nil {
		return nil, err
	}
	return *roles, nil
}

// GetCustomRole returns one custom role.
func (c *Client) GetCustomRole(ctx context.Context, name string) (*CustomRole, error) {
	return call[CustomRole](ctx, c, http.MethodGet, "/customDBRoles/roles/"+esc(name), nil)
}

// CreateCustomRole creates a custom role.
func (c *Client) CreateCustomRole(ctx context.Context, r *CustomRole) (*CustomRole, error) {
	return call[CustomRole](ctx, c, http.MethodPost, "/customDBRoles/roles", r)
}

// UpdateCustomRole changes a custom role's actions or inherited roles.
func (c *Client) UpdateCustomRole(ctx context.Context, name string, r *CustomRole) (*CustomRole, error) {
	return call[CustomRole](ctx, c, http.MethodPatch, "/customDBRoles/roles/"+esc(name), r)
}

// DeleteCustomRole deletes a custom role; a role still in use is a 409 CONFLICT.
func (c *Client) DeleteCustomRole(ctx context.Context, name string) error {
	return c.Do(ctx, http.MethodDelete, "/customDBRoles/roles/"+esc(name), nil, nil)
}
