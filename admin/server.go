// Package admin is spid's control plane: an HTTP JSON API shaped like the Atlas Admin API v2
// (workspaces, connection registry, database users, custom roles, API keys), authenticated
// with API keys by HTTP Digest and authorized by project roles. docs/admin-api.md describes it.
package admin

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/admin/digest"
	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/processor"
	"github.com/spi-streams/spi/store"
)

// Realm is the digest authentication realm.
const Realm = "spi"

// Project roles an API key can hold.
const (
	RoleOwner                 = "GROUP_OWNER"
	RoleStreamProcessingOwner = "GROUP_STREAM_PROCESSING_OWNER"
	RoleDataAccessAdmin       = "GROUP_DATA_ACCESS_ADMIN"
	RoleReadOnly              = "GROUP_READ_ONLY"
	apiBase                   = "/api/atlas/v2/groups/{groupId}"
)

// ProjectRoles lists the project roles in the order they are documented.
var ProjectRoles = []string{RoleOwner, RoleStreamProcessingOwner, RoleDataAccessAdmin, RoleReadOnly}

// resource is a family of endpoints with one permission table.
type resource int

const (
	resStreams resource = iota // workspaces and connections
	resAccess                  // database users and custom roles
	resKeys                    // API keys
)

// allowed says which project roles may read and write each resource.
var allowed = map[resource]struct{ read, write []string }{
	resStreams: {read: ProjectRoles, write: []string{RoleOwner, RoleStreamProcessingOwner}},
	resAccess:  {read: ProjectRoles, write: []string{RoleOwner, RoleStreamProcessingOwner, RoleDataAccessAdmin}},
	resKeys:    {read: []string{RoleOwner}, write: []string{RoleOwner}},
}

// Listeners opens and closes workspaces' data-plane listeners.
type Listeners interface {
	// Open starts serving the workspace on addr (port 0 picks one) and returns the bound address.
	Open(workspace, addr string) (string, error)
	// Close stops the workspace's listener and closes its connections.
	Close(workspace string)
}

// Options configures the control plane.
type Options struct {
	Store     *store.Store
	Logger    *slog.Logger
	Audit     *audit.Log
	Listeners Listeners
	// WorkspaceHost is the host new workspaces listen on when the request names no address.
	WorkspaceHost string
	// WorkspacePorts is the inclusive range of ports a workspace created through the API may
	// listen on; the zero value means DefaultWorkspacePorts.
	WorkspacePorts PortRange
	// Processors is the stream processor runtime the processor endpoints drive (the one the
	// data plane's sp.* commands use); nil answers them 503.
	Processors *processor.Manager
}

// Server serves the Admin API.
type Server struct {
	opts     Options
	log      *slog.Logger
	groupID  string
	verifier *digest.Verifier
	mux      *http.ServeMux

	// wsMu serialises workspace creation and deletion, which open and close listeners
	// outside the store transaction.
	wsMu sync.Mutex
}

// New returns the control plane of the project in opts.Store.
func New(opts Options) (*Server, error) {
	var p store.Project
	if err := opts.Store.View(func(tx *store.Txn) (err error) { p, err = tx.Project(); return err }); err != nil {
		return nil, err
	}
	s := &Server{opts: opts, log: opts.Logger, groupID: p.ID, mux: http.NewServeMux()}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.opts.WorkspaceHost == "" {
		s.opts.WorkspaceHost = "127.0.0.1"
	}
	if s.opts.WorkspacePorts == (PortRange{}) {
		s.opts.WorkspacePorts = DefaultWorkspacePorts
	}
	s.verifier = &digest.Verifier{Realm: Realm, Lookup: s.lookupKey}
	s.routes()
	return s, nil
}

// caller is the authenticated API key of a request.
type caller struct {
	key   store.APIKey
	roles []string
}

type handlerFunc func(w http.ResponseWriter, r *http.Request, c *caller) *apiError

