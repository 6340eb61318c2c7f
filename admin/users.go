package admin

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/xdg-go/stringprep"

	"github.com/spi-streams/spi/audit"
	"github.com/spi-streams/spi/auth"
	"github.com/spi-streams/spi/store"
)

type roleRefBody struct {
	RoleName       *string `json:"roleName"`
	DatabaseName   *string `json:"databaseName"`
	CollectionName *string `json:"collectionName"`
}

type scopeBody struct {
	Name *string `json:"name"`
	Type *string `json:"type"`
}

// userBody is a CloudDatabaseUser request.
type userBody struct {
	GroupID      json.RawMessage `json:"groupId"`
	Links        json.RawMessage `json:"links"`
	DatabaseName *string         `json:"databaseName"`
	Username     *string         `json:"username"`
	Password     *string         `json:"password"`
	Roles        *[]roleRefBody  `json:"roles"`
	Scopes       *[]scopeBody    `json:"scopes"`
	X509Type     *string         `json:"x509Type"`
	LDAPAuthType *string         `json:"ldapAuthType"`
	AWSIAMType   *string         `json:"awsIAMType"`
	OIDCAuthType *string         `json:"oidcAuthType"`
	Description  *string         `json:"description"`
	// Mechanisms is an spi extension (mongod's createUser has it): which SCRAM credentials to
	// keep, SCRAM-SHA-1 and/or SCRAM-SHA-256 (default both).
	Mechanisms *[]string `json:"mechanisms"`
}

// userView is a CloudDatabaseUser reply (Atlas Admin API v2). Its nested objects have views
// of their own, with Atlas's JSON names: the store types have none.
type userView struct {
	DatabaseName string          `json:"databaseName"`
	Username     string          `json:"username"`
	GroupID      string          `json:"groupId"`
	Roles        []roleRefView   `json:"roles"`
	Scopes       []userScopeView `json:"scopes"`
	X509Type     string          `json:"x509Type"`
	LDAPAuthType string          `json:"ldapAuthType"`
	AWSIAMType   string          `json:"awsIAMType"`
	OIDCAuthType string          `json:"oidcAuthType"`
	Description  string          `json:"description"`
	Links        []link          `json:"links"`
}

// roleRefView is an Atlas DatabaseUserRole.
type roleRefView struct {
	RoleName     string `json:"roleName"`
	DatabaseName string `json:"databaseName"`
}

// userScopeView is an Atlas UserScope.
type userScopeView struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

func (s *Server) userView(r *http.Request, u store.User) userView {
	roles, scopes := []roleRefView{}, []userScopeView{}
	for _, rr := range u.Roles {
		roles = append(roles, roleRefView{RoleName: rr.RoleName, DatabaseName: rr.DatabaseName})
	}
	for _, sc := range u.Scopes {
		scopes = append(scopes, userScopeView{Name: sc.Name, Type: sc.Type})
	}
	return userView{DatabaseName: u.Database, Username: u.Username, GroupID: s.groupID, Roles: roles, Scopes: scopes,
		X509Type: u.X509Type, LDAPAuthType: "NONE", AWSIAMType: "NONE", OIDCAuthType: "NONE", Description: u.Description,
		Links: []link{{Href: baseURL(r) + "/api/atlas/v2/groups/" + s.groupID + "/databaseUsers/" +
			url.PathEscape(u.Database) + "/" + url.PathEscape(u.Username), Rel: "self"}}}
}

// roleExists reports whether name is a built-in role or a stored custom role.
func roleExists(tx *store.Txn, name string) bool {
	if isBuiltinRole(name) {
		return true
	}
	_, err := tx.Role(name)
	return err == nil
}

