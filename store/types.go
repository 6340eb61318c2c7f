package store

import (
	"fmt"
	"log/slog"
	"time"
)

// Secret is a write-only value: a password, key or token. fmt, slog and encoding/json print it
// as "[redacted]"; only Reveal returns it. Records are stored as BSON, which keeps the value, and
// each record is sealed as a whole; API views never carry a Secret.
type Secret string

const redacted = "[redacted]"

// Reveal returns the secret value.
func (s Secret) Reveal() string { return string(s) }

// String redacts the secret.
func (s Secret) String() string { return redacted }

// GoString redacts the secret for %#v.
func (s Secret) GoString() string { return redacted }

// Format redacts the secret for every fmt verb.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(redacted)) }

// MarshalJSON redacts the secret, so a record that reaches a JSON log or reply leaks nothing.
func (s Secret) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// LogValue redacts the secret in slog output.
func (s Secret) LogValue() slog.Value { return slog.StringValue(redacted) }

// Project is the one project a spid process serves.
type Project struct {
	ID      string    `bson:"id"`
	Name    string    `bson:"name"`
	Created time.Time `bson:"created"`
}

// Region is where Atlas would run a workspace; spid keeps it for API compatibility.
type Region struct {
	CloudProvider string `bson:"cloudProvider"`
	Region        string `bson:"region"`
}

// Workspace is a stream processing workspace with its own data-plane address.
type Workspace struct {
	ID          string    `bson:"id"`
	Name        string    `bson:"name"`
	Region      Region    `bson:"region"`
	Tier        string    `bson:"tier"`
	MaxTierSize string    `bson:"maxTierSize"`
	Address     string    `bson:"address"`
	Created     time.Time `bson:"created"`
	Updated     time.Time `bson:"updated"`
}

// Connection types.
const (
	TypeKafka   = "Kafka"
	TypeCluster = "Cluster"
	TypeSample  = "Sample"
	TypeHTTPS   = "Https"
)

// Connection is one entry of a workspace's connection registry. Exactly one of the typed
// configurations is set, matching Type (none for Sample).
type Connection struct {
	ID        string    `bson:"id"`
	Workspace string    `bson:"workspace"`
	Name      string    `bson:"name"`
	Type      string    `bson:"type"`
	Region    string    `bson:"region,omitempty"`
	Kafka     *Kafka    `bson:"kafka,omitempty"`
	Cluster   *Cluster  `bson:"cluster,omitempty"`
	HTTPS     *HTTPS    `bson:"https,omitempty"`
	Created   time.Time `bson:"created"`
	Updated   time.Time `bson:"updated"`
}

// Kafka is a Kafka cluster reachable from spid.
type Kafka struct {
	BootstrapServers string            `bson:"bootstrapServers"`
	Auth             KafkaAuth         `bson:"auth"`
	Security         KafkaSecurity     `bson:"security"`
	Config           map[string]string `bson:"config,omitempty"`
	NetworkAccess    string            `bson:"networkAccess,omitempty"`
}

// KafkaAuth is how spid authenticates to Kafka. Secret fields are write-only.
type KafkaAuth struct {
	Mechanism                 string `bson:"mechanism,omitempty"`
	Username                  string `bson:"username,omitempty"`
	Password                  Secret `bson:"password,omitempty"`
	Method                    string `bson:"method,omitempty"`
	TokenEndpointURL          string `bson:"tokenEndpointUrl,omitempty"`
	ClientID                  string `bson:"clientId,omitempty"`
	ClientSecret              Secret `bson:"clientSecret,omitempty"`
	Scope                     string `bson:"scope,omitempty"`
	SASLOAuthBearerExtensions string `bson:"saslOauthbearerExtensions,omitempty"`
	SSLCertificate            string `bson:"sslCertificate,omitempty"`
	SSLKey                    Secret `bson:"sslKey,omitempty"`
	SSLKeyPassword            Secret `bson:"sslKeyPassword,omitempty"`
}

