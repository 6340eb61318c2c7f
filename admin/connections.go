package admin

import (
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/authz"
	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/connectors/mongodb"
	"github.com/spi-streams/spi/store"
)

var (
	connectionName = regexp.MustCompile(`^[A-Za-z0-9._*-]{1,64}$`)
	clusterName    = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9-]{0,63}$`)
	headerName     = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// maskedSecret stands for a stored Https header value in replies; sent back, it keeps the value.
const maskedSecret = "********"

// kafkaConfigKeys is the Atlas allow-list of Kafka properties a connection may set.
var kafkaConfigKeys = []string{
	// producer
	"acks", "batch.size", "client.dns.lookup", "client.id", "compression.type", "connections.max.idle.ms",
	"delivery.timeout.ms", "enable.idempotence", "linger.ms", "max.in.flight.requests.per.connection",
	"message.max.bytes", "queue.buffering.max.messages", "request.timeout.ms", "retries", "transactional.id",
	// consumer
	"allow.auto.create.topics", "auto.offset.reset", "fetch.max.bytes", "fetch.min.bytes", "group.id",
	"heartbeat.interval.ms", "isolation.level", "max.partition.fetch.bytes", "max.poll.interval.ms", "session.timeout.ms",
}

// isBuiltinRole reports whether name is a built-in database role.
func isBuiltinRole(name string) bool {
	_, ok := authz.BuiltinRoles[name]
	return ok
}

type authBody struct {
	Mechanism                 *string         `json:"mechanism"`
	Username                  *string         `json:"username"`
	Password                  *string         `json:"password"`
	Method                    *string         `json:"method"`
	TokenEndpointURL          *string         `json:"tokenEndpointUrl"`
	ClientID                  *string         `json:"clientId"`
	ClientSecret              *string         `json:"clientSecret"`
	Scope                     *string         `json:"scope"`
	SASLOAuthBearerExtensions *string         `json:"saslOauthbearerExtensions"`
	SSLCertificate            *string         `json:"sslCertificate"`
	SSLKey                    *string         `json:"sslKey"`
	SSLKeyPassword            *string         `json:"sslKeyPassword"`
	Links                     json.RawMessage `json:"links"`
}

type securityBody struct {
	Protocol                *string         `json:"protocol"`
	BrokerPublicCertificate *string         `json:"brokerPublicCertificate"`
	Links                   json.RawMessage `json:"links"`
}

type networkingBody struct {
	Access *struct {
		Type  *string         `json:"type"`
		Links json.RawMessage `json:"links"`
	} `json:"access"`
	Links json.RawMessage `json:"links"`
}

type roleToExecuteBody struct {
	Role  *string         `json:"role"`
	Type  *string         `json:"type"`
	Links json.RawMessage `json:"links"`
}

// connectionBody is a StreamsConnection request: the union of every type's attributes.
type connectionBody struct {
	ID    json.RawMessage `json:"id"`
	Links json.RawMessage `json:"links"`
	State json.RawMessage `json:"state"`

	Name   *string `json:"name"`
	Type   *string `json:"type"`
	Region *string `json:"region"`

	BootstrapServers *string           `json:"bootstrapServers"`
	Authentication   *authBody         `json:"authentication"`
	Security         *securityBody     `json:"security"`
	Config           map[string]string `json:"config"`
	Networking       *networkingBody   `json:"networking"`

	ClusterName      *string            `json:"clusterName"`
	ClusterGroupID   *string            `json:"clusterGroupId"`
	ConnectionString *string            `json:"connectionString"`
	DBRoleToExecute  *roleToExecuteBody `json:"dbRoleToExecute"`
	// ProvisionExecuteAsUser is spi's execute-as layer 2 (docs/admin-api.md): authentication
	// then holds a user administrator, and processors connect as a user spid provisions.
	ProvisionExecuteAsUser *bool `json:"provisionExecuteAsUser"`
	// ExecuteAsUser is read-only (replies show it): a GET reply sent back is accepted.
	ExecuteAsUser json.RawMessage `json:"executeAsUser"`

	URL     *string           `json:"url"`
	Headers map[string]string `json:"headers"`
}

// present lists the type-specific attributes a body sets, for "not valid for this type" errors.
func (b *connectionBody) present() map[string]bool {
	return map[string]bool{
		"bootstrapServers": b.BootstrapServers != nil, "authentication": b.Authentication != nil,
		"security": b.Security != nil, "config": b.Config != nil, "networking": b.Networking != nil,
		"clusterName": b.ClusterName != nil, "clusterGroupId": b.ClusterGroupID != nil,
		"connectionString": b.ConnectionString != nil, "dbRoleToExecute": b.DBRoleToExecute != nil,
		"provisionExecuteAsUser": b.ProvisionExecuteAsUser != nil, "url": b.URL != nil, "headers": b.Headers != nil,
	}
}

var typeAttributes = map[string][]string{
	store.TypeKafka:   {"bootstrapServers", "authentication", "security", "config", "networking"},
	store.TypeCluster: {"clusterName", "clusterGroupId", "connectionString", "dbRoleToExecute", "authentication", "provisionExecuteAsUser"},
	store.TypeSample:  {},
	store.TypeHTTPS:   {"url", "headers"},
}

var unsupportedTypes = []string{"AWSLambda", "AWSKinesisDataStreams", "S3", "AzureBlobStorage", "GCPPubSub", "SchemaRegistry"}

// apply merges a request into c (a new or stored connection) and validates the result. An
// update that leaves out a write-only value keeps the stored one.
func (b *connectionBody) apply(c *store.Connection) *apiError {
	if b.Region != nil {
		c.Region = *b.Region
	}
	pres := b.present()
	keys := make([]string, 0, len(pres))
	for k := range pres {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if pres[k] && !slices.Contains(typeAttributes[c.Type], k) {
			return invalid(k, "not an attribute of %s connections", c.Type)
		}
	}
	switch c.Type {
	case store.TypeKafka:
		if c.Kafka == nil {
			c.Kafka = &store.Kafka{}
		}
		return b.applyKafka(c.Kafka)
	case store.TypeCluster:
		if c.Cluster == nil {
			c.Cluster = &store.Cluster{}
		}
		oldConnString := c.Cluster.ConnectionString
		if e := b.applyCluster(c.Cluster); e != nil {
			return e
		}
		return b.applyExecuteAs(c, oldConnString)
	case store.TypeSample:
		if c.Name != SampleSolar {
			return invalid("name", "a Sample connection must be named %s, the sample source spid generates", SampleSolar)
		}
	case store.TypeHTTPS:
		if c.HTTPS == nil {
			c.HTTPS = &store.HTTPS{}
		}
		return b.applyHTTPS(c.HTTPS)
	}
	return nil
}

// pathSegmentSafe reports whether a resource name survives a round trip through one URL path
// segment: "." and ".." are dot segments that clients and servers remove (RFC 3986 §5.2.4).
func pathSegmentSafe(name string) bool { return name != "." && name != ".." }

func str(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

func (b *connectionBody) applyKafka(k *store.Kafka) *apiError {
	old := *k
	if e := b.applyKafkaFields(k); e != nil {
		return e
	}
	// A stored secret is bound to where it goes and how it travels: a request that changes
	// either must give the secret again (spi's rule; Atlas keeps the secret, which would then
	// reach the new host).
	change := ""
	switch {
	case old.BootstrapServers != "" && old.BootstrapServers != k.BootstrapServers:
		change = "changing bootstrapServers"
	case old.Security.Protocol != "" && tlsProtocol(old.Security.Protocol) && !tlsProtocol(k.Security.Protocol):
		change = "changing security.protocol from " + old.Security.Protocol + " to " + k.Security.Protocol
	case old.Security.BrokerPublicCertificate != k.Security.BrokerPublicCertificate && old.BootstrapServers != "":
		change = "changing security.brokerPublicCertificate"
	case old.Auth.TokenEndpointURL != "" && old.Auth.TokenEndpointURL != k.Auth.TokenEndpointURL:
		change = "changing authentication.tokenEndpointUrl"
	}
	if change == "" {
		return nil
	}
	a := b.Authentication
	if a == nil {
		a = &authBody{}
	}
	for _, sec := range []struct {
		field  string
		stored store.Secret
		given  *string
	}{
		{"authentication.password", old.Auth.Password, a.Password},
		{"authentication.clientSecret", old.Auth.ClientSecret, a.ClientSecret},
		{"authentication.sslKey", old.Auth.SSLKey, a.SSLKey},
		{"authentication.sslKeyPassword", old.Auth.SSLKeyPassword, a.SSLKeyPassword},
	} {
		if sec.stored != "" && sec.given == nil {
			return invalid(sec.field, "%s would send the stored secret to a new destination or over a weaker transport; give %s again in the same request", change, sec.field)
		}
	}
	return nil
}

// tlsProtocol reports whether a Kafka security protocol encrypts the connection.
func tlsProtocol(p string) bool { return p == "SASL_SSL" || p == "SSL" }

func (b *connectionBody) applyKafkaFields(k *store.Kafka) *apiError {
	if b.BootstrapServers != nil {
		k.BootstrapServers = *b.BootstrapServers
	}
	if k.BootstrapServers == "" {
		return missing("bootstrapServers")
	}
	for _, hp := range strings.Split(k.BootstrapServers, ",") {
		host, port, err := net.SplitHostPort(strings.TrimSpace(hp))
		p, perr := strconv.Atoi(port)
		if err != nil || host == "" || perr != nil || p < 1 || p > 65535 {
			return invalid("bootstrapServers", "%q is not host:port", strings.TrimSpace(hp))
		}
	}
	if a := b.Authentication; a != nil {
		if a.Mechanism != nil {
			m := *a.Mechanism
			switch m {
			case "SCRAM-SHA-256":
				m = "SCRAM-256"
			case "SCRAM-SHA-512":
				m = "SCRAM-512"
			}
			if !slices.Contains([]string{"PLAIN", "SCRAM-256", "SCRAM-512", "OAUTHBEARER"}, m) {
				return invalid("authentication.mechanism", "%q must be PLAIN, SCRAM-256, SCRAM-512 or OAUTHBEARER", *a.Mechanism)
			}
			k.Auth.Mechanism = m
		}
		setStr(&k.Auth.Username, a.Username)
		setSecret(&k.Auth.Password, a.Password)
		setStr(&k.Auth.Method, a.Method)
		setStr(&k.Auth.TokenEndpointURL, a.TokenEndpointURL)
		setStr(&k.Auth.ClientID, a.ClientID)
		setSecret(&k.Auth.ClientSecret, a.ClientSecret)
		setStr(&k.Auth.Scope, a.Scope)
		setStr(&k.Auth.SASLOAuthBearerExtensions, a.SASLOAuthBearerExtensions)
		setStr(&k.Auth.SSLCertificate, a.SSLCertificate)
		setSecret(&k.Auth.SSLKey, a.SSLKey)
		setSecret(&k.Auth.SSLKeyPassword, a.SSLKeyPassword)
	}
	if s := b.Security; s != nil {
		if s.Protocol != nil {
			if !slices.Contains([]string{"PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL", "SSL"}, *s.Protocol) {
				return invalid("security.protocol", "%q must be SASL_PLAINTEXT, SASL_SSL, SSL or PLAINTEXT", *s.Protocol)
			}
			k.Security.Protocol = *s.Protocol
		}
		setStr(&k.Security.BrokerPublicCertificate, s.BrokerPublicCertificate)
	}
	if k.Security.Protocol == "" {
		k.Security.Protocol = "PLAINTEXT"
		if k.Auth.Mechanism != "" {
			k.Security.Protocol = "SASL_SSL"
		}
	}
	sasl := strings.HasPrefix(k.Security.Protocol, "SASL_")
	switch {
	case sasl && k.Auth.Mechanism == "":
		return missing("authentication.mechanism")
	case !sasl && k.Auth.Mechanism != "":
		return invalid("security.protocol", "%s does not use SASL, but authentication.mechanism is %s; use SASL_PLAINTEXT or SASL_SSL", k.Security.Protocol, k.Auth.Mechanism)
	case k.Security.Protocol == "SSL" && k.Auth.SSLCertificate == "":
		// SSL is mutual TLS (spec §7): the client certificate and its key are what authenticate.
		return missing("authentication.sslCertificate")
	case k.Security.Protocol == "SSL" && k.Auth.SSLKey == "":
		return missing("authentication.sslKey")
	case strings.Contains(k.Auth.SSLCertificate, "PRIVATE KEY"):
		// sslCertificate is shown in replies; a key in it would be shown too.
		return invalid("authentication.sslCertificate", "holds a private key: give the key in authentication.sslKey, which is write-only")
	}
	switch k.Auth.Mechanism {
	case "PLAIN", "SCRAM-256", "SCRAM-512":
		if k.Auth.Username == "" {
			return missing("authentication.username")
		}
		if k.Auth.Password == "" {
			return missing("authentication.password")
		}
	case "OAUTHBEARER":
		if k.Auth.Method != "" && k.Auth.Method != "OIDC" {
			return invalid("authentication.method", "%q must be OIDC", k.Auth.Method)
		}
		for f, v := range map[string]string{"authentication.tokenEndpointUrl": k.Auth.TokenEndpointURL,
			"authentication.clientId": k.Auth.ClientID, "authentication.clientSecret": k.Auth.ClientSecret.Reveal()} {
			if v == "" {
				return missing(f)
			}
		}
	}
	if b.Config != nil {
		for key := range b.Config {
			if !slices.Contains(kafkaConfigKeys, key) {
				return invalid("config."+key, "not a Kafka property a connection may set (see the allow-list in docs/admin-api.md)")
			}
		}
		k.Config = b.Config
	}
	if n := b.Networking; n != nil && n.Access != nil && n.Access.Type != nil {
		if *n.Access.Type != "PUBLIC" {
			return invalid("networking.access.type", "%q is not available: spid reaches Kafka over the network it runs on (PUBLIC)", *n.Access.Type)
		}
		k.NetworkAccess = "PUBLIC"
	}
	return nil
}

func setStr(dst *string, v *string) {
	if v != nil {
		*dst = *v
	}
}

func setSecret(dst *store.Secret, v *string) {
	if v != nil {
		*dst = store.Secret(*v)
	}
}

// secretOptions are connection string options that carry a secret: they belong in the
// write-only authentication fields, never in a readable field.
var secretOptions = []string{"tlscertificatekeyfilepassword", "sslpemkeypassword", "sslclientcertificatekeypassword", "password"}

func (b *connectionBody) applyCluster(c *store.Cluster) *apiError {
	oldConnString := c.ConnectionString
	if e := b.applyClusterFields(c); e != nil {
		return e
	}
	if c.Password != "" && oldConnString != "" && oldConnString != c.ConnectionString &&
		(b.Authentication == nil || b.Authentication.Password == nil) {
		return invalid("authentication.password", "changing connectionString would send the stored password to a new destination or over a weaker transport; give authentication.password again in the same request")
	}
	return nil
}

func (b *connectionBody) applyClusterFields(c *store.Cluster) *apiError {
	setStr(&c.ClusterName, b.ClusterName)
	setStr(&c.ClusterGroupID, b.ClusterGroupID)
	setStr(&c.ConnectionString, b.ConnectionString)
	if c.ClusterName == "" {
		return missing("clusterName")
	}
	if !clusterName.MatchString(c.ClusterName) {
		return invalid("clusterName", "%q must be 1 to 64 letters, digits or '-'", c.ClusterName)
	}
	if c.ConnectionString == "" {
		return missing("connectionString")
	}
	u, err := url.Parse(c.ConnectionString)
	if err != nil || (u.Scheme != "mongodb" && u.Scheme != "mongodb+srv") || u.Host == "" {
		return invalid("connectionString", "must be a mongodb:// or mongodb+srv:// URI with a host")
	}
	if u.User != nil {
		return invalid("connectionString", "must not contain credentials; give them in authentication, where they stay write-only")
	}
	for name, vals := range u.Query() {
		lname := strings.ToLower(name)
		if slices.Contains(secretOptions, lname) ||
			(lname == "authmechanismproperties" && strings.Contains(strings.ToUpper(strings.Join(vals, ",")), "AWS_SESSION_TOKEN")) {
			return invalid("connectionString", "option %s carries a secret, which would be readable here; spid keeps credentials only in authentication, write-only", audit.Clip(name, 64))
		}
	}
	if r := b.DBRoleToExecute; r != nil {
		setStr(&c.DBRoleToExecute.Role, r.Role)
		setStr(&c.DBRoleToExecute.Type, r.Type)
	}
	if c.DBRoleToExecute.Role == "" {
		return missing("dbRoleToExecute.role")
	}
	switch c.DBRoleToExecute.Type {
	case "":
		return missing("dbRoleToExecute.type")
	case "BUILT_IN":
		if !isBuiltinRole(c.DBRoleToExecute.Role) {
			return invalid("dbRoleToExecute.role", "%q is not a built-in role (atlasAdmin, readWriteAnyDatabase, readAnyDatabase)", c.DBRoleToExecute.Role)
		}
	case "CUSTOM":
	default:
		return invalid("dbRoleToExecute.type", "%q must be BUILT_IN or CUSTOM", c.DBRoleToExecute.Type)
	}
	if a := b.Authentication; a != nil {
		for f, v := range map[string]*string{"method": a.Method, "tokenEndpointUrl": a.TokenEndpointURL, "clientId": a.ClientID,
			"clientSecret": a.ClientSecret, "scope": a.Scope, "saslOauthbearerExtensions": a.SASLOAuthBearerExtensions,
			"sslCertificate": a.SSLCertificate, "sslKey": a.SSLKey, "sslKeyPassword": a.SSLKeyPassword} {
			if v != nil {
				return invalid("authentication."+f, "not an attribute of Cluster connections")
			}
		}
		if a.Mechanism != nil {
			// PLAIN is MongoDB Enterprise's LDAP login (authSource $external); SCRAM is the default.
			if *a.Mechanism != "SCRAM-SHA-256" && *a.Mechanism != "SCRAM-SHA-1" && *a.Mechanism != "PLAIN" {
				return invalid("authentication.mechanism", "%q must be SCRAM-SHA-256, SCRAM-SHA-1 or PLAIN", *a.Mechanism)
			}
			c.Mechanism = *a.Mechanism
		}
		setStr(&c.Username, a.Username)
		setSecret(&c.Password, a.Password)
	}
	if c.Username != "" && c.Mechanism == "" {
		c.Mechanism = "SCRAM-SHA-256"
	}
	if c.Username != "" && c.Password == "" {
		return missing("authentication.password")
	}
	if c.Username == "" && c.Password != "" {
		return missing("authentication.username")
	}
	return nil
}

// applyExecuteAs applies provisionExecuteAsUser (execute-as layer 2, connectors/mongodb
// provision.go): turned on, it needs the user administrator's credentials in authentication and
// registers the execute-as user spi-<workspace>-<connection> with a new random password; a new
// connectionString gets a new password too, so the old deployment's copy of the user does not
// share it. Turned off, spid forgets the user (it stays on the deployment until an
// administrator drops it).
//
// Switching provisionExecuteAsUser on a stored connection changes what authentication is:
// on, the user administrator; off, the identity processors read and write as. Kept across the
// switch, a user administrator would become the processors' identity (and it can grant itself
// any role), or a data identity would be used for user management. So a PATCH that switches it
// must give authentication.username and authentication.password in the same request (spi's
// rule, like a secret bound to its destination; docs/admin-api.md): 400 naming
// provisionExecuteAsUser otherwise.
func (b *connectionBody) applyExecuteAs(c *store.Connection, oldConnString string) *apiError {
	cl := c.Cluster
	if b.ProvisionExecuteAsUser != nil && *b.ProvisionExecuteAsUser != cl.ProvisionExecuteAsUser && oldConnString != "" {
		a := b.Authentication
		if a == nil || a.Username == nil || a.Password == nil || *a.Username == "" || *a.Password == "" {
			if cl.ProvisionExecuteAsUser {
				return invalid("provisionExecuteAsUser", "turning it off would make the stored user administrator the identity processors read and write as; give the execute-as identity in authentication.username and authentication.password in the same request")
			}
			return invalid("provisionExecuteAsUser", "turning it on would make the stored execute-as identity the deployment's user administrator; give the user administrator in authentication.username and authentication.password in the same request")
		}
	}
	if b.ProvisionExecuteAsUser != nil {
		cl.ProvisionExecuteAsUser = *b.ProvisionExecuteAsUser
	}
	if !cl.ProvisionExecuteAsUser {
		cl.ExecuteAs = nil
		return nil
	}
	if cl.Username == "" || cl.Password == "" {
		return invalid("provisionExecuteAsUser", "needs authentication.username and authentication.password: the deployment's user administrator (createUser, updateUser, viewUser, grantRole, e.g. userAdminAnyDatabase), which spid uses only to provision the execute-as user")
	}
	if cl.ExecuteAs == nil || (oldConnString != "" && oldConnString != cl.ConnectionString) {
		cl.ExecuteAs = &store.ExecuteAsUser{Username: mongodb.ExecuteAsUserName(c.Workspace, c.Name), Password: mongodb.NewPassword(), Rotated: time.Now().UTC()}
	}
	return nil
}

func (b *connectionBody) applyHTTPS(h *store.HTTPS) *apiError {
	oldURL := h.URL
	setStr(&h.URL, b.URL)
	if h.URL == "" {
		return missing("url")
	}
	u, err := url.Parse(h.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return invalid("url", "must be an http:// or https:// URL with a host")
	}
	if u.User != nil {
		return invalid("url", "must not contain credentials; give them in headers, where they stay write-only")
	}
	if oldURL != "" && oldURL != h.URL && len(h.Headers) > 0 {
		// The stored header values would follow the new URL: they must be given again.
		if b.Headers == nil {
			return invalid("headers", "changing url would send the stored header values to a new destination or over a weaker transport; give headers again in the same request")
		}
		for k, v := range b.Headers {
			if v == maskedSecret {
				return invalid("headers."+k, "changing url would send the stored value to a new destination; give the value again, not %q", maskedSecret)
			}
		}
	}
	if b.Headers != nil {
		old := h.Headers
		h.Headers = map[string]store.Secret{}
		for k, v := range b.Headers {
			if !headerName.MatchString(k) {
				return invalid("headers", "%q is not a valid header name", k)
			}
			if v == maskedSecret {
				if prev, ok := old[k]; ok {
					h.Headers[k] = prev
					continue
				}
				return invalid("headers."+k, "%q stands for a stored value, but this header has none", maskedSecret)
			}
			h.Headers[k] = store.Secret(v)
		}
	}
	return nil
}

// connectionView is a connection as the API shows it: every write-only value left out.
func connectionView(c store.Connection) map[string]any {
	v := map[string]any{"id": c.ID, "name": c.Name, "type": c.Type, "state": "READY"}
	if c.Region != "" {
		v["region"] = c.Region
	}
	switch {
	case c.Kafka != nil:
		k := c.Kafka
		v["bootstrapServers"] = k.BootstrapServers
		auth := map[string]any{}
		for key, val := range map[string]string{"mechanism": k.Auth.Mechanism, "username": k.Auth.Username, "method": k.Auth.Method,
			"tokenEndpointUrl": k.Auth.TokenEndpointURL, "clientId": k.Auth.ClientID, "scope": k.Auth.Scope,
			"saslOauthbearerExtensions": k.Auth.SASLOAuthBearerExtensions, "sslCertificate": k.Auth.SSLCertificate} {
			if val != "" {
				auth[key] = val
			}
		}
		v["authentication"] = auth
		sec := map[string]any{"protocol": k.Security.Protocol}
		if k.Security.BrokerPublicCertificate != "" {
			sec["brokerPublicCertificate"] = k.Security.BrokerPublicCertificate
		}
		v["security"] = sec
		cfg := k.Config
		if cfg == nil {
			cfg = map[string]string{}
		}
		v["config"] = cfg
		v["networking"] = map[string]any{"access": map[string]any{"type": "PUBLIC"}}
	case c.Cluster != nil:
		cl := c.Cluster
		v["clusterName"] = cl.ClusterName
		if cl.ClusterGroupID != "" {
			v["clusterGroupId"] = cl.ClusterGroupID
		}
		v["connectionString"] = cl.ConnectionString
		v["dbRoleToExecute"] = map[string]any{"role": cl.DBRoleToExecute.Role, "type": cl.DBRoleToExecute.Type}
		if cl.Username != "" {
			v["authentication"] = map[string]any{"mechanism": cl.Mechanism, "username": cl.Username}
		}
		if cl.ProvisionExecuteAsUser {
			v["provisionExecuteAsUser"] = true
			if u := cl.ExecuteAs; u != nil {
				v["executeAsUser"] = map[string]any{"username": u.Username, "db": "admin", "mechanism": "SCRAM-SHA-256",
					"passwordRotatedAt": u.Rotated.UTC().Format(time.RFC3339)}
			}
		}
	case c.HTTPS != nil:
		v["url"] = c.HTTPS.URL
		hdr := map[string]string{}
		for k := range c.HTTPS.Headers {
			hdr[k] = maskedSecret
		}
		v["headers"] = hdr
	}
	return v
}

func (s *Server) listConnections(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws := r.PathValue("tenantName")
	var list []store.Connection
	err := s.opts.Store.View(func(tx *store.Txn) (err error) {
		if _, err = tx.Workspace(ws); err != nil {
			return err
		}
		list, err = tx.Connections(ws)
		return err
	})
	if store.IsNotFound(err) {
		return notFound("workspace", ws)
	}
	if err != nil {
		return internal(err)
	}
	views := make([]map[string]any, len(list))
	for i, c := range list {
		views[i] = connectionView(c)
	}
	p, e := listPage(r, views)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) getConnection(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	c, apiErr := s.loadConnection(r.PathValue("tenantName"), r.PathValue("connectionName"))
	if apiErr != nil {
		return apiErr
	}
	writeJSON(w, http.StatusOK, connectionView(c))
	return nil
}

// loadConnection reads connection name of workspace ws. Errors: 404 naming the workspace or
// the connection that does not exist; 500 for a store failure.
func (s *Server) loadConnection(ws, name string) (store.Connection, *apiError) {
	var c store.Connection
	var missingWS bool
	err := s.opts.Store.View(func(tx *store.Txn) (err error) {
		if _, err = tx.Workspace(ws); err != nil {
			missingWS = true
			return err
		}
		c, err = tx.Connection(ws, name)
		return err
	})
	switch {
	case store.IsNotFound(err) && missingWS:
		return c, notFound("workspace", ws)
	case store.IsNotFound(err):
		return c, notFound("connection", name)
	case err != nil:
		return c, internal(err)
	}
	return c, nil
}

// checkCustomRole verifies a CUSTOM execute-as role exists.
func checkCustomRole(tx *store.Txn, c *store.Connection) *apiError {
	if c.Cluster == nil || c.Cluster.DBRoleToExecute.Type != "CUSTOM" {
		return nil
	}
	if _, err := tx.Role(c.Cluster.DBRoleToExecute.Role); err != nil {
		return invalid("dbRoleToExecute.role", "no custom role named %q exists", c.Cluster.DBRoleToExecute.Role)
	}
	return nil
}

func (s *Server) createConnection(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws := r.PathValue("tenantName")
	var b connectionBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.Name == nil || *b.Name == "" {
		return missing("name")
	}
	if !connectionName.MatchString(*b.Name) {
		return invalid("name", "%q must be 1 to 64 letters, digits, '.', '-', '*' or '_'", audit.Clip(*b.Name, 64))
	}
	if !pathSegmentSafe(*b.Name) {
		return invalid("name", "%q cannot be addressed in a URL path (RFC 3986 §5.2.4 removes dot segments); choose another name", *b.Name)
	}
	if b.Type == nil || *b.Type == "" {
		return missing("type")
	}
	if _, ok := typeAttributes[*b.Type]; !ok {
		if slices.Contains(unsupportedTypes, *b.Type) {
			return invalid("type", "%s connections are not supported by spid; use Kafka, Cluster, Sample or Https", *b.Type)
		}
		return invalid("type", "%q must be Kafka, Cluster, Sample or Https", *b.Type)
	}
	now := time.Now().UTC()
	c := store.Connection{ID: newID(), Workspace: ws, Name: *b.Name, Type: *b.Type, Created: now, Updated: now}
	if e := b.apply(&c); e != nil {
		return e
	}
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.Workspace(ws); err != nil {
			apiErr = notFound("workspace", ws)
			return errAbort
		}
		if _, err := tx.Connection(ws, c.Name); err == nil {
			apiErr = duplicate("connection", c.Name)
			return errAbort
		}
		if apiErr = checkCustomRole(tx, &c); apiErr != nil {
			return errAbort
		}
		return tx.PutConnection(c)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, connectionView(c))
	return nil
}

func (s *Server) updateConnection(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws, name := r.PathValue("tenantName"), r.PathValue("connectionName")
	var b connectionBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.Name != nil && *b.Name != name {
		return invalid("name", "connections cannot be renamed (the path names %q)", name)
	}
	if e := s.connectionInUse(ws, name, "modified"); e != nil {
		return e
	}
	var (
		c      store.Connection
		apiErr *apiError
	)
	err := s.opts.Store.Update(func(tx *store.Txn) (err error) {
		if _, err = tx.Workspace(ws); err != nil {
			apiErr = notFound("workspace", ws)
			return errAbort
		}
		if c, err = tx.Connection(ws, name); err != nil {
			apiErr = notFound("connection", name)
			return errAbort
		}
		if b.Type != nil && *b.Type != c.Type {
			apiErr = invalid("type", "the type of a connection cannot change (it is %s)", c.Type)
			return errAbort
		}
		if apiErr = b.apply(&c); apiErr != nil {
			return errAbort
		}
		if apiErr = checkCustomRole(tx, &c); apiErr != nil {
			return errAbort
		}
		c.Updated = time.Now().UTC()
		return tx.PutConnection(c)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, connectionView(c))
	return nil
}

func (s *Server) deleteConnection(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws, name := r.PathValue("tenantName"), r.PathValue("connectionName")
	if e := s.connectionInUse(ws, name, "deleted"); e != nil {
		return e
	}
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.Workspace(ws); err != nil {
			apiErr = notFound("workspace", ws)
			return errAbort
		}
		if err := tx.DeleteConnection(ws, name); err != nil {
			if store.IsNotFound(err) {
				apiErr = notFound("connection", name)
				return errAbort
			}
			return err
		}
		return nil
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// connectionInUse refuses to change a connection that running processors use, as Atlas does
// (spec §4.2: a connection cannot be modified while processors using it run): 409 naming them.
func (s *Server) connectionInUse(ws, name, what string) *apiError {
	if s.opts.Processors == nil {
		return nil
	}
	if names := s.opts.Processors.RunningUsing(ws, name); len(names) > 0 {
		return conflict("connection %s cannot be %s while the running processors %s use it; stop them first", name, what, strings.Join(names, ", "))
	}
	return nil
}

// rotateAction is the connection action that rotates the password of a Cluster connection's
// provisioned execute-as user (spi's extension, docs/admin-api.md), in the Atlas style of
// actions such as ".../processor/{name}:start".
const rotateAction = ":rotateExecuteAsUserPassword"

// connectionAction serves POST .../connections/{connectionName}:rotateExecuteAsUserPassword:
// a new random password is set on the deployment first (connecting as the user administrator)
// and stored in the registry after, so a failure changes nothing. Running processors keep their
// open connections, which stay authenticated, and use the new password from their next
// connection or retry; the connection may be in use. Errors: 404 for an unknown workspace,
// connection or action; 400 when the connection provisions no execute-as user or the
// deployment refuses the administrator's commands; 503 when the deployment cannot be reached.
func (s *Server) connectionAction(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	ws := r.PathValue("tenantName")
	name, ok := strings.CutSuffix(r.PathValue("connectionAction"), rotateAction)
	if !ok {
		return errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No endpoint %s %s.", r.Method, audit.Clip(r.URL.Path, auditPathMax))
	}
	roleSource := func(role string) (store.Role, bool) {
		var rl store.Role
		err := s.opts.Store.View(func(tx *store.Txn) (err error) { rl, err = tx.Role(role); return err })
		return rl, err == nil
	}
	c, apiErr := s.loadConnection(ws, name)
	if apiErr != nil {
		return apiErr
	}
	if c.Cluster == nil || !c.Cluster.ProvisionExecuteAsUser || c.Cluster.ExecuteAs == nil {
		return invalid("provisionExecuteAsUser", "connection %s does not provision an execute-as user, so it has no password to rotate", name)
	}
	u := store.ExecuteAsUser{Username: c.Cluster.ExecuteAs.Username, Password: mongodb.NewPassword(), Rotated: time.Now().UTC()}
	if err := mongodb.RotatePassword(r.Context(), &c, u, roleSource, s.log); err != nil {
		// The message names the deployment's hosts and the user, never a credential (the
		// connector scrubs both passwords).
		msg := err.Error()
		for _, sec := range []store.Secret{c.Cluster.Password, c.Cluster.ExecuteAs.Password, u.Password} {
			if sec != "" {
				msg = strings.ReplaceAll(msg, sec.Reveal(), "[redacted]")
			}
		}
		var ce *connectors.Error
		if errors.As(err, &ce) && ce.Retryable {
			return errorf(http.StatusServiceUnavailable, "STREAM_CONNECTION_UNREACHABLE", "The execute-as user's password was not rotated: %s", msg)
		}
		return errorf(http.StatusBadRequest, "STREAM_CONNECTION_PROVISIONING_FAILED", "The execute-as user's password was not rotated: %s", msg)
	}
	apiErr = nil
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		cur, err := tx.Connection(ws, name)
		if err != nil {
			apiErr = notFound("connection", name)
			return errAbort
		}
		if cur.Cluster == nil || cur.Cluster.ExecuteAs == nil || cur.Cluster.ExecuteAs.Username != u.Username {
			apiErr = conflict("connection %s changed while its execute-as user's password was rotated; try again", name)
			return errAbort
		}
		cur.Cluster.ExecuteAs = &u
		cur.Updated = u.Rotated
		c = cur
		return tx.PutConnection(cur)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	s.log.Info("execute-as user's password rotated", "workspace", ws, "connection", name, "user", u.Username)
	writeJSON(w, http.StatusOK, connectionView(c))
	return nil
}