// apply merges the request into u and validates the result against the store.
func (b *userBody) apply(tx *store.Txn, u *store.User) *apiError {
	for f, v := range map[string]*string{"ldapAuthType": b.LDAPAuthType, "awsIAMType": b.AWSIAMType, "oidcAuthType": b.OIDCAuthType} {
		if v != nil && *v != "NONE" {
			return invalid(f, "%q is not supported by spid; only NONE", *v)
		}
	}
	if b.Description != nil {
		if len(*b.Description) > 100 {
			return invalid("description", "must be at most 100 characters")
		}
		u.Description = *b.Description
	}
	if b.X509Type != nil {
		u.X509Type = *b.X509Type
	}
	switch u.Database {
	case "admin":
		if u.X509Type != "" && u.X509Type != "NONE" {
			return invalid("x509Type", "X.509 users belong to the $external database, not admin")
		}
		u.X509Type = "NONE"
		keep1, keep256 := u.SCRAMSHA1 != nil || u.SCRAMSHA256 == nil, u.SCRAMSHA256 != nil || u.SCRAMSHA1 == nil
		if b.Mechanisms != nil {
			if b.Password == nil {
				return invalid("mechanisms", "changing the mechanisms needs the password, to derive their credentials")
			}
			if len(*b.Mechanisms) == 0 {
				return invalid("mechanisms", "give SCRAM-SHA-1, SCRAM-SHA-256 or both")
			}
			keep1, keep256 = false, false
			for i, m := range *b.Mechanisms {
				switch m {
				case auth.MechSHA1:
					keep1 = true
				case auth.MechSHA256:
					keep256 = true
				default:
					return invalid("mechanisms["+strconv.Itoa(i)+"]", "%q must be SCRAM-SHA-1 or SCRAM-SHA-256", m)
				}
			}
		}
		if b.Password != nil {
			pw := *b.Password
			if n := len([]rune(pw)); n < 8 || n > 256 {
				return invalid("password", "must be 8 to 256 characters")
			}
			sha1, sha256, err := auth.DeriveCredentials(u.Username, pw)
			if err != nil {
				return invalid("password", "contains characters SASLprep prohibits (control or unassigned characters)")
			}
			u.SCRAMSHA1, u.SCRAMSHA256 = nil, nil
			if keep1 {
				u.SCRAMSHA1 = sha1
			}
			if keep256 {
				u.SCRAMSHA256 = sha256
			}
		}
		if u.SCRAMSHA256 == nil && u.SCRAMSHA1 == nil {
			return missing("password")
		}
	case "$external":
		if u.X509Type != "CUSTOMER" && u.X509Type != "MANAGED" {
			return invalid("x509Type", "users in $external authenticate by certificate: x509Type must be CUSTOMER or MANAGED")
		}
		if b.Password != nil {
			return invalid("password", "X.509 users have no password")
		}
		if b.Mechanisms != nil {
			return invalid("mechanisms", "X.509 users authenticate by certificate, not SCRAM")
		}
	}
	if b.Roles != nil {
		if len(*b.Roles) == 0 {
			return invalid("roles", "a database user needs at least one role")
		}
		u.Roles = nil
		for i, rb := range *b.Roles {
			f := "roles[" + strconv.Itoa(i) + "]"
			if rb.RoleName == nil || *rb.RoleName == "" {
				return missing(f + ".roleName")
			}
			db := "admin"
			if rb.DatabaseName != nil {
				db = *rb.DatabaseName
			}
			if db != "admin" {
				return invalid(f+".databaseName", "%q must be admin: workspace roles are granted on admin", db)
			}
			if str(rb.CollectionName) != "" {
				return invalid(f+".collectionName", "workspace roles are granted on the whole admin database, not a collection")
			}
			if !roleExists(tx, *rb.RoleName) {
				return invalid(f+".roleName", "no built-in or custom role named %q exists", *rb.RoleName)
			}
			u.Roles = append(u.Roles, store.RoleRef{RoleName: *rb.RoleName, DatabaseName: db})
		}
	}
	if len(u.Roles) == 0 {
		return missing("roles")
	}
	if b.Scopes != nil {
		u.Scopes = nil
		for i, sb := range *b.Scopes {
			f := "scopes[" + strconv.Itoa(i) + "]"
			if sb.Name == nil || *sb.Name == "" {
				return missing(f + ".name")
			}
			typ := "STREAM"
			if sb.Type != nil {
				typ = *sb.Type
			}
			if typ != "STREAM" {
				return invalid(f+".type", "%q must be STREAM: spid restricts users to workspaces", typ)
			}
			if _, err := tx.Workspace(*sb.Name); err != nil {
				return invalid(f+".name", "no workspace named %q exists", *sb.Name)
			}
			u.Scopes = append(u.Scopes, store.Scope{Name: *sb.Name, Type: typ})
		}
	}
	return nil
}

