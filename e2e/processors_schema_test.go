package e2e

import (
	"encoding/json"
	"reflect"
	"testing"
)

// The processor schemas of the Atlas Admin API (admin-api-streams.txt, "SCHEMAS"), added to
// atlasSchemas so that checkSchema knows them. stats is an object whose fields Atlas leaves open.
func init() {
	for name, fields := range map[string]map[string]string{
		"StreamsProcessor": {"_id": "string", "failoverEnabled": "bool", "links": "[]Link", "name": "string",
			"options": "StreamsOptions", "pipeline": "[]any", "tier": "string"},
		"StreamsProcessorWithStats": {"_id": "string", "eligibleForFailover": "bool", "failoverEnabled": "bool", "links": "[]Link",
			"name": "string", "options": "StreamsOptions", "pipeline": "[]any", "state": "string", "stats": "any", "tier": "string"},
		"StreamsOptions": {"dlq": "StreamsDLQ", "links": "[]Link"},
		"StreamsDLQ":     {"coll": "string", "connectionName": "string", "db": "string", "links": "[]Link"},
		"PaginatedApiStreamsStreamProcessorWithStats": {"links": "[]Link", "results": "[]StreamsProcessorWithStats", "totalCount": "int"},
		// The reply of :start, :startWith and :stop, for which Atlas gives no schema: {}.
		"EmptyObject": {},
	} {
		atlasSchemas[name] = fields
	}
	// docs/admin-api.md: a FAILED processor says why.
	spiExtensions["StreamsProcessorWithStats"] = map[string]string{"errorMsg": "string", "errorCode": "int", "errorRetryable": "bool"}
}

// Every processor endpoint's reply matches Atlas's schema field for field, read by a strict
// client, and a processor's GET reply is accepted unchanged as its PATCH body.
func TestProcessorAtlasSchemas(t *testing.T) {
	s := startSpid(t)
	a := newAPI(t, s.Creds(t))
	check := func(method, path string, body any, wantStatus int, schema string) any {
		t.Helper()
		status, raw := a.call(method, path, body)
		if status != wantStatus {
			t.Fatalf("%s %s: %d, want %d: %s", method, path, status, wantStatus, raw)
		}
		if schema == "" {
			if len(raw) != 0 {
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
	const p = "/streams/default/processor"
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "cluster", "type": "Cluster", "clusterName": "c0",
		"connectionString": "mongodb://db:27017/", "dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	pipeline := json.RawMessage(`[{"$source":{"connectionName":"sample_stream_solar","config":{"rate":50}}},` +
		`{"$addFields":{"seen":{"$dateFromString":{"dateString":"2024-03-19T22:16:49.523Z"}},"big":{"$numberLong":"9007199254740993"}}},` +
		`{"$emit":{"connectionName":"__testLog"}}]`)
	check("POST", p, map[string]any{"name": "withDLQ", "pipeline": pipeline, "tier": "SP5",
		"options": map[string]any{"dlq": map[string]any{"connectionName": "cluster", "db": "errors", "coll": "dlq"}}}, 200, "StreamsProcessor")
	check("POST", p, map[string]any{"name": "plain", "pipeline": pipeline}, 200, "StreamsProcessor")
	check("GET", "/streams/default/processors", nil, 200, "PaginatedApiStreamsStreamProcessorWithStats")
	check("GET", "/streams/default/processors?includeCount=false&itemsPerPage=1", nil, 200, "PaginatedApiStreamsStreamProcessorWithStats")

	// GET, then PATCH with exactly that reply: the same processor comes back.
	for _, name := range []string{"withDLQ", "plain"} {
		got := check("GET", p+"/"+name, nil, 200, "StreamsProcessorWithStats")
		b, err := json.Marshal(got)
		if err != nil {
			t.Fatal(err)
		}
		after := check("PATCH", p+"/"+name, json.RawMessage(b), 200, "StreamsProcessorWithStats")
		if !reflect.DeepEqual(got, after) {
			t.Errorf("PATCH %s with its GET reply changed it:\nGET   %s\nPATCH %v", name, b, after)
		}
	}

	check("POST", p+"/plain:start", nil, 200, "EmptyObject")
	check("GET", p+"/plain", nil, 200, "StreamsProcessorWithStats")
	check("POST", p+"/plain:stop", nil, 200, "EmptyObject")
	check("POST", p+"/plain:startWith", map[string]any{"resumeFromCheckpoint": false, "tier": "SP2"}, 200, "EmptyObject")
	check("POST", p+"/plain:stop", nil, 200, "EmptyObject")
	check("DELETE", p+"/plain", nil, 204, "")
	// Errors.
	check("GET", p+"/plain", nil, 404, "ApiError")
	check("POST", p, map[string]any{"name": "withDLQ", "pipeline": pipeline}, 409, "ApiError")
	check("POST", p+"/withDLQ:stop", nil, 409, "ApiError")
	check("POST", p, map[string]any{"name": "x", "pipeline": []any{}}, 400, "ApiError")
}