func (s *Server) handle(pattern string, res resource, write bool, h handlerFunc) {
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		c, _ := r.Context().Value(callerKey{}).(*caller)
		if r.PathValue("groupId") != s.groupID {
			writeError(w, errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No project with ID %q exists on this server.", r.PathValue("groupId")))
			return
		}
		need := allowed[res].read
		if write {
			need = allowed[res].write
		}
		if !slices.ContainsFunc(c.roles, func(role string) bool { return slices.Contains(need, role) }) {
			writeError(w, errorf(http.StatusForbidden, "FORBIDDEN",
				"API key %s lacks the project role this request needs (one of %s).", c.key.PublicKey, strings.Join(need, ", ")))
			return
		}
		if err := h(w, r, c); err != nil {
			writeError(w, err)
		}
	})
}

func (s *Server) routes() {
	b := apiBase
	s.handle("GET "+b+"/streams", resStreams, false, s.listWorkspaces)
	s.handle("POST "+b+"/streams", resStreams, true, s.createWorkspace)
	s.handle("POST "+b+"/streams:withSampleConnections", resStreams, true, s.createWorkspaceWithSamples)
	s.handle("GET "+b+"/streams/{tenantName}", resStreams, false, s.getWorkspace)
	s.handle("PATCH "+b+"/streams/{tenantName}", resStreams, true, s.updateWorkspace)
	s.handle("DELETE "+b+"/streams/{tenantName}", resStreams, true, s.deleteWorkspace)

	s.handle("GET "+b+"/streams/{tenantName}/connections", resStreams, false, s.listConnections)
	s.handle("POST "+b+"/streams/{tenantName}/connections", resStreams, true, s.createConnection)
	s.handle("GET "+b+"/streams/{tenantName}/connections/{connectionName}", resStreams, false, s.getConnection)
	s.handle("PATCH "+b+"/streams/{tenantName}/connections/{connectionName}", resStreams, true, s.updateConnection)
	s.handle("DELETE "+b+"/streams/{tenantName}/connections/{connectionName}", resStreams, true, s.deleteConnection)
	s.handle("POST "+b+"/streams/{tenantName}/connections/{connectionAction}", resStreams, true, s.connectionAction)

	s.processorRoutes(b)

	s.handle("GET "+b+"/databaseUsers", resAccess, false, s.listUsers)
	s.handle("POST "+b+"/databaseUsers", resAccess, true, s.createUser)
	s.handle("GET "+b+"/databaseUsers/{databaseName}/{username}", resAccess, false, s.getUser)
	s.handle("PATCH "+b+"/databaseUsers/{databaseName}/{username}", resAccess, true, s.updateUser)
	s.handle("DELETE "+b+"/databaseUsers/{databaseName}/{username}", resAccess, true, s.deleteUser)

	s.handle("GET "+b+"/customDBRoles/roles", resAccess, false, s.listRoles)
	s.handle("POST "+b+"/customDBRoles/roles", resAccess, true, s.createRole)
	s.handle("GET "+b+"/customDBRoles/roles/{roleName}", resAccess, false, s.getRole)
	s.handle("PATCH "+b+"/customDBRoles/roles/{roleName}", resAccess, true, s.updateRole)
	s.handle("DELETE "+b+"/customDBRoles/roles/{roleName}", resAccess, true, s.deleteRole)

	s.handle("GET "+b+"/apiKeys", resKeys, false, s.listKeys)
	s.handle("POST "+b+"/apiKeys", resKeys, true, s.createKey)
	s.handle("GET "+b+"/apiKeys/{apiUserId}", resKeys, false, s.getKey)
	s.handle("PATCH "+b+"/apiKeys/{apiUserId}", resKeys, true, s.updateKey)
	s.handle("DELETE "+b+"/apiKeys/{apiUserId}", resKeys, true, s.deleteKey)

	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, errorf(http.StatusNotFound, "RESOURCE_NOT_FOUND", "No endpoint %s %s.", audit.Clip(r.Method, 16), audit.Clip(r.URL.Path, auditPathMax)))
	})
}

type callerKey struct{}

// statusWriter remembers the status code for the audit log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// Bounds of what one request can put in a log or audit record.
const (
	auditPathMax   = 256 // bytes of the path kept in an audit record
	auditCallerMax = 64  // bytes of a claimed user name
)

