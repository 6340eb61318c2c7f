package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A processor as spid replies (StreamsProcessorWithStats), pretty-printed as spid sends it.
const (
	procGet = `{
  "_id": "65f9aaaabbbbccccddddeeee",
  "name": "solar",
  "pipeline": [
    {"$source": {"connectionName": "sample_stream_solar"}},
    {"$emit": {"connectionName": "__testLog"}}
  ],
  "options": {"dlq": {"connectionName": "db", "db": "errs", "coll": "dead"}},
  "tier": "SP10",
  "failoverEnabled": false,
  "state": "STARTED",
  "stats": {"name": "solar", "processorId": "65f9aaaabbbbccccddddeeee", "status": "running", "scaleFactor": 1,
    "inputMessageCount": 926, "inputMessageSize": 410310, "outputMessageCount": 383, "outputMessageSize": 425513,
    "dlqMessageCount": 2, "dlqMessageSize": 300, "stateSize": 4504, "watermark": "2024-03-19T22:16:49.523Z"},
  "eligibleForFailover": false,
  "links": []
}`
	procFailed = `{"_id":"x","name":"broken","pipeline":[],"state":"FAILED","errorMsg":"out of memory","errorCode":418,"tier":"SP2",
  "stats":{"name":"broken","processorId":"x","status":"error","scaleFactor":1}}`
	procList = `{"results":[` + procGet + `,{"name":"idle","state":"CREATED","tier":"SP5","stats":{"inputMessageCount":0,"outputMessageCount":0,"dlqMessageCount":0}}],"totalCount":5,"links":[]}`
	pipe     = `[{"$source":{"connectionName":"sample_stream_solar"}},{"$sort":{"z":1,"a":-1}},{"$emit":{"connectionName":"__testLog"}}]`
)

