package client

import (
	"context"
	"net/http"
)

// APIKey is a control-plane API key as the server returns it. PrivateKey is complete only in
// the reply to CreateAPIKey; afterwards it is masked to its last characters.
type APIKey struct {
	ID         string       `json:"id,omitempty"`
	Desc       string       `json:"desc,omitempty"`
	PublicKey  string       `json:"publicKey,omitempty"`
	PrivateKey string       `json:"privateKey,omitempty"`
	Roles      []APIKeyRole `json:"roles,omitempty"`
	Links      []Link       `json:"links,omitempty"`
}

// APIKeyRole is a project role held by an API key, e.g. GROUP_READ_ONLY.
type APIKeyRole struct {
	GroupID  string `json:"groupId,omitempty"`
	RoleName string `json:"roleName"`
}

// APIKeyRequest is the body of CreateAPIKey and UpdateAPIKey: roles are plain role names here,
// unlike in replies.
type APIKeyRequest struct {
	Desc  string   `json:"desc,omitempty"`
	Roles []string `json:"roles,omitempty"`
}

// ListAPIKeys returns one page of the project's API keys.
func (c *Client) ListAPIKeys(ctx context.Context, opts ListOptions) (*Page[APIKey], error) {
	return call[Page[APIKey]](ctx, c, http.MethodGet, "/apiKeys"+opts.Query(), nil)
}

// GetAPIKey returns one API key by its id (not its public key).
func (c *Client) GetAPIKey(ctx context.Context, id string) (*APIKey, error) {
	return call[APIKey](ctx, c, http.MethodGet, "/apiKeys/"+esc(id), nil)
}

// CreateAPIKey creates an API key; the reply holds the private key, this once.
func (c *Client) CreateAPIKey(ctx context.Context, k *APIKeyRequest) (*APIKey, error) {
	return call[APIKey](ctx, c, http.MethodPost, "/apiKeys", k)
}

// UpdateAPIKey changes an API key's description or roles.
func (c *Client) UpdateAPIKey(ctx context.Context, id string, k *APIKeyRequest) (*APIKey, error) {
	return call[APIKey](ctx, c, http.MethodPatch, "/apiKeys/"+esc(id), k)
}

// DeleteAPIKey deletes an API key; the last GROUP_OWNER key cannot be deleted (409).
func (c *Client) DeleteAPIKey(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodDelete, "/apiKeys/"+esc(id), nil, nil)
}