// KafkaSecurity is the transport to Kafka.
type KafkaSecurity struct {
	Protocol                string `bson:"protocol,omitempty"`
	BrokerPublicCertificate string `bson:"brokerPublicCertificate,omitempty"`
}

// Cluster is a MongoDB deployment reachable from spid. Processors reach it as the execute-as
// identity: the credentials here, which must hold DBRoleToExecute on that deployment.
type Cluster struct {
	ClusterName      string        `bson:"clusterName"`
	ClusterGroupID   string        `bson:"clusterGroupId,omitempty"`
	ConnectionString string        `bson:"connectionString"`
	DBRoleToExecute  RoleToExecute `bson:"dbRoleToExecute"`
	Mechanism        string        `bson:"mechanism,omitempty"`
	Username         string        `bson:"username,omitempty"`
	Password         Secret        `bson:"password,omitempty"`
	// ProvisionExecuteAsUser makes Username/Password the deployment's user administrator,
	// used only to provision ExecuteAs, the user processors connect as (issue 11, execute-as
	// layer 2; connectors/mongodb/provision.go).
	ProvisionExecuteAsUser bool           `bson:"provisionExecuteAsUser,omitempty"`
	ExecuteAs              *ExecuteAsUser `bson:"executeAs,omitempty"`
}

// ExecuteAsUser is the user spid provisions on a Cluster connection's deployment: it holds
// exactly the connection's dbRoleToExecute and authenticates with SCRAM-SHA-256 and Password,
// a random value only spid knows.
type ExecuteAsUser struct {
	// Username is the user's name in the deployment's admin database.
	Username string `bson:"username"`
	// Password is the user's current password (write-only, never shown).
	Password Secret `bson:"password"`
	// Rotated is when Password was set (created or last rotated), UTC.
	Rotated time.Time `bson:"rotated"`
}

// RoleToExecute names the role a Cluster connection runs as.
type RoleToExecute struct {
	Role string `bson:"role"`
	Type string `bson:"type"` // BUILT_IN or CUSTOM
}

// HTTPS is an HTTPS endpoint for $https. Header values often carry tokens, so all are secret.
type HTTPS struct {
	URL     string            `bson:"url"`
	Headers map[string]Secret `bson:"headers,omitempty"`
}

// RoleRef grants a role to a database user.
type RoleRef struct {
	RoleName     string `bson:"roleName"`
	DatabaseName string `bson:"databaseName"`
}

// Scope restricts a database user to named resources (workspaces, for spid).
type Scope struct {
	Name string `bson:"name"`
	Type string `bson:"type"`
}

// ScramCredential is what a SCRAM server stores for one mechanism: never the password.
type ScramCredential struct {
	Salt       []byte `bson:"salt"`
	Iterations int    `bson:"iterations"`
	StoredKey  []byte `bson:"storedKey"`
	ServerKey  []byte `bson:"serverKey"`
}

// User is a database user: SCRAM users live in "admin", X.509 users in "$external".
type User struct {
	ID          string           `bson:"id"`
	Database    string           `bson:"database"`
	Username    string           `bson:"username"`
	Description string           `bson:"description,omitempty"`
	X509Type    string           `bson:"x509Type"`
	Roles       []RoleRef        `bson:"roles"`
	Scopes      []Scope          `bson:"scopes,omitempty"`
	SCRAMSHA1   *ScramCredential `bson:"scramSha1,omitempty"`
	SCRAMSHA256 *ScramCredential `bson:"scramSha256,omitempty"`
	Created     time.Time        `bson:"created"`
	Updated     time.Time        `bson:"updated"`
}

// Resource is what a custom role's action applies to.
type Resource struct {
	Cluster    bool   `bson:"cluster,omitempty"`
	DB         string `bson:"db,omitempty"`
	Collection string `bson:"collection,omitempty"`
}

// RoleAction is one privilege of a custom role.
type RoleAction struct {
	Action    string     `bson:"action"`
	Resources []Resource `bson:"resources,omitempty"`
}

// InheritedRole is a role a custom role includes.
type InheritedRole struct {
	DB   string `bson:"db"`
	Role string `bson:"role"`
}