func validUsername(db, name string) *apiError {
	if name == "" {
		return missing("username")
	}
	if len(name) > 1024 || strings.ContainsFunc(name, unicode.IsControl) {
		return invalid("username", "%q must be 1 to 1024 characters without control characters", audit.Clip(name, 64))
	}
	if !pathSegmentSafe(name) {
		return invalid("username", "%q cannot be addressed in a URL path (RFC 3986 §5.2.4 removes dot segments); choose another name", name)
	}
	if db == "admin" {
		// SCRAM-SHA-256 SASLpreps the user name as well as the password (RFC 7677, RFC 4013).
		if _, err := stringprep.SASLprep.Prepare(name); err != nil {
			return invalid("username", "contains characters SASLprep prohibits (RFC 4013: control, unassigned or bidirectional misuse)")
		}
	}
	if db == "$external" && !strings.Contains(name, "=") {
		return invalid("username", "%q is not an RFC 2253 subject such as CN=client,O=Example", name)
	}
	return nil
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	var list []store.User
	if err := s.opts.Store.View(func(tx *store.Txn) (err error) { list, err = tx.Users(); return err }); err != nil {
		return internal(err)
	}
	views := make([]userView, len(list))
	for i, u := range list {
		views[i] = s.userView(r, u)
	}
	p, e := listPage(r, views)
	if e != nil {
		return e
	}
	writeJSON(w, http.StatusOK, p)
	return nil
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	db, name := r.PathValue("databaseName"), r.PathValue("username")
	var u store.User
	err := s.opts.Store.View(func(tx *store.Txn) (err error) { u, err = tx.User(db, name); return err })
	if store.IsNotFound(err) {
		return notFound("database user", db+"/"+name)
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.userView(r, u))
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	var b userBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.DatabaseName == nil || *b.DatabaseName == "" {
		return missing("databaseName")
	}
	db := *b.DatabaseName
	if db != "admin" && db != "$external" {
		return invalid("databaseName", "%q must be admin (SCRAM users) or $external (X.509 users)", db)
	}
	if e := validUsername(db, str(b.Username)); e != nil {
		return e
	}
	if b.Roles == nil {
		return missing("roles")
	}
	now := time.Now().UTC()
	u := store.User{ID: newID(), Database: db, Username: *b.Username, Created: now, Updated: now}
	var apiErr *apiError
	err := s.opts.Store.Update(func(tx *store.Txn) error {
		if _, err := tx.User(db, u.Username); err == nil {
			apiErr = duplicate("database user", db+"/"+u.Username)
			return errAbort
		}
		if apiErr = b.apply(tx, &u); apiErr != nil {
			return errAbort
		}
		return tx.PutUser(u)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusCreated, s.userView(r, u))
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	db, name := r.PathValue("databaseName"), r.PathValue("username")
	var b userBody
	if e := decodeBody(w, r, &b); e != nil {
		return e
	}
	if b.Username != nil && *b.Username != name {
		return invalid("username", "database users cannot be renamed (the path names %q)", name)
	}
	if b.DatabaseName != nil && *b.DatabaseName != db {
		return invalid("databaseName", "a user cannot move to another database (the path names %q)", db)
	}
	var (
		u      store.User
		apiErr *apiError
	)
	err := s.opts.Store.Update(func(tx *store.Txn) (err error) {
		if u, err = tx.User(db, name); err != nil {
			apiErr = notFound("database user", db+"/"+name)
			return errAbort
		}
		if apiErr = b.apply(tx, &u); apiErr != nil {
			return errAbort
		}
		u.Updated = time.Now().UTC()
		return tx.PutUser(u)
	})
	if apiErr != nil {
		return apiErr
	}
	if err != nil {
		return internal(err)
	}
	writeJSON(w, http.StatusOK, s.userView(r, u))
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, _ *caller) *apiError {
	db, name := r.PathValue("databaseName"), r.PathValue("username")
	err := s.opts.Store.Update(func(tx *store.Txn) error { return tx.DeleteUser(db, name) })
	if store.IsNotFound(err) {
		return notFound("database user", db+"/"+name)
	}
	if err != nil {
		return internal(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
