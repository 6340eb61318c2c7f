package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
)

// atlasSchemas are the Atlas Admin API v2 reply schemas spid serves, field by field. The
// streams ones are transcribed from the Atlas OpenAPI description (the project's spec file
// admin-api-streams.txt, "SCHEMAS"); the database user, custom role, API key and error ones from
// the same API's CloudDatabaseUser, UserCustomDBRole, ApiKeyUserDetails and ApiError. A type is
// "string", "bool", "int", "any", "map" (an object of string values), "[]T" or a schema name.
var atlasSchemas = map[string]map[string]string{
	"PaginatedApiStreamsTenant":     {"links": "[]Link", "results": "[]StreamsTenant", "totalCount": "int"},
	"PaginatedApiStreamsConnection": {"links": "[]Link", "results": "[]StreamsConnection", "totalCount": "int"},
	"PaginatedApiAtlasDatabaseUser": {"links": "[]Link", "results": "[]CloudDatabaseUser", "totalCount": "int"},
	"PaginatedApiApiUser":           {"links": "[]Link", "results": "[]ApiKeyUserDetails", "totalCount": "int"},
	"StreamsTenant": {"_id": "string", "connections": "[]StreamsConnection", "dataProcessRegion": "StreamsDataProcessRegion",
		"failoverRegions": "[]StreamsDataProcessRegion", "groupId": "string", "hostnames": "[]string", "links": "[]Link",
		"name": "string", "sampleConnections": "StreamsSampleConnections", "streamConfig": "StreamConfig"},
	"StreamsConnection": {"id": "string", "links": "[]Link", "name": "string", "region": "string", "state": "string",
		"type": "string", "clusterGroupId": "string", "clusterName": "string", "dbRoleToExecute": "DBRoleToExecute",
		"authentication": "StreamsKafkaAuthentication", "bootstrapServers": "string", "config": "map",
		"networking": "StreamsKafkaNetworking", "security": "StreamsKafkaSecurity", "headers": "map", "url": "string"},
	"StreamsDataProcessRegion": {"cloudProvider": "string", "links": "[]Link", "region": "string"},
	"StreamsSampleConnections": {"links": "[]Link", "solar": "bool"},
	"StreamConfig":             {"links": "[]Link", "maxTierSize": "string", "tier": "string"},
	"DBRoleToExecute":          {"links": "[]Link", "role": "string", "type": "string"},
	"StreamsKafkaAuthentication": {"clientId": "string", "clientSecret": "string", "links": "[]Link", "mechanism": "string",
		"method": "string", "password": "string", "saslOauthbearerExtensions": "string", "scope": "string",
		"sslCertificate": "string", "sslKey": "string", "sslKeyPassword": "string", "tokenEndpointUrl": "string",
		"username": "string"},
	"StreamsKafkaNetworking":       {"access": "StreamsKafkaNetworkingAccess", "links": "[]Link"},
	"StreamsKafkaNetworkingAccess": {"connectionId": "string", "links": "[]Link", "name": "string", "tgwRouteId": "string", "type": "string"},
	"StreamsKafkaSecurity":         {"brokerPublicCertificate": "string", "links": "[]Link", "protocol": "string"},
	"Link":                         {"href": "string", "rel": "string"},
	"CloudDatabaseUser": {"awsIAMType": "string", "databaseName": "string", "deleteAfterDate": "string", "description": "string",
		"groupId": "string", "labels": "[]any", "ldapAuthType": "string", "links": "[]Link", "oidcAuthType": "string",
		"password": "string", "roles": "[]DatabaseUserRole", "scopes": "[]UserScope", "username": "string", "x509Type": "string"},
	"DatabaseUserRole":                   {"collectionName": "string", "databaseName": "string", "roleName": "string"},
	"UserScope":                          {"name": "string", "type": "string"},
	"UserCustomDBRole":                   {"actions": "[]DatabasePrivilegeAction", "inheritedRoles": "[]DatabaseInheritedRole", "roleName": "string"},
	"DatabasePrivilegeAction":            {"action": "string", "resources": "[]DatabasePermittedNamespaceResource"},
	"DatabasePermittedNamespaceResource": {"cluster": "bool", "collection": "string", "db": "string"},
	"DatabaseInheritedRole":              {"db": "string", "role": "string"},
	"ApiKeyUserDetails": {"desc": "string", "id": "string", "links": "[]Link", "privateKey": "string", "publicKey": "string",
		"roles": "[]CloudAccessRoleAssignment"},
	"CloudAccessRoleAssignment": {"groupId": "string", "orgId": "string", "roleName": "string"},
	"ApiError":                  {"badRequestDetail": "any", "detail": "string", "error": "int", "errorCode": "string", "parameters": "[]any", "reason": "string"},
}