// Role is a custom database role.
type Role struct {
	Name           string          `bson:"name"`
	Actions        []RoleAction    `bson:"actions"`
	InheritedRoles []InheritedRole `bson:"inheritedRoles"`
	Created        time.Time       `bson:"created"`
	Updated        time.Time       `bson:"updated"`
}

// APIKey is a control-plane API key. The private key itself is never stored: only the digest
// authentication hashes derived from it (sealed like every record) and its last characters.
type APIKey struct {
	ID             string    `bson:"id"`
	PublicKey      string    `bson:"publicKey"`
	Description    string    `bson:"description"`
	Roles          []string  `bson:"roles"`
	DigestHA1MD5   Secret    `bson:"digestHa1Md5"`
	DigestHA1SHA2  Secret    `bson:"digestHa1Sha256"`
	PrivateKeyTail string    `bson:"privateKeyTail"`
	Created        time.Time `bson:"created"`
}

// Processor states, as Atlas names them (spec §4.2).
const (
	StateCreated = "CREATED"
	StateStarted = "STARTED"
	StateStopped = "STOPPED"
	StateFailed  = "FAILED"
)

// DLQ names the collection a processor's dead-letter records go to: {connectionName, db, coll}.
type DLQ struct {
	ConnectionName string `bson:"connectionName"`
	DB             string `bson:"db"`
	Coll           string `bson:"coll"`
}

// Processor is a stream processor's definition and state. Pipeline is the BSON array exactly as
// the client sent it, so listings show it field for field.
type Processor struct {
	ID                  string    `bson:"id"`
	Workspace           string    `bson:"workspace"`
	Name                string    `bson:"name"`
	Pipeline            []byte    `bson:"pipeline"`
	DLQ                 *DLQ      `bson:"dlq,omitempty"`
	StreamMetaFieldName string    `bson:"streamMetaFieldName,omitempty"`
	Tier                string    `bson:"tier,omitempty"`
	FailoverEnabled     bool      `bson:"failoverEnabled,omitempty"`
	State               string    `bson:"state"`
	ErrorMsg            string    `bson:"errorMsg,omitempty"`
	ErrorCode           int32     `bson:"errorCode,omitempty"`
	ErrorRetryable      bool      `bson:"errorRetryable,omitempty"`
	HasStarted          bool      `bson:"hasStarted,omitempty"`
	PipelineVersion     int32     `bson:"pipelineVersion"`
	ModifiedBy          string    `bson:"modifiedBy,omitempty"`
	Created             time.Time `bson:"created"`
	LastModified        time.Time `bson:"lastModified"`
	LastStateChange     time.Time `bson:"lastStateChange"`
}

// SplitPosition is where a source stands in one split (a Kafka partition, a change stream, the
// sample generator): an opaque BSON document the source's connector reads back on restore.
type SplitPosition struct {
	Split    string `bson:"split"`
	Position []byte `bson:"position"`
}

// Counters are a processor's cumulative message counts and sizes (bytes), kept in each
// checkpoint so that stats survive a restart.
type Counters struct {
	InputCount  int64 `bson:"inputCount"`
	InputSize   int64 `bson:"inputSize"`
	OutputCount int64 `bson:"outputCount"`
	OutputSize  int64 `bson:"outputSize"`
	DLQCount    int64 `bson:"dlqCount"`
	DLQSize     int64 `bson:"dlqSize"`
}

// Checkpoint is one committed checkpoint of a processor: the source positions and the operator
// state as of barrier ID, written in one transaction after the sink acknowledged everything
// before the barrier (runtime-design "Checkpoints").
type Checkpoint struct {
	ProcessorID     string          `bson:"processorId"`
	ID              int64           `bson:"id"`
	PipelineVersion int32           `bson:"pipelineVersion"`
	Time            time.Time       `bson:"time"`
	Positions       []SplitPosition `bson:"positions"`
	State           []byte          `bson:"state"`
	Watermark       int64           `bson:"watermark"`
	Counters        Counters        `bson:"counters"`
}
