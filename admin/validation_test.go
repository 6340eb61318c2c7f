package admin

import (
	"net/http"
	"strings"
	"testing"
)

// Bad requests each get a 4xx with an Atlas-style body whose detail names the field at fault.
func TestValidation(t *testing.T) {
	env := newEnv(t)
	env.must("POST", "/streams/default/connections", `{"name":"kafka1","type":"Kafka","bootstrapServers":"b:9092"}`)
	env.must("POST", "/customDBRoles/roles", `{"roleName":"base","actions":[{"action":"LIST_STREAM_PROCESSORS"}]}`)
	env.must("POST", "/customDBRoles/roles", `{"roleName":"child","inheritedRoles":[{"db":"admin","role":"base"}]}`)
	env.must("POST", "/databaseUsers", `{"databaseName":"admin","username":"holder","password":"password-123","roles":[{"roleName":"base","databaseName":"admin"}]}`)
	big := `{"name":"` + strings.Repeat("x", 1<<20) + `"}`
	user := func(extra string) string {
		return `{"databaseName":"admin","username":"v","password":"password-123","roles":[{"roleName":"atlasAdmin","databaseName":"admin"}]` + extra + `}`
	}
	cases := []struct {
		name, method, path, body string
		status                   int
		code, mentions           string
	}{
		{"workspace without name", "POST", "/streams", `{}`, 400, "MISSING_ATTRIBUTE", "name"},
		{"workspace name with spaces", "POST", "/streams", `{"name":"my ws"}`, 400, "INVALID_ATTRIBUTE", "name"},
		{"workspace name wrong type", "POST", "/streams", `{"name":5}`, 400, "INVALID_ATTRIBUTE", "name"},
		{"duplicate workspace", "POST", "/streams", `{"name":"default"}`, 409, "DUPLICATE_NAME", "default"},
		{"unknown workspace attribute", "POST", "/streams", `{"name":"a","colour":"red"}`, 400, "INVALID_ATTRIBUTE", "colour"},
		{"bad tier", "POST", "/streams", `{"name":"a","streamConfig":{"tier":"SP1000"}}`, 400, "INVALID_ATTRIBUTE", "streamConfig.tier"},
		{"tier above max", "POST", "/streams", `{"name":"a","streamConfig":{"tier":"SP50","maxTierSize":"SP10"}}`, 400, "INVALID_ATTRIBUTE", "streamConfig.tier"},
		{"bad cloud provider", "POST", "/streams", `{"name":"a","dataProcessRegion":{"cloudProvider":"MOON","region":"X"}}`, 400, "INVALID_ATTRIBUTE", "dataProcessRegion.cloudProvider"},
		{"bad hostname", "POST", "/streams", `{"name":"a","hostnames":["nohost"]}`, 400, "INVALID_ATTRIBUTE", "hostnames[0]"},
		{"processorStatus unsupported", "PATCH", "/streams/default", `{"processorStatus":{"status":"STARTED"}}`, 400, "INVALID_ATTRIBUTE", "processorStatus"},
		{"malformed JSON", "POST", "/streams", `{"name":`, 400, "INVALID_JSON", "JSON"},
		{"two JSON values", "POST", "/streams", `{"name":"a"}{"name":"b"}`, 400, "INVALID_JSON", "more than one"},
		{"array body", "POST", "/streams", `[]`, 400, "INVALID_JSON", "object"},
		{"oversized body", "POST", "/streams", big, 413, "BODY_TOO_LARGE", "bytes"},
		{"missing workspace", "GET", "/streams/nope", "", 404, "RESOURCE_NOT_FOUND", "nope"},
		{"connection without type", "POST", "/streams/default/connections", `{"name":"c"}`, 400, "MISSING_ATTRIBUTE", "type"},
		{"unknown connection type", "POST", "/streams/default/connections", `{"name":"c","type":"Carrier"}`, 400, "INVALID_ATTRIBUTE", "type"},
		{"unsupported connection type", "POST", "/streams/default/connections", `{"name":"c","type":"S3"}`, 400, "INVALID_ATTRIBUTE", "type"},
		{"bad connection name", "POST", "/streams/default/connections", `{"name":"a/b","type":"Sample"}`, 400, "INVALID_ATTRIBUTE", "name"},
		{"duplicate connection", "POST", "/streams/default/connections", `{"name":"kafka1","type":"Kafka","bootstrapServers":"b:9092"}`, 409, "DUPLICATE_NAME", "kafka1"},
		{"connection in missing workspace", "POST", "/streams/nope/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092"}`, 404, "RESOURCE_NOT_FOUND", "nope"},
		{"kafka without servers", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka"}`, 400, "MISSING_ATTRIBUTE", "bootstrapServers"},
		{"kafka bad servers", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:notaport"}`, 400, "INVALID_ATTRIBUTE", "bootstrapServers"},
		{"kafka bad mechanism", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","authentication":{"mechanism":"KERBEROS"},"security":{"protocol":"SASL_SSL"}}`, 400, "INVALID_ATTRIBUTE", "authentication.mechanism"},
		{"kafka SSL without a client certificate", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","security":{"protocol":"SSL"}}`, 400, "MISSING_ATTRIBUTE", "authentication.sslCertificate"},
		{"kafka certificate holding a key", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","security":{"protocol":"SSL"},"authentication":{"sslCertificate":"-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n","sslKey":"k"}}`, 400, "INVALID_ATTRIBUTE", "authentication.sslCertificate"},
		{"kafka SASL without password", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","authentication":{"mechanism":"PLAIN","username":"u"},"security":{"protocol":"SASL_SSL"}}`, 400, "MISSING_ATTRIBUTE", "authentication.password"},
		{"kafka config key not allowed", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","config":{"sasl.jaas.config":"x"}}`, 400, "INVALID_ATTRIBUTE", "config.sasl.jaas.config"},
		{"kafka with url", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","url":"https://x"}`, 400, "INVALID_ATTRIBUTE", "url"},
		{"cluster without role", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017"}`, 400, "MISSING_ATTRIBUTE", "dbRoleToExecute.role"},
		{"cluster credentials in URI", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://u:p@h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"}}`, 400, "INVALID_ATTRIBUTE", "connectionString"},
		{"cluster unknown custom role", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"ghost","type":"CUSTOM"}}`, 400, "INVALID_ATTRIBUTE", "dbRoleToExecute.role"},
		{"provisioning without credentials", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"},"provisionExecuteAsUser":true}`, 400, "INVALID_ATTRIBUTE", "provisionExecuteAsUser"},
		{"provisioning not a boolean", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"},"provisionExecuteAsUser":"yes"}`, 400, "INVALID_ATTRIBUTE", "provisionExecuteAsUser"},
		{"provisioning on kafka", "POST", "/streams/default/connections", `{"name":"c","type":"Kafka","bootstrapServers":"b:9092","provisionExecuteAsUser":true}`, 400, "INVALID_ATTRIBUTE", "provisionExecuteAsUser"},
		{"cluster bad mechanism", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"BUILT_IN"},"authentication":{"mechanism":"GSSAPI","username":"u","password":"p"}}`, 400, "INVALID_ATTRIBUTE", "authentication.mechanism"},
		{"rotate without provisioning", "POST", "/streams/default/connections/kafka1:rotateExecuteAsUserPassword", "", 400, "INVALID_ATTRIBUTE", "provisionExecuteAsUser"},
		{"rotate missing connection", "POST", "/streams/default/connections/ghost:rotateExecuteAsUserPassword", "", 404, "RESOURCE_NOT_FOUND", "ghost"},
		{"unknown connection action", "POST", "/streams/default/connections/kafka1:explode", "", 404, "RESOURCE_NOT_FOUND", "kafka1:explode"},
		{"cluster bad role type", "POST", "/streams/default/connections", `{"name":"c","type":"Cluster","clusterName":"c0","connectionString":"mongodb://h:27017","dbRoleToExecute":{"role":"atlasAdmin","type":"MAGIC"}}`, 400, "INVALID_ATTRIBUTE", "dbRoleToExecute.type"},
		{"sample with another name", "POST", "/streams/default/connections", `{"name":"weather","type":"Sample"}`, 400, "INVALID_ATTRIBUTE", "name"},
		{"https bad url", "POST", "/streams/default/connections", `{"name":"c","type":"Https","url":"ftp://x"}`, 400, "INVALID_ATTRIBUTE", "url"},
		{"change connection type", "PATCH", "/streams/default/connections/kafka1", `{"type":"Https"}`, 400, "INVALID_ATTRIBUTE", "type"},
		{"user without roles", "POST", "/databaseUsers", `{"databaseName":"admin","username":"v","password":"password-123"}`, 400, "MISSING_ATTRIBUTE", "roles"},
		{"user without password", "POST", "/databaseUsers", `{"databaseName":"admin","username":"v","roles":[{"roleName":"atlasAdmin","databaseName":"admin"}]}`, 400, "MISSING_ATTRIBUTE", "password"},
		{"user short password", "POST", "/databaseUsers", strings.Replace(user(""), "password-123", "short", 1), 400, "INVALID_ATTRIBUTE", "password"},
		{"user password SASLprep rejects", "POST", "/databaseUsers", strings.Replace(user(""), "password-123", `pass\u0007word-123`, 1), 400, "INVALID_ATTRIBUTE", "password"},
		{"user unknown role", "POST", "/databaseUsers", strings.Replace(user(""), "atlasAdmin", "root", 1), 400, "INVALID_ATTRIBUTE", "roles[0].roleName"},
		{"user bad database", "POST", "/databaseUsers", strings.Replace(user(""), `"databaseName":"admin","username"`, `"databaseName":"test","username"`, 1), 400, "INVALID_ATTRIBUTE", "databaseName"},
		{"scope naming a missing workspace", "POST", "/databaseUsers", user(`,"scopes":[{"name":"ghost","type":"STREAM"}]`), 400, "INVALID_ATTRIBUTE", "scopes[0].name"},
		{"scope of another type", "POST", "/databaseUsers", user(`,"scopes":[{"name":"default","type":"CLUSTER"}]`), 400, "INVALID_ATTRIBUTE", "scopes[0].type"},
		{"x509 user with password", "POST", "/databaseUsers", `{"databaseName":"$external","username":"CN=c,O=x","x509Type":"CUSTOMER","password":"password-123","roles":[{"roleName":"atlasAdmin","databaseName":"admin"}]}`, 400, "INVALID_ATTRIBUTE", "password"},
		{"x509 user not a subject", "POST", "/databaseUsers", `{"databaseName":"$external","username":"client","x509Type":"CUSTOMER","roles":[{"roleName":"atlasAdmin","databaseName":"admin"}]}`, 400, "INVALID_ATTRIBUTE", "username"},
		{"duplicate user", "POST", "/databaseUsers", strings.Replace(user(""), `"username":"v"`, `"username":"admin"`, 1), 409, "DUPLICATE_NAME", "admin"},
		{"rename user", "PATCH", "/databaseUsers/admin/admin", `{"username":"root"}`, 400, "INVALID_ATTRIBUTE", "username"},
		{"role unknown action", "POST", "/customDBRoles/roles", `{"roleName":"x","actions":[{"action":"LAUNCH_ROCKETS"}]}`, 400, "INVALID_ATTRIBUTE", "actions[0].action"},
		{"role without privileges", "POST", "/customDBRoles/roles", `{"roleName":"x"}`, 400, "INVALID_ATTRIBUTE", "actions"},
		{"role named like a built-in", "POST", "/customDBRoles/roles", `{"roleName":"atlasAdmin","actions":[{"action":"FIND","resources":[{"db":"a","collection":"b"}]}]}`, 400, "INVALID_ATTRIBUTE", "roleName"},
		{"role inheriting unknown role", "POST", "/customDBRoles/roles", `{"roleName":"x","inheritedRoles":[{"db":"admin","role":"ghost"}]}`, 400, "INVALID_ATTRIBUTE", "inheritedRoles[0].role"},
		{"role inheritance cycle", "PATCH", "/customDBRoles/roles/base", `{"inheritedRoles":[{"db":"admin","role":"child"}]}`, 400, "INVALID_ATTRIBUTE", "inheritedRoles[0].role"},
		{"delete a role in use", "DELETE", "/customDBRoles/roles/base", "", 409, "CONFLICT", "holder"},
		{"key without roles", "POST", "/apiKeys", `{"desc":"x"}`, 400, "MISSING_ATTRIBUTE", "roles"},
		{"key unknown role", "POST", "/apiKeys", `{"desc":"x","roles":["GROUP_KING"]}`, 400, "INVALID_ATTRIBUTE", "roles[0]"},
		{"key with a chosen private key", "POST", "/apiKeys", `{"desc":"x","roles":["GROUP_OWNER"],"privateKey":"mine"}`, 400, "INVALID_ATTRIBUTE", "privateKey"},
		{"bad page size", "GET", "/streams?itemsPerPage=501", "", 400, "INVALID_QUERY_PARAMETER", "itemsPerPage"},
		{"bad page number", "GET", "/databaseUsers?pageNum=0", "", 400, "INVALID_QUERY_PARAMETER", "pageNum"},
		{"unknown endpoint", "GET", "/clusters", "", 404, "RESOURCE_NOT_FOUND", "/clusters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, out := env.do("owner", c.method, c.path, c.body)
			if got != c.status || out["errorCode"] != c.code {
				t.Fatalf("status %d %v, want %d %s", got, out, c.status, c.code)
			}
			detail, _ := out["detail"].(string)
			if !strings.Contains(detail, c.mentions) || out["reason"] != http.StatusText(c.status) {
				t.Errorf("detail %q does not name %q, or reason %v is wrong", detail, c.mentions, out["reason"])
			}
		})
	}
	if len(cases) < 30 {
		t.Fatalf("only %d cases", len(cases))
	}
}

// The last owner key cannot lock the project out.
func TestLastOwnerKey(t *testing.T) {
	env := newEnv(t)
	var ownerID string
	_, list := env.do("owner", "GET", "/apiKeys", "")
	for _, k := range list["results"].([]any) {
		km := k.(map[string]any)
		for _, r := range km["roles"].([]any) {
			if r.(map[string]any)["roleName"] == "GROUP_OWNER" && km["desc"] != "test GROUP_OWNER" {
				ownerID = km["id"].(string)
			}
		}
	}
	// Two owner keys exist (first start's and the test's); removing one is fine, the last is not.
	if got, out := env.do("owner", "DELETE", "/apiKeys/"+ownerID, ""); got != 204 {
		t.Fatalf("deleting one of two owner keys: %d %v", got, out)
	}
	_, list = env.do("GROUP_OWNER", "GET", "/apiKeys", "")
	for _, k := range list["results"].([]any) {
		km := k.(map[string]any)
		if km["desc"] == "test GROUP_OWNER" {
			if got, out := env.do("GROUP_OWNER", "DELETE", "/apiKeys/"+km["id"].(string), ""); got != 409 {
				t.Errorf("deleting the last owner key: %d %v", got, out)
			}
			if got, out := env.do("GROUP_OWNER", "PATCH", "/apiKeys/"+km["id"].(string), `{"roles":["GROUP_READ_ONLY"]}`); got != 409 {
				t.Errorf("demoting the last owner key: %d %v", got, out)
			}
		}
	}
}

// Lists paginate with itemsPerPage and pageNum and report totalCount.
func TestPagination(t *testing.T) {
	env := newEnv(t)
	for i := range 5 {
		env.must("POST", "/streams/default/connections", `{"name":"h`+string(rune('a'+i))+`","type":"Https","url":"https://e.com"}`)
	}
	seen := map[string]bool{}
	for page := 1; page <= 3; page++ {
		_, out := env.do("GROUP_READ_ONLY", "GET", "/streams/default/connections?itemsPerPage=2&pageNum="+string(rune('0'+page)), "")
		res := out["results"].([]any)
		want := 2
		if page == 3 {
			want = 2 // 6 connections: the sample and five Https
		}
		if len(res) != want || out["totalCount"] != float64(6) {
			t.Fatalf("page %d: %d results, totalCount %v", page, len(res), out["totalCount"])
		}
		for _, r := range res {
			seen[r.(map[string]any)["name"].(string)] = true
		}
	}
	if len(seen) != 6 {
		t.Errorf("pages covered %d distinct connections, want 6", len(seen))
	}
	_, out := env.do("owner", "GET", "/streams/default/connections?pageNum=9", "")
	if len(out["results"].([]any)) != 0 {
		t.Errorf("a page past the end is not empty: %v", out)
	}
	_, out = env.do("owner", "GET", "/streams/default/connections?includeCount=false", "")
	if _, ok := out["totalCount"]; ok {
		t.Errorf("includeCount=false still counted")
	}
}