// ServeHTTP authenticates, authorizes, routes and audits one request.
//
// The audit log keeps one line per request of an authenticated key, whatever its method and
// outcome (a forbidden role, a rejected body), and one per real authentication failure: wrong
// or unknown key, bad digest response. The bare 401 challenge that opens each digest exchange
// (a request without an Authorization header) and a stale-nonce retry are not failures and are
// not recorded. Client-supplied fields are cut with audit.Clip, so a record stays a few hundred
// bytes whatever the request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w}
	reqID := newID()
	sw.Header().Set("X-Request-Id", reqID)
	var (
		who    string
		reason string
		record bool
	)
	defer func() {
		if p := recover(); p != nil {
			if err, ok := p.(error); ok && errors.Is(err, http.ErrAbortHandler) {
				panic(p)
			}
			// No stack trace: it could hold request data. The request id finds the request.
			s.log.Error("admin request handler failed", "requestId", reqID, "method", audit.Clip(r.Method, 16),
				"path", audit.Clip(r.URL.Path, auditPathMax), "panic", audit.Clip(fmt.Sprint(p), 256))
			if sw.status == 0 {
				writeError(sw, errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "The server could not complete the request (request id %s).", reqID))
			}
			record = true
		}
		status := sw.status
		if status == 0 {
			status = http.StatusOK
		}
		if status == http.StatusForbidden {
			record = true
		}
		if status == http.StatusForbidden && reason == "" {
			reason = "forbidden"
		}
		if record && s.opts.Audit != nil {
			s.opts.Audit.Record(AuditRecord{Time: start.UTC(), RequestID: reqID, Caller: who, Remote: r.RemoteAddr,
				Method: audit.Clip(r.Method, 16), Path: audit.Clip(r.URL.Path, auditPathMax), Status: status,
				Outcome: outcome(status), Reason: reason})
		}
		s.log.Debug("admin request", "method", audit.Clip(r.Method, 16), "path", audit.Clip(r.URL.Path, auditPathMax),
			"status", status, "caller", who, "ms", time.Since(start).Milliseconds())
	}()

	user, err := s.verifier.Verify(r)
	if err != nil {
		f := &digest.Failure{Reason: err.Error()}
		errors.As(err, &f)
		who = "unauthenticated"
		if f.User != "" {
			who = "unauthenticated:" + audit.Clip(f.User, auditCallerMax)
		}
		reason = f.Reason
		record = !f.NoCredentials && !f.Stale
		s.verifier.Challenge(sw, f.Stale)
		writeError(sw, errorf(http.StatusUnauthorized, "UNAUTHORIZED",
			"This request needs a valid API key by HTTP Digest authentication (%s).", f.Reason))
		return
	}
	who = user
	var key store.APIKey
	if err := s.opts.Store.View(func(tx *store.Txn) (err error) { key, err = tx.APIKey(user); return err }); err != nil {
		reason = "the API key no longer exists"
		record = true
		writeError(sw, errorf(http.StatusUnauthorized, "UNAUTHORIZED", "The API key no longer exists."))
		return
	}
	record = true
	if e := checkAccept(r); e != nil {
		writeError(sw, e)
		return
	}
	c := &caller{key: key, roles: key.Roles}
	s.mux.ServeHTTP(sw, r.WithContext(context.WithValue(r.Context(), callerKey{}, c)))
}

func outcome(status int) string {
	if status < 400 {
		return "success"
	}
	return "failure"
}

// lookupKey gives the digest verifier the stored HA1 of a public key.
func (s *Server) lookupKey(user, alg string) (string, bool) {
	var key store.APIKey
	if err := s.opts.Store.View(func(tx *store.Txn) (err error) { key, err = tx.APIKey(user); return err }); err != nil {
		return "", false
	}
	if alg == digest.SHA256 {
		return key.DigestHA1SHA2.Reveal(), true
	}
	return key.DigestHA1MD5.Reveal(), true
}

// newID returns a 24-hex identifier like Atlas's ObjectIds.
func newID() string { return bson.NewObjectID().Hex() }
