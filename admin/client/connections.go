package client

import (
	"context"
	"net/http"
)

// Connection types.
const (
	TypeKafka   = "Kafka"
	TypeCluster = "Cluster"
	TypeSample  = "Sample"
	TypeHTTPS   = "Https"
)

// Connection is an entry of a workspace's connection registry (Atlas StreamsConnection). One
// struct holds the fields of every type; only those of Type are set. Passwords, secrets and
// header values are write-only: replies leave them out or mask them as "********".
type Connection struct {
	ID     string `json:"id,omitempty"`    // read-only
	State  string `json:"state,omitempty"` // read-only
	Name   string `json:"name,omitempty"`
	Type   string `json:"type,omitempty"`
	Region string `json:"region,omitempty"`

	// Kafka.
	BootstrapServers string            `json:"bootstrapServers,omitempty"`
	Security         *KafkaSecurity    `json:"security,omitempty"`
	Config           map[string]string `json:"config,omitempty"`
	Networking       *Networking       `json:"networking,omitempty"`

	// Kafka and Cluster.
	Authentication *ConnectionAuth `json:"authentication,omitempty"`

	// Cluster.
	ClusterName      string           `json:"clusterName,omitempty"`
	ClusterGroupID   string           `json:"clusterGroupId,omitempty"`
	ConnectionString string           `json:"connectionString,omitempty"`
	DBRoleToExecute  *DBRoleToExecute `json:"dbRoleToExecute,omitempty"`

	// Https.
	URL     string            `json:"url,omitempty"`
	Headers map[string]string `json:"headers,omitempty"`

	Links []Link `json:"links,omitempty"`
}

// ConnectionAuth is how spid authenticates to Kafka (PLAIN, SCRAM-256, SCRAM-512, OAUTHBEARER)
// or to a Cluster (SCRAM-SHA-256, SCRAM-SHA-1). Password, ClientSecret, SSLKey and
// SSLKeyPassword are write-only.
type ConnectionAuth struct {
	Mechanism                 string `json:"mechanism,omitempty"`
	Username                  string `json:"username,omitempty"`
	Password                  string `json:"password,omitempty"`
	Method                    string `json:"method,omitempty"`
	TokenEndpointURL          string `json:"tokenEndpointUrl,omitempty"`
	ClientID                  string `json:"clientId,omitempty"`
	ClientSecret              string `json:"clientSecret,omitempty"`
	Scope                     string `json:"scope,omitempty"`
	SASLOAuthBearerExtensions string `json:"saslOauthbearerExtensions,omitempty"`
	SSLCertificate            string `json:"sslCertificate,omitempty"`
	SSLKey                    string `json:"sslKey,omitempty"`
	SSLKeyPassword            string `json:"sslKeyPassword,omitempty"`
}

// KafkaSecurity is the transport to Kafka: PLAINTEXT, SASL_PLAINTEXT, SASL_SSL or SSL.
type KafkaSecurity struct {
	Protocol                string `json:"protocol,omitempty"`
	BrokerPublicCertificate string `json:"brokerPublicCertificate,omitempty"`
}

// Networking is how spid reaches Kafka.
type Networking struct {
	Access NetworkAccess `json:"access"`
}

// NetworkAccess is a network access type; spid supports PUBLIC.
type NetworkAccess struct {
	Type string `json:"type"`
}

// DBRoleToExecute is the role a Cluster connection's processors run as: a built-in role
// (BUILT_IN) or a custom one (CUSTOM).
type DBRoleToExecute struct {
	Role string `json:"role"`
	Type string `json:"type"`
}

func connectionsPath(workspace string) string { return "/streams/" + esc(workspace) + "/connections" }

// ListConnections returns one page of a workspace's connections.
func (c *Client) ListConnections(ctx context.Context, workspace string, opts ListOptions) (*Page[Connection], error) {
	return call[Page[Connection]](ctx, c, http.MethodGet, connectionsPath(workspace)+opts.Query(), nil)
}

// GetConnection returns one connection of a workspace.
func (c *Client) GetConnection(ctx context.Context, workspace, name string) (*Connection, error) {
	return call[Connection](ctx, c, http.MethodGet, connectionsPath(workspace)+"/"+esc(name), nil)
}

// CreateConnection adds a connection to a workspace.
func (c *Client) CreateConnection(ctx context.Context, workspace string, conn *Connection) (*Connection, error) {
	return call[Connection](ctx, c, http.MethodPost, connectionsPath(workspace), conn)
}

// UpdateConnection changes a connection; its type cannot change.
func (c *Client) UpdateConnection(ctx context.Context, workspace, name string, conn *Connection) (*Connection, error) {
	return call[Connection](ctx, c, http.MethodPatch, connectionsPath(workspace)+"/"+esc(name), conn)
}

// DeleteConnection removes a connection from a workspace.
func (c *Client) DeleteConnection(ctx context.Context, workspace, name string) error {
	return c.Do(ctx, http.MethodDelete, connectionsPath(workspace)+"/"+esc(name), nil, nil)
}