// spiExtensions are the fields spid adds to Atlas's schemas, each documented in
// docs/admin-api.md: a Cluster connection reaches a self-hosted deployment by connection string
// (Atlas names a cluster of the project instead).
var spiExtensions = map[string]map[string]string{
	"StreamsConnection": {"connectionString": "string", "provisionExecuteAsUser": "bool", "executeAsUser": "any"},
}

// strictDecode decodes JSON keeping numbers exact; map keys keep their case, so a Go field name
// such as "RoleName" cannot pass for "roleName" as it would with encoding/json into a struct.
func strictDecode(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, b)
	}
	if dec.More() {
		t.Fatalf("reply holds more than one JSON value:\n%s", b)
	}
	return v
}

// checkSchema reports every difference between v and the type typ: unknown fields, wrong
// types, at path.
func checkSchema(v any, typ, path string) []string {
	if v == nil {
		return []string{path + ": null where Atlas has " + typ}
	}
	bad := func(want string) []string {
		return []string{fmt.Sprintf("%s: %T where Atlas has %s", path, v, want)}
	}
	switch {
	case typ == "any":
		return nil
	case typ == "string":
		if _, ok := v.(string); !ok {
			return bad(typ)
		}
	case typ == "bool":
		if _, ok := v.(bool); !ok {
			return bad(typ)
		}
	case typ == "int":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			return bad(typ)
		}
	case typ == "map":
		m, ok := v.(map[string]any)
		if !ok {
			return bad("an object")
		}
		var out []string
		for k, e := range m {
			if _, ok := e.(string); !ok {
				out = append(out, fmt.Sprintf("%s.%s: %T where Atlas has string", path, k, e))
			}
		}
		return out
	case strings.HasPrefix(typ, "[]"):
		arr, ok := v.([]any)
		if !ok {
			return bad(typ)
		}
		var out []string
		for i, e := range arr {
			out = append(out, checkSchema(e, typ[2:], fmt.Sprintf("%s[%d]", path, i))...)
		}
		return out
	default:
		fields, ok := atlasSchemas[typ]
		if !ok {
			return []string{path + ": the test has no schema " + typ}
		}
		m, ok := v.(map[string]any)
		if !ok {
			return bad(typ)
		}
		var out []string
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			ft, ok := fields[k]
			if !ok {
				ft, ok = spiExtensions[typ][k]
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s.%s: %s has no such field", path, k, typ))
				continue
			}
			out = append(out, checkSchema(m[k], ft, path+"."+k)...)
		}
		return out
	}
	return nil
}

