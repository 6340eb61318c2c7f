package client

import (
	"context"
	"net/http"
)

// DatabaseUser is a data-plane user: a SCRAM user in database "admin" or an X.509 user (its
// certificate's RFC 2253 subject) in "$external". Password is write-only.
type DatabaseUser struct {
	DatabaseName string     `json:"databaseName,omitempty"`
	Username     string     `json:"username,omitempty"`
	GroupID      string     `json:"groupId,omitempty"`
	Password     string     `json:"password,omitempty"`
	Roles        []UserRole `json:"roles,omitempty"`
	// Scopes restricts the user to workspaces. nil leaves it out of a request; an empty,
	// non-nil slice clears the restriction on update (no scopes means every workspace).
	Scopes       []UserScope `json:"scopes,omitzero"`
	X509Type     string      `json:"x509Type,omitempty"`
	LDAPAuthType string      `json:"ldapAuthType,omitempty"`
	AWSIAMType   string      `json:"awsIAMType,omitempty"`
	OIDCAuthType string      `json:"oidcAuthType,omitempty"`
	Description  string      `json:"description,omitempty"`
	Links        []Link      `json:"links,omitempty"`
}

// UserRole grants a built-in or custom role; DatabaseName is "admin".
type UserRole struct {
	RoleName     string `json:"roleName"`
	DatabaseName string `json:"databaseName"`
}

// UserScope names a workspace the user may use; Type is "STREAM".
type UserScope struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func userPath(database, username string) string {
	return "/databaseUsers/" + esc(database) + "/" + esc(username)
}

// ListDatabaseUsers returns one page of the project's database users.
func (c *Client) ListDatabaseUsers(ctx context.Context, opts ListOptions) (*Page[DatabaseUser], error) {
	return call[Page[DatabaseUser]](ctx, c, http.MethodGet, "/databaseUsers"+opts.Query(), nil)
}

// GetDatabaseUser returns one database user.
func (c *Client) GetDatabaseUser(ctx context.Context, database, username string) (*DatabaseUser, error) {
	return call[DatabaseUser](ctx, c, http.MethodGet, userPath(database, username), nil)
}

// CreateDatabaseUser creates a database user.
func (c *Client) CreateDatabaseUser(ctx context.Context, u *DatabaseUser) (*DatabaseUser, error) {
	return call[DatabaseUser](ctx, c, http.MethodPost, "/databaseUsers", u)
}

// UpdateDatabaseUser changes a database user's password, roles, scopes or description.
func (c *Client) UpdateDatabaseUser(ctx context.Context, database, username string, u *DatabaseUser) (*DatabaseUser, error) {
	return call[DatabaseUser](ctx, c, http.MethodPatch, userPath(database, username), u)
}

// DeleteDatabaseUser deletes a database user.
func (c *Client) DeleteDatabaseUser(ctx context.Context, database, username string) error {
	return c.Do(ctx, http.MethodDelete, userPath(database, username), nil, nil)
}
