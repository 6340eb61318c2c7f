package admin

import (
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/store"
)

var (
	workspaceName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)
	tiers         = []string{"SP2", "SP5", "SP10", "SP30", "SP50"}
)

// Defaults for fields a workspace request may leave out.
const (
	defaultCloud   = "AWS"
	defaultRegion  = "VIRGINIA_USA"
	defaultTier    = "SP10"
	defaultMaxTier = "SP50"
	// SampleSolar is the one sample source spid generates.
	SampleSolar = "sample_stream_solar"
)

type regionBody struct {
	CloudProvider *string         `json:"cloudProvider"`
	Region        *string         `json:"region"`
	Links         json.RawMessage `json:"links"`
}

type streamConfigBody struct {
	Tier        *string         `json:"tier"`
	MaxTierSize *string         `json:"maxTierSize"`
	Links       json.RawMessage `json:"links"`
}

// workspaceBody is a StreamsTenant as a request. Read-only fields are accepted and ignored.
type workspaceBody struct {
	ID                json.RawMessage   `json:"_id"`
	GroupID           json.RawMessage   `json:"groupId"`
	Links             json.RawMessage   `json:"links"`
	Connections       json.RawMessage   `json:"connections"`
	Name              *string           `json:"name"`
	DataProcessRegion *regionBody       `json:"dataProcessRegion"`
	StreamConfig      *streamConfigBody `json:"streamConfig"`
	FailoverRegions   []regionBody      `json:"failoverRegions"`
	Hostnames         []string          `json:"hostnames"`
	SampleConnections *struct {
		Solar bool            `json:"solar"`
		Links json.RawMessage `json:"links"`
	} `json:"sampleConnections"`
}

// workspaceUpdateBody is a StreamsTenantUpdateRequest. So that a GET reply (a StreamsTenant)
// can be sent back as it is, it also takes the StreamsTenant fields: the read-only ones are
// ignored, name and hostnames must be unchanged, dataProcessRegion is applied like
// cloudProvider and region.
type workspaceUpdateBody struct {
	Links           json.RawMessage   `json:"links"`
	CloudProvider   *string           `json:"cloudProvider"`
	Region          *string           `json:"region"`
	StreamConfig    *streamConfigBody `json:"streamConfig"`
	FailoverRegions []regionBody      `json:"failoverRegions"`
	ProcessorStatus json.RawMessage   `json:"processorStatus"`

	ID                json.RawMessage `json:"_id"`
	GroupID           json.RawMessage `json:"groupId"`
	Connections       json.RawMessage `json:"connections"`
	SampleConnections json.RawMessage `json:"sampleConnections"`
	Name              *string         `json:"name"`
	Hostnames         []string        `json:"hostnames"`
	DataProcessRegion *regionBody     `json:"dataProcessRegion"`
}

// regionView is a StreamsDataProcessRegion.
type regionView struct {
	CloudProvider string `json:"cloudProvider"`
	Region        string `json:"region"`
}

// streamConfigView is a StreamConfig.
type streamConfigView struct {
	Tier        string `json:"tier"`
	MaxTierSize string `json:"maxTierSize"`
}

// sampleConnectionsView is a StreamsSampleConnections: solar says whether the workspace has
// the sample_stream_solar connection.
type sampleConnectionsView struct {
	Solar bool `json:"solar"`
}

// workspaceView is a StreamsTenant reply.
type workspaceView struct {
	ID                string                `json:"_id"`
	GroupID           string                `json:"groupId"`
	Name              string                `json:"name"`
	DataProcessRegion regionView            `json:"dataProcessRegion"`
	StreamConfig      streamConfigView      `json:"streamConfig"`
	SampleConnections sampleConnectionsView `json:"sampleConnections"`
	Hostnames         []string              `json:"hostnames"`
	Connections       []any                 `json:"connections,omitempty"`
	Links             []link                `json:"links"`
}