func TestProcessors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		files    map[string]string
		stdin    string
		status   int
		reply    string
		code     int
		contains []string
		errHas   []string
		method   string // "" means no request may reach the server
		uri      string
		body     string // JSON, compared structurally; exact if exactBody
		exact    bool
		noBody   bool
	}{
		{
			name: "list as a table", args: []string{"processors", "list", "--workspace", "dev", "--limit", "2"}, status: 200, reply: procList,
			method: "GET", uri: root + "/streams/dev/processors?itemsPerPage=2",
			contains: []string{"NAME   STATE    TIER  INPUT  OUTPUT  DLQ\n", "solar  STARTED  SP10  926    383     2\n", "idle   CREATED  SP5   0      0       0\n",
				"2 of 5 processors shown"},
		},
		{
			name: "proc alias, default workspace, empty list", args: []string{"proc", "list"}, status: 200, reply: `{"results":[],"totalCount":0}`,
			method: "GET", uri: root + "/streams/default/processors", contains: []string{"No processors.\n"},
		},
		{
			name: "get as key/value lines", args: []string{"processors", "get", "solar"}, status: 200, reply: procGet,
			method: "GET", uri: root + "/streams/default/processor/solar",
			contains: []string{"Name:          solar\n", "State:         STARTED\n", "Tier:          SP10\n", "DLQ:           db.errs.dead\n",
				"Input:         926 messages, 410310 bytes\n", "Output:        383 messages, 425513 bytes\n", "Dead letters:  2 messages, 300 bytes\n",
				"State size:    4504 bytes\n", "Watermark:     2024-03-19T22:16:49.523Z\n",
				`Pipeline:      [{"$source":{"connectionName":"sample_stream_solar"}},{"$emit":{"connectionName":"__testLog"}}]` + "\n"},
		},
		{
			name: "get a failed processor shows why", args: []string{"proc", "get", "broken"}, status: 200, reply: procFailed,
			method: "GET", uri: root + "/streams/default/processor/broken", contains: []string{"State:         FAILED\n", "Error:         out of memory (code 418)\n"},
		},
		{
			name: "get --json prints the reply", args: []string{"proc", "get", "solar", "--json"}, status: 200, reply: `{"name":"solar","state":"STOPPED"}`,
			method: "GET", uri: root + "/streams/default/processor/solar", contains: []string{"{\n  \"name\": \"solar\",\n  \"state\": \"STOPPED\"\n}\n"},
		},
		{
			name:   "create with an inline pipeline, dlq and tier; stage fields keep their order",
			args:   []string{"processors", "create", "--workspace", "dev", "--name", "solar", "--pipeline", pipe, "--dlq", "db.errs.dead.letters", "--tier", "sp30"},
			status: 200, reply: `{"_id":"1","name":"solar","pipeline":[],"tier":"SP30"}`,
			method: "POST", uri: root + "/streams/dev/processor",
			body:  `{"name":"solar","options":{"dlq":{"coll":"dead.letters","connectionName":"db","db":"errs"}},"pipeline":` + pipe + `,"tier":"SP30"}`,
			exact: true, contains: []string{"Name:      solar\n", "Tier:      SP30\n"},
		},
		{
			name: "create with the pipeline from a file", args: []string{"proc", "create", "--name", "p", "--file", "$DIR/p.json"},
			files:  map[string]string{"p.json": "[\n  {\"$source\": {\"documents\": [{\"n\": {\"$numberLong\": \"9007199254740993\"}}]}},\n  {\"$emit\": {\"connectionName\": \"__testLog\"}}\n]\n"},
			status: 200, reply: `{"name":"p"}`, method: "POST", uri: root + "/streams/default/processor",
			body:  `{"name":"p","pipeline":[{"$source":{"documents":[{"n":{"$numberLong":"9007199254740993"}}]}},{"$emit":{"connectionName":"__testLog"}}]}`,
			exact: true,
		},
		{
			name: "create from a whole processor object on stdin, flags over it", args: []string{"proc", "create", "--file", "-", "--tier", "SP5"},
			stdin:  `{"name":"p","pipeline":` + pipe + `,"options":{"dlq":{"connectionName":"db","db":"a","coll":"b"}}}`,
			status: 200, reply: `{"name":"p"}`, method: "POST", uri: root + "/streams/default/processor",
			body: `{"name":"p","pipeline":` + pipe + `,"options":{"dlq":{"connectionName":"db","db":"a","coll":"b"}},"tier":"SP5"}`,
		},
		{
			name: "start", args: []string{"processors", "start", "solar"}, status: 200, reply: `{}`,
			method: "POST", uri: root + "/streams/default/processor/solar:start", noBody: true, contains: []string{`Started processor "solar".`},
		},
		{
			name: "start afresh at a tier", args: []string{"proc", "start", "solar", "--no-resume", "--tier", "SP50", "--workspace", "w"}, status: 200, reply: `{}`,
			method: "POST", uri: root + "/streams/w/processor/solar:startWith", body: `{"resumeFromCheckpoint":false,"tier":"SP50"}`,
			contains: []string{`Started processor "solar".`},
		},
		{
			name: "stop", args: []string{"proc", "stop", "solar"}, status: 200, reply: `{}`,
			method: "POST", uri: root + "/streams/default/processor/solar:stop", noBody: true, contains: []string{`Stopped processor "solar".`},
		},
		{
			name: "modify: rename, new pipeline, no checkpoint", args: []string{"proc", "modify", "solar", "--name", "solar2", "--pipeline", pipe, "--no-resume"},
			status: 200, reply: procGet, method: "PATCH", uri: root + "/streams/default/processor/solar",
			body:     `{"name":"solar2","pipeline":` + pipe + `,"options":{"resumeFromCheckpoint":false}}`,
			contains: []string{"Name:          solar\n"},
		},
		{
			name: "modify removes the dlq", args: []string{"proc", "modify", "solar", "--no-dlq"}, status: 200, reply: procGet,
			method: "PATCH", uri: root + "/streams/default/processor/solar", body: `{"options":{"dlq":{}}}`,
		},
		{
			name: "update is modify", args: []string{"proc", "update", "solar", "--tier", "SP5"}, status: 200, reply: procGet,
			method: "PATCH", uri: root + "/streams/default/processor/solar", body: `{"tier":"SP5"}`,
		},
		{
			name: "delete", args: []string{"proc", "delete", "solar"}, status: 204,
			method: "DELETE", uri: root + "/streams/default/processor/solar", contains: []string{`Deleted processor "solar".`},
		},
		{
			name: "an error reply: code and detail, exit 1", args: []string{"proc", "start", "solar"}, status: 409,
			reply:  `{"detail":"Stream processor solar is already started; stop it first.","error":409,"errorCode":"CONFLICT","parameters":["solar"],"reason":"Conflict"}`,
			method: "POST", uri: root + "/streams/default/processor/solar:start", code: 1,
			errHas: []string{"409 CONFLICT: Stream processor solar is already started"},
		},
		{name: "unknown verb", args: []string{"proc", "pause", "x"}, code: 2, errHas: []string{`unknown verb "pause" for processors: one of list, get, create, start, stop, modify, update, delete`}},
		{name: "start is only for processors", args: []string{"ws", "start", "x"}, code: 2, errHas: []string{`unknown verb "start" for workspaces`}},
		{name: "create without a name", args: []string{"proc", "create", "--pipeline", pipe}, code: 2, errHas: []string{"needs --name"}},
		{name: "create without a pipeline", args: []string{"proc", "create", "--name", "p"}, code: 2, errHas: []string{"needs a pipeline"}},
		{name: "pipeline not JSON", args: []string{"proc", "create", "--name", "p", "--pipeline", "[{"}, code: 2, errHas: []string{"--pipeline: the pipeline is not valid JSON"}},
		{name: "pipeline not an array", args: []string{"proc", "create", "--name", "p", "--pipeline", `{"$source":{}}`}, code: 2, errHas: []string{"must be a JSON array of stages"}},
		{name: "bad dlq", args: []string{"proc", "create", "--name", "p", "--pipeline", pipe, "--dlq", "db.coll"}, code: 2, errHas: []string{`--dlq "db.coll": want CONNECTION.DB.COLLECTION`}},
		{name: "dlq and no-dlq", args: []string{"proc", "modify", "p", "--dlq", "a.b.c", "--no-dlq"}, code: 2, errHas: []string{"--dlq or --no-dlq"}},
		{name: "no-dlq on create", args: []string{"proc", "create", "--name", "p", "--no-dlq"}, code: 2, errHas: []string{"--no-dlq applies to processors modify and update, not create"}},
		{name: "no-resume on create", args: []string{"proc", "create", "--name", "p", "--no-resume"}, code: 2, errHas: []string{"--no-resume applies to processors modify and update and start, not create"}},
		{name: "pipeline on start", args: []string{"proc", "start", "p", "--pipeline", pipe}, code: 2, errHas: []string{"--pipeline applies to"}},
		{name: "file on stop", args: []string{"proc", "stop", "p", "--file", "x"}, code: 2, errHas: []string{"--file applies to"}},
		{name: "start without a name", args: []string{"proc", "start"}, code: 2, errHas: []string{"want one argument, the processor name"}},
		{name: "modify with nothing", args: []string{"proc", "modify", "p"}, code: 2, errHas: []string{"processors update needs a body"}},
		{name: "file with two values", args: []string{"proc", "create", "--name", "p", "--file", "$DIR/two.json"}, files: map[string]string{"two.json": `{"name":"p"} {}`},
			code: 1, errHas: []string{"found more after it"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newFakeSpid(t, tt.status, tt.reply)
			dir := t.TempDir()
			for name, content := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			env := map[string]string{"HOME": dir, "SPI_ADMIN_URL": srv.URL, "SPI_GROUP_ID": group, "SPI_PUBLIC_KEY": pubKey, "SPI_PRIVATE_KEY": privKey}
			args := make([]string, len(tt.args))
			for i, a := range tt.args {
				args[i] = strings.ReplaceAll(a, "$DIR", dir)
			}
			var stdout, stderr strings.Builder
			code := cli{env: envOf(env), stdin: strings.NewReader(tt.stdin), stdout: &stdout, stderr: &stderr}.run(args)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			for _, s := range tt.contains {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			for _, s := range tt.errHas {
				if !strings.Contains(stderr.String(), s) {
					t.Errorf("stderr lacks %q:\n%s", s, stderr.String())
				}
			}
			reqs := srv.requests()
			if tt.method == "" {
				if len(reqs) > 0 {
					t.Errorf("server got %+v, want no request", reqs)
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("server got %d requests, want 1: %+v", len(reqs), reqs)
			}
			r := reqs[0]
			if r.method != tt.method || r.uri != tt.uri {
				t.Errorf("request %s %s, want %s %s", r.method, r.uri, tt.method, tt.uri)
			}
			switch {
			case tt.exact && r.body != tt.body:
				t.Errorf("body\n got %s\nwant %s", r.body, tt.body)
			case tt.body != "" && !jsonEqual(t, r.body, tt.body):
				t.Errorf("body\n got %s\nwant %s", r.body, tt.body)
			case tt.noBody && r.body != "":
				t.Errorf("body %q, want none", r.body)
			}
		})
	}
}
