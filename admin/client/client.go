// Package client is a typed Go client of spid's control-plane HTTP API (docs/admin-api.md),
// which is shaped like the Atlas Admin API v2 and authenticates API keys with HTTP Digest.
package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/spi-streams/spi/admin/digest"
)

// DefaultBaseURL is where spid's control plane listens unless told otherwise (--admin-listen).
const DefaultBaseURL = "http://127.0.0.1:8080"

// MediaType is the versioned media type the client asks for.
const MediaType = "application/vnd.atlas.2023-02-01+json"

// maxReply bounds how much of a reply is read: 500 items of any resource fit easily.
const maxReply = 32 << 20

// Config says where the API is and which API key to use.
type Config struct {
	// BaseURL is the scheme, host and port of the control plane; empty means DefaultBaseURL.
	BaseURL string
	// GroupID is the project's 24-hex id, printed by spid on first start.
	GroupID string
	// PublicKey and PrivateKey are the API key: the digest user name and password.
	PublicKey, PrivateKey string
	// HTTPClient supplies timeouts and the underlying transport; nil means a default client.
	// It is copied, not modified.
	HTTPClient *http.Client
	// RootCAs, if set, are the certificate authorities an https:// BaseURL's certificate must
	// chain to (see LoadCAFile), instead of the system's; the certificate is always verified.
	// Ignored when HTTPClient brings its own Transport.
	RootCAs *x509.CertPool
}

// LoadCAFile reads a PEM file of one or more CA certificates for Config.RootCAs.
func LoadCAFile(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", path)
	}
	return pool, nil
}

// Client calls the control-plane API of one project. It is safe for concurrent use.
type Client struct {
	hc   *http.Client
	root string // base URL + /api/atlas/v2/groups/{groupId}
}

// New returns a client that authenticates every request with the configured API key.
func New(cfg Config) *Client {
	var hc http.Client
	if cfg.HTTPClient != nil {
		hc = *cfg.HTTPClient
	}
	base := hc.Transport
	if base == nil && cfg.RootCAs != nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.TLSClientConfig = &tls.Config{RootCAs: cfg.RootCAs, MinVersion: tls.VersionTLS12}
		base = t
	}
	hc.Transport = &digest.Transport{Username: cfg.PublicKey, Password: cfg.PrivateKey, Base: base}
	baseURL := cfg.BaseURL
	if baseURL == "" {
		baseURL = DefaultBaseURL
	}
	return &Client{
		hc:   &hc,
		root: strings.TrimRight(baseURL, "/") + "/api/atlas/v2/groups/" + url.PathEscape(cfg.GroupID),
	}
}

// ListOptions selects one page of a list; zero values leave the server's defaults
// (100 items, page 1).
type ListOptions struct {
	ItemsPerPage int
	PageNum      int
}

// Query returns the options as a query string, "" or "?itemsPerPage=...&pageNum=...".
func (o ListOptions) Query() string {
	q := url.Values{}
	if o.ItemsPerPage > 0 {
		q.Set("itemsPerPage", strconv.Itoa(o.ItemsPerPage))
	}
	if o.PageNum > 0 {
		q.Set("pageNum", strconv.Itoa(o.PageNum))
	}
	if len(q) == 0 {
		return ""
	}
	return "?" + q.Encode()
}

// Page is one page of a paginated list.
type Page[T any] struct {
	Results    []T    `json:"results"`
	TotalCount int    `json:"totalCount"`
	Links      []Link `json:"links,omitempty"`
}

// Link is a related resource, as in Atlas replies.
type Link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// Error is a non-2xx reply, parsed from the Atlas-style error body.
type Error struct {
	// Status is the HTTP status code.
	Status int
	// ErrorCode is the stable code, e.g. DUPLICATE_NAME; empty if the body was not Atlas-shaped.
	ErrorCode string
	// Detail names the field and the reason.
	Detail string
	// Reason is the HTTP reason phrase.
	Reason string
}

// Error formats the reply as "409 DUPLICATE_NAME: <detail>".
func (e *Error) Error() string {
	s := strconv.Itoa(e.Status)
	if e.ErrorCode != "" {
		s += " " + e.ErrorCode
	} else if e.Reason != "" {
		s += " " + e.Reason
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func parseError(status int, body []byte) *Error {
	var b struct {
		Detail    string `json:"detail"`
		ErrorCode string `json:"errorCode"`
		Reason    string `json:"reason"`
	}
	e := &Error{Status: status}
	if json.Unmarshal(body, &b) == nil {
		e.ErrorCode, e.Detail, e.Reason = b.ErrorCode, b.Detail, b.Reason
	}
	if e.Reason == "" {
		e.Reason = http.StatusText(status)
	}
	if e.ErrorCode == "" && e.Detail == "" {
		// Not from spid (a proxy, say): keep the start of the body so the user sees something.
		d := strings.TrimSpace(string(body))
		if len(d) > 200 {
			d = d[:200] + "..."
		}
		e.Detail = d
	}
	return e
}

// Do sends one request and decodes a 2xx JSON reply into out. path is relative to the
// project, e.g. "/streams/default", with segments already escaped (url.PathEscape) and an
// optional query. body is JSON-encoded unless it is a []byte or json.RawMessage, which are sent
// as they are; nil (also a nil pointer, map or slice) sends no body. out may be nil, or a *json.RawMessage to keep the reply as
// it is; an empty reply leaves it untouched. A non-2xx reply is returned as an *Error.
func (c *Client) Do(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if !isNil(body) {
		var b []byte
		switch v := body.(type) {
		case []byte:
			b = v
		case json.RawMessage:
			b = v
		default:
			var err error
			if b, err = json.Marshal(body); err != nil {
				return fmt.Errorf("encode %s %s body: %w", method, path, err)
			}
		}
		// A bytes.Reader lets NewRequest set GetBody, so the digest retry can resend it.
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.root+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", MediaType)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return fmt.Errorf("read %s %s reply: %w", method, path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseError(resp.StatusCode, data)
	}
	if out == nil || len(bytes.TrimSpace(data)) == 0 {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("decode %s %s reply: %w", method, path, err)
	}
	return nil
}

// isNil reports whether v is nil or holds a nil pointer, map or slice, which would otherwise
// be sent as the body "null".
func isNil(v any) bool {
	if v == nil {
		return true
	}
	switch rv := reflect.ValueOf(v); rv.Kind() {
	case reflect.Pointer, reflect.Map, reflect.Slice:
		return rv.IsNil()
	}
	return false
}

// call sends one request and decodes the reply as a T: the shape of every typed method.
func call[T any](ctx context.Context, c *Client, method, path string, body any) (*T, error) {
	var out T
	if err := c.Do(ctx, method, path, body, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// esc escapes one path segment: X.509 user names hold commas, '=' and spaces.
func esc(s string) string { return url.PathEscape(s) }