// workspaceView shows w; solar says whether it has the sample_stream_solar connection.
func (s *Server) workspaceView(r *http.Request, w store.Workspace, solar bool, conns []store.Connection) workspaceView {
	v := workspaceView{
		ID: w.ID, GroupID: s.groupID, Name: w.Name,
		DataProcessRegion: regionView{CloudProvider: w.Region.CloudProvider, Region: w.Region.Region},
		StreamConfig:      streamConfigView{Tier: w.Tier, MaxTierSize: w.MaxTierSize},
		SampleConnections: sampleConnectionsView{Solar: solar},
		Hostnames:         []string{w.Address},
		Links:             []link{{Href: baseURL(r) + "/api/atlas/v2/groups/" + s.groupID + "/streams/" + w.Name, Rel: "self"}},
	}
	for _, c := range conns {
		v.Connections = append(v.Connections, connectionView(c))
	}
	return v
}

// hasSolar reports whether the workspace has the sample_stream_solar connection.
func hasSolar(tx *store.Txn, workspace string) bool {
	c, err := tx.Connection(workspace, SampleSolar)
	return err == nil && c.Type == store.TypeSample
}

func baseURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) listWorkspaces(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	var views []workspaceView
	err := s.opts.Store.View(func(tx *store.Txn) error {
		list, err := tx.Workspaces()
		for _, ws := range list {
			views = append(views, s.workspaceView(r, ws, hasSolar(tx, ws.Name), nil))
		}
		return err
	})
	if err != nil {
		return internal(err)
	}
	p, e := listPage(r, views)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) getWorkspace(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("tenantName")
	include := false
	if v := r.URL.Query().Get("includeConnections"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return &apiError{Status: http.StatusBadRequest, Code: "INVALID_QUERY_PARAMETER",
				Detail: "Invalid query parameter includeConnections: must be true or false.", Params: []any{"includeConnections"}}
		}
		include = b
	}
	var (
		ws    store.Workspace
		conns []store.Connection
		solar bool
	)
	err := s.opts.Store.View(func(tx *store.Txn) (err error) {
		if ws, err = tx.Workspace(name); err != nil {
			return err
		}
		solar = hasSolar(tx, name)
		if include {
			conns, err = tx.Connections(name)
		}
		return err
	})
	if store.IsNotFound(err) {
		return notFound("workspace", name)
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.workspaceView(r, ws, solar, conns))
	return nil
}

func (s *Server) createWorkspace(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	return s.create(w, r, false)
}

func (s *Server) createWorkspaceWithSamples(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	return s.create(w, r, true)
}

func (s *Server) create(w http.ResponseWriter, r *http.Request, samples bool) *apiError {
	var b workspaceBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.Name == nil || *b.Name == "" {
		return missing("name")
	}
	if !workspaceName.MatchString(*b.Name) {
		return invalid("name", "%q must be 1 to 64 letters, digits, '-' or '_', starting with a letter or digit", *b.Name)
	}
	now := time.Now().UTC()
	ws := store.Workspace{ID: newID(), Name: *b.Name, Region: store.Region{CloudProvider: defaultCloud, Region: defaultRegion},
		Tier: defaultTier, MaxTierSize: defaultMaxTier, Created: now, Updated: now}
	if e := applyRegion(&ws, b.DataProcessRegion, "dataProcessRegion"); e != nil {
		return e
	}
	if e := applyStreamConfig(&ws, b.StreamConfig); e != nil {
		return e
	}
	for i, f := range b.FailoverRegions {
		if f.CloudProvider == nil || f.Region == nil {
			return missing("failoverRegions[" + strconv.Itoa(i) + "].region")
		}
	}
	addr := net.JoinHostPort(s.opts.WorkspaceHost, "0")
	ports := s.opts.WorkspacePorts
	switch len(b.Hostnames) {
	case 0:
	case 1:
		host, port, err := net.SplitHostPort(b.Hostnames[0])
		if err != nil || host == "" {
			return invalid("hostnames[0]", "%q must be host:port", audit.Clip(b.Hostnames[0], 128))
		}
		if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
			return invalid("hostnames[0]", "port %q must be 1 to 65535", audit.Clip(port, 32))
		} else if !ports.Contains(p) {
			return invalid("hostnames[0]", "port %d is outside the workspace port range %s (spid's --workspace-ports)", p, ports)
		}
		addr = b.Hostnames[0]
	default:
		return invalid("hostnames", "a workspace listens on one address; give at most one")
	}
	if b.SampleConnections != nil && b.SampleConnections.Solar {
		samples = true
	}

	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	err := s.opts.Store.View(func(tx *store.Txn) error {
		_, err := tx.Workspace(ws.Name)
		return err
	})
	if err == nil {
		return duplicate("workspace", ws.Name)
	}
	if !store.IsNotFound(err) {
		return internal(err)
	}
	bound, err := s.openInRange(ws.Name, addr)
	if err != nil {
		return invalid("hostnames", "spid cannot listen on %s: %v", addr, err)
	}
	ws.Address = bound
	err = s.opts.Store.Update(func(tx *store.Txn) error {
		if err := tx.PutWorkspace(ws); err != nil {
			return err
		}
		if samples {
			return tx.PutConnection(sampleConnection(ws.Name, now))
		}
		return nil
	})
	if err != nil {
		s.opts.Listeners.Close(ws.Name)
		return internal(err)
	}
	var conns []store.Connection
	if samples {
		conns = []store.Connection{sampleConnection(ws.Name, now)}
	}
	writeJSON(w, http.StatusOK, s.workspaceView(r, ws, samples, conns))
	return nil
}