// Every endpoint's reply matches Atlas's schema field for field, read by a strict client; and
// every GET reply of a resource is accepted unchanged as the PATCH body of that resource.
func TestAtlasSchemasAndRoundTrip(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	check := func(method, path string, body any, wantStatus int, schema string) any {
		t.Helper()
		status, raw := a.call(method, path, body)
		if status != wantStatus {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, status, wantStatus, raw)
		}
		if schema == "" {
			if len(bytes.TrimSpace(raw)) != 0 {
				t.Errorf("%s %s: a body where Atlas sends none: %s", method, path, raw)
			}
			return nil
		}
		v := strictDecode(t, raw)
		for _, p := range checkSchema(v, schema, method+" "+path) {
			t.Error(p)
		}
		return v
	}
	raw := func(v any) json.RawMessage {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	// Create one of everything, checking each reply.
	check("POST", "/streams", map[string]any{"name": "w1", "dataProcessRegion": map[string]any{"cloudProvider": "AWS", "region": "DUBLIN_IRL"}}, 200, "StreamsTenant")
	check("POST", "/streams:withSampleConnections", map[string]any{"name": "w2"}, 200, "StreamsTenant")
	check("POST", "/streams/w1/connections", map[string]any{"name": "kafka", "type": "Kafka", "bootstrapServers": "k1:9092,k2:9092",
		"authentication": map[string]any{"mechanism": "SCRAM-256", "username": "ku", "password": secret(t, "kpw")},
		"security":       map[string]any{"protocol": "SASL_SSL"}, "config": map[string]any{"auto.offset.reset": "earliest"}}, 200, "StreamsConnection")
	check("POST", "/streams/w1/connections", map[string]any{"name": "cluster", "type": "Cluster", "clusterName": "c0",
		"connectionString": "mongodb://db:27017/", "dbRoleToExecute": map[string]any{"role": "readAnyDatabase", "type": "BUILT_IN"},
		"authentication": map[string]any{"username": "cu", "password": secret(t, "cpw")}}, 200, "StreamsConnection")
	check("POST", "/streams/w1/connections", map[string]any{"name": "hook", "type": "Https", "url": "https://hooks.example/in",
		"headers": map[string]any{"Authorization": "Bearer " + secret(t, "tok")}}, 200, "StreamsConnection")
	check("POST", "/customDBRoles/roles", map[string]any{"roleName": "spReader",
		"actions": []any{
			map[string]any{"action": "LIST_STREAM_PROCESSORS", "resources": []any{map[string]any{"cluster": true}}},
			map[string]any{"action": "FIND", "resources": []any{map[string]any{"db": "sales", "collection": "orders"}}},
		},
		"inheritedRoles": []any{map[string]any{"db": "admin", "role": "readAnyDatabase"}}}, 200, "UserCustomDBRole")
	check("POST", "/databaseUsers", map[string]any{"databaseName": "admin", "username": "alice", "password": secret(t, "apw"),
		"description": "analyst", "roles": []any{map[string]any{"roleName": "spReader", "databaseName": "admin"}},
		"scopes": []any{map[string]any{"name": "w1", "type": "STREAM"}}}, 201, "CloudDatabaseUser")
	check("POST", "/databaseUsers", map[string]any{"databaseName": "$external", "username": "CN=client,O=Example", "x509Type": "CUSTOMER",
		"roles": []any{map[string]any{"roleName": "readAnyDatabase", "databaseName": "admin"}}}, 201, "CloudDatabaseUser")
	key := check("POST", "/apiKeys", map[string]any{"desc": "ci", "roles": []any{"GROUP_READ_ONLY"}}, 200, "ApiKeyUserDetails").(map[string]any)
	keyID := key["id"].(string)

	// Lists.
	check("GET", "/streams", nil, 200, "PaginatedApiStreamsTenant")
	check("GET", "/streams?includeCount=false&itemsPerPage=1", nil, 200, "PaginatedApiStreamsTenant")
	check("GET", "/streams/w1/connections", nil, 200, "PaginatedApiStreamsConnection")
	check("GET", "/databaseUsers", nil, 200, "PaginatedApiAtlasDatabaseUser")
	check("GET", "/apiKeys", nil, 200, "PaginatedApiApiUser")
	check("GET", "/customDBRoles/roles", nil, 200, "[]UserCustomDBRole")
	// Errors.
	check("GET", "/streams/nope", nil, 404, "ApiError")
	check("POST", "/streams", map[string]any{"name": "bad name"}, 400, "ApiError")
	check("GET", "/streams?pageNum=0", nil, 400, "ApiError")

	// Each item: GET, then PATCH with exactly that reply; the PATCH reply is the same resource.
	items := []struct{ path, schema string }{
		{"/streams/w1", "StreamsTenant"},
		{"/streams/w2?includeConnections=true", "StreamsTenant"},
		{"/streams/w1/connections/kafka", "StreamsConnection"},
		{"/streams/w1/connections/cluster", "StreamsConnection"},
		{"/streams/w1/connections/hook", "StreamsConnection"},
		{"/streams/w2/connections/sample_stream_solar", "StreamsConnection"},
		{"/databaseUsers/admin/alice", "CloudDatabaseUser"},
		{"/databaseUsers/%24external/" + url.PathEscape("CN=client,O=Example"), "CloudDatabaseUser"},
		{"/customDBRoles/roles/spReader", "UserCustomDBRole"},
		{"/apiKeys/" + keyID, "ApiKeyUserDetails"},
	}
	for _, it := range items {
		got := check("GET", it.path, nil, 200, it.schema).(map[string]any)
		patchPath, _, _ := strings.Cut(it.path, "?")
		after := check("PATCH", patchPath, raw(got), 200, it.schema).(map[string]any)
		delete(got, "connections") // asked for with includeConnections; PATCH replies leave it out
		if !reflect.DeepEqual(got, after) {
			t.Errorf("PATCH %s with its GET reply changed it:\nGET   %s\nPATCH %s", patchPath, raw(got), raw(after))
		}
	}
	// The user reply carries description; the workspace reply sampleConnections.
	u := check("GET", "/databaseUsers/admin/alice", nil, 200, "CloudDatabaseUser").(map[string]any)
	if u["description"] != "analyst" || !slices.ContainsFunc(u["roles"].([]any), func(r any) bool { return r.(map[string]any)["roleName"] == "spReader" }) {
		t.Errorf("user reply: %v", u)
	}
	w := check("GET", "/streams/w2", nil, 200, "StreamsTenant").(map[string]any)
	if w["sampleConnections"].(map[string]any)["solar"] != true {
		t.Errorf("w2 has the solar sample, but sampleConnections says %v", w["sampleConnections"])
	}
	w = check("GET", "/streams/w1", nil, 200, "StreamsTenant").(map[string]any)
	if w["sampleConnections"].(map[string]any)["solar"] != false {
		t.Errorf("w1 has no solar sample, but sampleConnections says %v", w["sampleConnections"])
	}
}