// PortRange is an inclusive range of TCP ports.
type PortRange struct{ Lo, Hi int }

// DefaultWorkspacePorts is every unprivileged port: below 1024 a process needs privileges to
// listen (Linux CAP_NET_BIND_SERVICE), so an API key must not be able to ask for one.
var DefaultWorkspacePorts = PortRange{Lo: 1024, Hi: 65535}

// ParsePortRange parses "LO-HI" (or one port), each 1 to 65535, LO <= HI.
func ParsePortRange(s string) (PortRange, error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, err1 := strconv.Atoi(strings.TrimSpace(lo))
	b, err2 := strconv.Atoi(strings.TrimSpace(hi))
	if err1 != nil || err2 != nil || a < 1 || b > 65535 || a > b {
		return PortRange{}, fmt.Errorf("%q is not a port range LO-HI with 1 <= LO <= HI <= 65535", s)
	}
	return PortRange{Lo: a, Hi: b}, nil
}

// Contains reports whether port p is in the range.
func (r PortRange) Contains(p int) bool { return p >= r.Lo && p <= r.Hi }

// String formats the range as LO-HI.
func (r PortRange) String() string { return strconv.Itoa(r.Lo) + "-" + strconv.Itoa(r.Hi) }

// openInRange opens the workspace's listener on addr; port 0 means any free port in the
// workspace port range: the system's choice if it falls in the range, else the first free
// port found from a random start in the range (at most 512 tries).
func (s *Server) openInRange(name, addr string) (string, error) {
	host, port, _ := net.SplitHostPort(addr)
	if port != "0" {
		return s.opts.Listeners.Open(name, addr)
	}
	r := s.opts.WorkspacePorts
	bound, err := s.opts.Listeners.Open(name, addr)
	if err != nil {
		return "", err
	}
	if _, bp, err := net.SplitHostPort(bound); err == nil {
		if p, err := strconv.Atoi(bp); err == nil && r.Contains(p) {
			return bound, nil
		}
	}
	s.opts.Listeners.Close(name)
	n := r.Hi - r.Lo + 1
	start := mrand.IntN(n)
	for i := range min(n, 512) {
		p := r.Lo + (start+i)%n
		if bound, err = s.opts.Listeners.Open(name, net.JoinHostPort(host, strconv.Itoa(p))); err == nil {
			return bound, nil
		}
	}
	return "", fmt.Errorf("no free port in the workspace port range %s: %w", r, err)
}

// sampleConnection is the registry entry of the built-in solar sample source.
func sampleConnection(workspace string, now time.Time) store.Connection {
	return store.Connection{ID: newID(), Workspace: workspace, Name: SampleSolar, Type: store.TypeSample, Created: now, Updated: now}
}

func applyRegion(ws *store.Workspace, b *regionBody, field string) *apiError {
	if b == nil {
		return nil
	}
	if b.CloudProvider != nil {
		switch *b.CloudProvider {
		case "AWS", "AZURE", "GCP", "TENANT", "SERVERLESS":
			ws.Region.CloudProvider = *b.CloudProvider
		default:
			return invalid(field+".cloudProvider", "%q must be AWS, AZURE or GCP", *b.CloudProvider)
		}
	}
	if b.Region != nil {
		if *b.Region == "" {
			return invalid(field+".region", "must not be empty")
		}
		ws.Region.Region = *b.Region
	}
	return nil
}

func applyStreamConfig(ws *store.Workspace, b *streamConfigBody) *apiError {
	if b == nil {
		return nil
	}
	if b.Tier != nil {
		if !slices.Contains(tiers, *b.Tier) {
			return invalid("streamConfig.tier", "%q must be one of SP2, SP5, SP10, SP30, SP50", *b.Tier)
		}
		ws.Tier = *b.Tier
	}
	if b.MaxTierSize != nil {
		if !slices.Contains(tiers, *b.MaxTierSize) {
			return invalid("streamConfig.maxTierSize", "%q must be one of SP2, SP5, SP10, SP30, SP50", *b.MaxTierSize)
		}
		ws.MaxTierSize = *b.MaxTierSize
	}
	if slices.Index(tiers, ws.Tier) > slices.Index(tiers, ws.MaxTierSize) {
		return invalid("streamConfig.tier", "%s is larger than maxTierSize %s", ws.Tier, ws.MaxTierSize)
	}
	return nil
}

func (s *Server) updateWorkspace(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("tenantName")
	var b workspaceUpdateBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if len(b.ProcessorStatus) > 0 && string(b.ProcessorStatus) != "null" {
		return invalid("processorStatus", "bulk processor status changes are not supported by spid")
	}
	if b.Name != nil && *b.Name != name {
		return invalid("name", "workspaces cannot be renamed (the path names %q)", name)
	}
	var ws store.Workspace
	var apiErr *apiError
	var solar bool
	err := s.opts.Store.Update(func(tx *store.Txn) (err error) {
		if ws, err = tx.Workspace(name); err != nil {
			return err
		}
		solar = hasSolar(tx, name)
		if b.Hostnames != nil && !slices.Equal(b.Hostnames, []string{ws.Address}) {
			apiErr = invalid("hostnames", "a workspace's address cannot change (it is %s)", ws.Address)
			return errAbort
		}
		if apiErr = applyRegion(&ws, b.DataProcessRegion, "dataProcessRegion"); apiErr != nil {
			return errAbort
		}
		if apiErr = applyRegion(&ws, &regionBody{CloudProvider: b.CloudProvider, Region: b.Region}, "region"); apiErr != nil {
			return errAbort
		}
		if apiErr = applyStreamConfig(&ws, b.StreamConfig); apiErr != nil {
			return errAbort
		}
		ws.Updated = time.Now().UTC()
		return tx.PutWorkspace(ws)
	})
	if apiErr != nil {
		return apiErr
	}
	if store.IsNotFound(err) {
		return notFound("workspace", name)
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.workspaceView(r, ws, solar, nil))
	return nil
}

func (s *Server) deleteWorkspace(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	name := r.PathValue("tenantName")
	s.wsMu.Lock()
	defer s.wsMu.Unlock()
	// Users scoped to the workspace would otherwise keep a scope naming nothing, and a later
	// namesake would let them in again; removing the scope instead would widen a user scoped
	// only to it to every workspace. So the delete is refused until no user is scoped to it.
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.Workspace(name); err != nil {
			return err
		}
		users, err := tx.Users()
		if err != nil {
			return err
		}
		var scoped []string
		for _, u := range users {
			if slices.ContainsFunc(u.Scopes, func(sc store.Scope) bool { return sc.Name == name }) {
				scoped = append(scoped, u.Database+"/"+u.Username)
			}
		}
		if len(scoped) > 0 {
			apiErr = conflict("Workspace %q is in the scopes of database users %s; remove it from their scopes (or delete them) first.", name, strings.Join(scoped, ", "))
			apiErr.Params = []any{name}
			return errAbort
		}
		return tx.DeleteWorkspace(name)
	})
	if apiErr != nil {
		return apiErr
	}
	if store.IsNotFound(err) {
		return notFound("workspace", name)
	}
	if err != nil {
		return internal(err)
	}
	s.opts.Listeners.Close(name)
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// errAbort rolls a transaction back after a validation error recorded beside it.
var errAbort = errors.New("aborted")

func internal(err error) *apiError {
	return errorf(http.StatusInternalServerError, "INTERNAL_ERROR", "The server could not complete the request: %v.", err)
}
