package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
)

// walkthroughDoc is the tutorial TestSecurityWalkthrough runs.
const walkthroughDoc = "../docs/security-walkthrough.md"

// shBlocks returns the fenced ```sh blocks of a Markdown file, in order, and its fenced
// ```json blocks (examples of output, not run).
func shBlocks(t *testing.T, path string) (sh, js []string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var cur *[]string
	var buf strings.Builder
	for _, line := range strings.Split(string(b), "\n") {
		switch {
		case cur == nil && strings.HasPrefix(line, "```"):
			switch strings.TrimPrefix(line, "```") {
			case "sh":
				cur = &sh
			case "json":
				cur = &js
			default:
				cur = new([]string) // another language: skipped
			}
			buf.Reset()
		case cur != nil && line == "```":
			*cur = append(*cur, buf.String())
			cur = nil
		case cur != nil:
			buf.WriteString(line + "\n")
		}
	}
	if cur != nil {
		t.Fatalf("%s: a fenced block is not closed", path)
	}
	return sh, js
}

// randomSecret is 16 random bytes in hex, a password no other test uses.
func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// walkPeers is e2e/cmd/walkpeers, the tutorial's Kafka broker and FerretDB, running.
type walkPeers struct {
	Kafka, MongoDB string
	Rows           int
}

// startWalkPeers builds and starts cmd/walkpeers on free ports, as a reader of the tutorial
// runs it with `make walkpeers`, and stops it (SIGTERM) when the test ends.
func startWalkPeers(t *testing.T, user, password string) walkPeers {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "walkpeers")
	if out, err := exec.Command("go", "build", "-o", bin, "./cmd/walkpeers").CombinedOutput(); err != nil {
		t.Fatalf("building walkpeers: %v\n%s", err, out)
	}
	cmd := exec.Command(bin, "-kafka", "127.0.0.1:0", "-mongodb", "127.0.0.1:0", "-dir", t.TempDir())
	cmd.Env = append(os.Environ(), "KAFKA_USER="+user, "KAFKA_PASSWORD="+password)
	var stderr lockedBuffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("walkpeers exited with %v after SIGINT\n%s", err, stderr.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("walkpeers did not stop within 30s of SIGINT")
		}
	})
	var p walkPeers
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		_, _ = io.Copy(io.Discard, out)
	}()
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("walkpeers stopped before it was ready\n%s", stderr.String())
			}
			k, v, _ := strings.Cut(l, " ")
			switch k {
			case "kafka":
				p.Kafka = v
			case "mongodb":
				p.MongoDB = v
			case "stocks":
				p.Rows, _ = strconv.Atoi(v)
			case "ready":
				return p
			}
		case <-time.After(2 * time.Minute):
			t.Fatalf("walkpeers was not ready within 2 minutes\n%s", stderr.String())
		}
	}
}

// freeAddr is a loopback address with a port nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// The security article's walkthrough (issue 11, acceptance 8), run from its tutorial. Every
// ```sh block of docs/security-walkthrough.md runs, in order, in one bash, from the repository
// root, with the tutorial's peers (cmd/walkpeers: kfake with SCRAM-SHA-256, embedded FerretDB,
// the stock prices of vega-datasets' stocks.csv in the topic) on free ports; only the settings
// the first block reads from the environment (SPI_DATA_DIR, KAFKA, KAFKA_USER, KAFKA_PASSWORD,
// MONGODB, STOCKS_ADDR, DEV_PASSWORD) differ from a reader's. Then the test checks what the
// blocks did, independently of them:
//
//   - the workspace, connections, custom role and developer exist as the article has them, and
//     the developer's processor (created by the developer, audited as such) upserted every row
//     of the CSV into FerretDB's market.prices, compared row by row with the CSV read here;
//   - the developer could not log in to the default workspace (audited as outside the scopes),
//     and the execute-as role refused a $merge into config (420) with nothing written there;
//   - the Stream Processing Owner key created a second workspace, its connections, a custom
//     role and a user; the Read Only key's four requests were each 403 with the error shape
//     the tutorial shows, audited as 403, and created nothing;
//   - no credential (the Kafka password, a Cluster connection's password, which the test adds
//     on a connection of its own that FerretDB refuses, the three API private keys, the
//     developer's password) appears in any output of the tutorial, any reply the test reads,
//     spid's log, the audit logs or the metadata file.
func TestSecurityWalkthrough(t *testing.T) {
	t.Parallel()
	sh, examples := shBlocks(t, walkthroughDoc)
	if len(sh) < 10 || len(examples) < 1 {
		t.Fatalf("%s: %d sh blocks and %d json blocks; the walkthrough has more", walkthroughDoc, len(sh), len(examples))
	}
	settings := map[string]string{
		"KAFKA_USER":     "stocks-" + randomSecret(t, "")[:6],
		"KAFKA_PASSWORD": randomSecret(t, "kafka-pw-"),
		"STOCKS_ADDR":    freeAddr(t),
		"DEV_PASSWORD":   randomSecret(t, "dev-pw-"),
	}
	peers := startWalkPeers(t, settings["KAFKA_USER"], settings["KAFKA_PASSWORD"])
	settings["KAFKA"], settings["MONGODB"] = peers.Kafka, peers.MongoDB
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "5s")
	settings["SPI_DATA_DIR"] = s.DataDir
	for k := range settings {
		if k != "SPI_DATA_DIR" && !strings.Contains(sh[0], k+"=${"+k+":-") {
			t.Fatalf("the tutorial's settings block does not take %s from the environment:\n%s", k, sh[0])
		}
	}
	rows := readStocks(t)
	if peers.Rows != len(rows) {
		t.Fatalf("walkpeers wrote %d rows to Kafka, %s has %d", peers.Rows, stocksCSV, len(rows))
	}

	// The tutorial, block by block, each announced by a marker line; a last block of the
	// test's own (not in the tutorial) hands over the two API keys the tutorial created.
	keysFile := filepath.Join(t.TempDir(), "keys")
	var script strings.Builder
	for i, b := range sh {
		fmt.Fprintf(&script, "echo '@@block %d'\n%s", i, b)
	}
	fmt.Fprintf(&script, "echo '@@block end'\nprintf '%%s\\n%%s\\n' \"$SPO\" \"$RO\" > %q\n", keysFile)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-eo", "pipefail", "-c", script.String())
	cmd.Dir = ".."
	cmd.Env = mongoshEnv(t)
	for k, v := range settings {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	blocks := map[string]string{}
	last := ""
	for _, part := range strings.Split(out.String(), "@@block ")[1:] {
		id, text, _ := strings.Cut(part, "\n")
		blocks[id], last = text, id
	}
	if err != nil {
		n, _ := strconv.Atoi(last)
		t.Fatalf("the tutorial stopped in sh block %s (%v):\n%s\noutput:\n%s\nspid's log:\n%s", last, err, sh[min(n, len(sh)-1)], blocks[last], s.Stderr)
	}
	t.Logf("the tutorial's %d sh blocks ran", len(sh))

	owner := newAPI(t, s.Creds(t))
	// Steps 1 to 4 as the article has them.
	ws := owner.ok("GET", "/streams/Stocks", nil)
	if h, _ := ws["hostnames"].([]any); len(h) != 1 || h[0] != settings["STOCKS_ADDR"] {
		t.Errorf("workspace Stocks: hostnames %v, want [%s]", ws["hostnames"], settings["STOCKS_ADDR"])
	}
	kc := owner.ok("GET", "/streams/Stocks/connections/kafkaProd", nil)
	cc := owner.ok("GET", "/streams/Stocks/connections/stocksCluster", nil)
	if kc["type"] != "Kafka" || kc["bootstrapServers"] != peers.Kafka || cc["type"] != "Cluster" ||
		fmt.Sprint(cc["dbRoleToExecute"]) != "map[role:readWriteAnyDatabase type:BUILT_IN]" {
		t.Errorf("the connections are not the article's:\n%v\n%v", kc, cc)
	}
	var role struct {
		Actions []struct {
			Action    string
			Resources []map[string]any
		}
		InheritedRoles []any
	}
	if status, body := owner.call("GET", "/customDBRoles/roles/SPIAccess", nil); status != 200 || json.Unmarshal(body, &role) != nil {
		t.Fatalf("custom role SPIAccess: %d %s", status, body)
	}
	var actions []string
	for _, a := range role.Actions {
		actions = append(actions, a.Action)
	}
	wantActions := []string{"CREATE_STREAM_PROCESSOR", "DROP_STREAM_PROCESSOR", "GET_STREAM_PROCESSOR", "LIST_STREAM_CONNECTIONS",
		"LIST_STREAM_PROCESSORS", "MODIFY_STREAM_PROCESSOR", "PROCESS_STREAM_PROCESSOR", "SAMPLE_STREAM_PROCESSOR",
		"START_STREAM_PROCESSOR", "STOP_STREAM_PROCESSOR", "STREAM_PROCESSOR_STATS"}
	if slices.Sort(actions); !slices.Equal(actions, wantActions) || len(role.InheritedRoles) != 0 {
		t.Errorf("SPIAccess holds %v and inherits %v; want exactly the stream processing actions %v", actions, role.InheritedRoles, wantActions)
	}
	dev := owner.ok("GET", "/databaseUsers/admin/stocksDeveloper", nil)
	if fmt.Sprint(dev["roles"]) != "[map[databaseName:admin roleName:SPIAccess]]" || fmt.Sprint(dev["scopes"]) != "[map[name:Stocks type:STREAM]]" {
		t.Errorf("stocksDeveloper: roles %v, scopes %v; want SPIAccess only, Stocks only", dev["roles"], dev["scopes"])
	}

	// Step 5: the developer's processor wrote every row of the CSV, as the CSV says.
	fc := connectFerret(t, peers.MongoDB)
	cur, err := fc.Database("market").Collection("prices").Find(t.Context(), bson.D{}, options.Find())
	if err != nil {
		t.Fatal(err)
	}
	type price struct {
		ID     string    `bson:"_id"`
		Symbol string    `bson:"symbol"`
		Price  float64   `bson:"price"`
		Date   time.Time `bson:"date"`
	}
	var got []price
	if err := cur.All(t.Context(), &got); err != nil {
		t.Fatal(err)
	}
	byID := map[string]price{}
	for _, p := range got {
		byID[p.ID] = p
	}
	if len(got) != len(rows) || len(byID) != len(rows) {
		t.Errorf("market.prices holds %d documents (%d distinct _id), the CSV has %d rows", len(got), len(byID), len(rows))
	}
	for _, r := range rows {
		id := r.Symbol + " " + r.Date
		p, ok := byID[id]
		if !ok {
			t.Errorf("market.prices has no document %q", id)
			continue
		}
		if p.Symbol != r.Symbol || p.Price != r.Value || !p.Date.Equal(r.Time) {
			t.Errorf("market.prices %q: %+v; the CSV says symbol %s, price %s, date %s", id, p, r.Symbol, r.Price, r.Time.Format(time.DateOnly))
		}
	}
	if want := fmt.Sprintf("%d rows written", len(rows)); !strings.Contains(out.String(), want) {
		t.Errorf("the tutorial's wait did not end with %q", want)
	}
	// Created by the developer, on Stocks, and audited as such; the login to default refused.
	if !strings.Contains(out.String(), "MongoServerError: Authentication failed.") || strings.Contains(out.String(), "the developer could log in") {
		t.Errorf("the developer's login to the default workspace was not refused:\n%s", out.String())
	}
	dataAudit := readFile(t, filepath.Join(s.DataDir, "audit", "data-plane.jsonl"))
	if !regexp.MustCompile(`"event":"processorCommand","user":"stocksDeveloper","db":"admin","command":"createStreamProcessor","processor":"stockPrices","workspace":"Stocks"[^\n]*"outcome":"ok"`).MatchString(dataAudit) {
		t.Errorf("no audit record of stocksDeveloper creating stockPrices on Stocks:\n%s", dataAudit)
	}
	if !regexp.MustCompile(`"user":"stocksDeveloper"[^\n]*"workspace":"default"[^\n]*"outcome":"failure","reason":"workspace outside the user's scopes"`).MatchString(dataAudit) {
		t.Errorf("no audit record of stocksDeveloper refused on the default workspace:\n%s", dataAudit)
	}
	if !strings.Contains(out.String(), "modifiedBy: 'stocksDeveloper'") || !strings.Contains(out.String(), "name: 'kafkaProd'") {
		t.Errorf("the developer's getStreamProcessor and listConnections are not in the tutorial's output:\n%s", out.String())
	}
	// The developer's view of the connections names the cluster but not where it is.
	host := strings.TrimSuffix(strings.TrimPrefix(peers.MongoDB, "mongodb://"), "/")
	devViews := 0
	for id, b := range blocks {
		if strings.Contains(b, "name: 'stocksCluster'") {
			devViews++
			if strings.Contains(b, host) {
				t.Errorf("the developer's output (block %s) shows the cluster's address %s:\n%s", id, host, b)
			}
		}
	}
	if devViews != 1 {
		t.Errorf("%d blocks print the developer's sp.listConnections(), want 1", devViews)
	}
	// The execute-as role refused config.prices before any write.
	if !strings.Contains(out.String(), "420 StreamProcessorInvalidOptions $merge into config.prices") ||
		!strings.Contains(out.String(), "execute-as role readWriteAnyDatabase may not insert into config.prices") {
		t.Errorf("the $merge into config was not refused with 420 naming the execute-as role:\n%s", out.String())
	}
	if names, err := fc.Database("config").ListCollectionNames(t.Context(), bson.D{{Key: "name", Value: "prices"}}); err != nil || len(names) != 0 {
		t.Errorf("config.prices: %v %v; the refused processor must write nothing", names, err)
	}
	admin := connectGo(t, s.Admin(t, settings["STOCKS_ADDR"], ""))
	if _, err := runAdmin(t, admin, bson.D{{Key: "getStreamProcessor", Value: "intoConfig"}}); err == nil {
		t.Error("the refused processor intoConfig exists")
	}

	// Step 6: the keys are what the tutorial says, the Stream Processing Owner's requests
	// created what they asked for, the Read Only key's were refused with the documented shape.
	keys := strings.Split(strings.TrimSpace(readFile(t, keysFile)), "\n")
	if len(keys) != 2 {
		t.Fatalf("the tutorial left no SPO and RO keys: %q", keys)
	}
	spoPub, spoPriv, _ := strings.Cut(keys[0], ":")
	roPub, roPriv, _ := strings.Cut(keys[1], ":")
	var keyList struct {
		Results []struct {
			PublicKey string
			Roles     []struct{ RoleName string }
		}
	}
	_, body := owner.call("GET", "/apiKeys", nil)
	if err := json.Unmarshal(body, &keyList); err != nil {
		t.Fatal(err)
	}
	keyRoles := map[string]string{}
	for _, k := range keyList.Results {
		for _, r := range k.Roles {
			keyRoles[k.PublicKey] += r.RoleName
		}
	}
	if keyRoles[spoPub] != "GROUP_STREAM_PROCESSING_OWNER" || keyRoles[roPub] != "GROUP_READ_ONLY" {
		t.Errorf("the tutorial's keys hold %q and %q; want GROUP_STREAM_PROCESSING_OWNER and GROUP_READ_ONLY", keyRoles[spoPub], keyRoles[roPub])
	}
	for _, path := range []string{"/streams/StocksTeam2", "/streams/StocksTeam2/connections/kafkaProd",
		"/streams/StocksTeam2/connections/stocksCluster", "/customDBRoles/roles/SPIAccessTeam2", "/databaseUsers/admin/team2Developer"} {
		if status, body := owner.call("GET", path, nil); status != 200 {
			t.Errorf("the Stream Processing Owner key did not create %s: %d %s", path, status, body)
		}
	}
	for _, path := range []string{"/streams/StocksRO", "/streams/Stocks/connections/kafkaRO", "/customDBRoles/roles/SPIAccessRO", "/databaseUsers/admin/roDeveloper"} {
		if status, body := owner.call("GET", path, nil); status != 404 {
			t.Errorf("the Read Only key's request made %s: %d %s", path, status, body)
		}
	}
	var documented map[string]any
	if err := json.Unmarshal([]byte(strings.ReplaceAll(examples[len(examples)-1], "<public key>", roPub)), &documented); err != nil {
		t.Fatalf("the tutorial's last json block is not the documented refusal: %v", err)
	}
	var refusals []map[string]any
	for _, b := range blocks {
		for _, l := range strings.Split(b, "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && m["error"] != nil {
				refusals = append(refusals, m)
			}
		}
	}
	want := []string{"GROUP_OWNER, GROUP_STREAM_PROCESSING_OWNER).", "GROUP_OWNER, GROUP_STREAM_PROCESSING_OWNER).",
		"GROUP_OWNER, GROUP_STREAM_PROCESSING_OWNER, GROUP_DATA_ACCESS_ADMIN).", "GROUP_OWNER, GROUP_STREAM_PROCESSING_OWNER, GROUP_DATA_ACCESS_ADMIN)."}
	if len(refusals) != len(want) {
		t.Fatalf("the tutorial printed %d refusals, want %d (the Read Only key's): %v", len(refusals), len(want), refusals)
	}
	if !reflect.DeepEqual(refusals[0], documented) {
		t.Errorf("the Read Only key's first refusal is\n%v\nthe tutorial shows\n%v", refusals[0], documented)
	}
	for i, r := range refusals {
		d, _ := r["detail"].(string)
		if r["error"] != 403.0 || r["errorCode"] != "FORBIDDEN" || r["reason"] != "Forbidden" || fmt.Sprint(r["parameters"]) != "[]" ||
			d != "API key "+roPub+" lacks the project role this request needs (one of "+want[i] {
			t.Errorf("refusal %d: %v", i, r)
		}
	}
	ctlAudit := readFile(t, filepath.Join(s.DataDir, "audit", "control-plane.jsonl"))
	if n := len(regexp.MustCompile(`"caller":"`+roPub+`"[^\n]*"method":"POST"[^\n]*"status":403`).FindAllString(ctlAudit, -1)); n != 4 {
		t.Errorf("the audit log holds %d refused POSTs of the Read Only key, want 4", n)
	}

	// A Cluster connection with credentials, which FerretDB 1.24 refuses (see the README): the
	// developer's processor on it fails with 421, and the password appears nowhere.
	clusterPassword := randomSecret(t, "cluster-pw-")
	owner.ok("POST", "/streams/Stocks/connections", map[string]any{"name": "stocksClusterAuthed", "type": "Cluster",
		"clusterName": "Cluster0", "connectionString": peers.MongoDB,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"},
		"authentication":  map[string]any{"mechanism": "SCRAM-SHA-256", "username": "spiWriter", "password": clusterPassword}})
	devc := connectGo(t, "mongodb://stocksDeveloper:"+settings["DEV_PASSWORD"]+"@"+settings["STOCKS_ADDR"]+"/?authSource=admin")
	mustAdmin(t, devc, bson.D{{Key: "createStreamProcessor", Value: "authedPrices"}, {Key: "pipeline", Value: bson.A{
		bson.D{{Key: "$source", Value: bson.D{{Key: "connectionName", Value: "kafkaProd"}, {Key: "topic", Value: "stocks"},
			{Key: "config", Value: bson.D{{Key: "auto_offset_reset", Value: "earliest"}}}}}},
		bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "stocksClusterAuthed"},
			{Key: "db", Value: "market"}, {Key: "coll", Value: "authed"}}}}}}}}})
	mustAdmin(t, devc, bson.D{{Key: "startStreamProcessor", Value: "authedPrices"}})
	var authedMsg string
	waitUntil(t, "the processor on the credentialed connection to report its failed login", func() bool {
		_, code, msg := processorState(t, devc, "authedPrices")
		if msg != "" && code != 421 {
			t.Fatalf("authedPrices: %d %q, want 421", code, msg)
		}
		authedMsg = msg
		return msg != ""
	})
	t.Logf("authedPrices: %s", authedMsg)
	var replies []string
	for _, c := range []bson.D{{{Key: "getStreamProcessor", Value: "authedPrices"}}, {{Key: "getStreamProcessorStats", Value: "authedPrices"}},
		{{Key: "listStreamConnections", Value: 1}}, {{Key: "listStreamProcessors", Value: 1}}} {
		m, err := runAdmin(t, devc, c)
		if err != nil {
			t.Fatalf("%v as the developer: %v", c, err)
		}
		replies = append(replies, fmt.Sprint(m))
	}
	for _, p := range []string{"/streams/Stocks/connections", "/streams/Stocks/connections/stocksClusterAuthed", "/streams/Stocks/processors", "/apiKeys", "/databaseUsers"} {
		_, b := owner.call("GET", p, nil)
		replies = append(replies, string(b))
	}
	mustAdmin(t, devc, bson.D{{Key: "stopStreamProcessor", Value: "authedPrices"}})

	creds := s.Creds(t)
	secrets := map[string]string{
		"the Kafka password": settings["KAFKA_PASSWORD"], "the Cluster password": clusterPassword,
		"the developer's password": settings["DEV_PASSWORD"], "the owner's private key": creds.PrivateKey,
		"the Stream Processing Owner's private key": spoPriv, "the Read Only private key": roPriv,
	}
	db, err := os.ReadFile(filepath.Join(s.DataDir, "spi.db"))
	if err != nil {
		t.Fatal(err)
	}
	places := map[string]string{
		"the tutorial's output": out.String(), "a reply": strings.Join(replies, "\n"), "spid's log": s.Stderr.String(),
		"the control-plane audit log": ctlAudit, "the data-plane audit log": readFile(t, filepath.Join(s.DataDir, "audit", "data-plane.jsonl")),
		"the metadata file": string(db),
		// The first start prints the owner key once, by design; nothing else may appear there.
		"spid's stdout": strings.ReplaceAll(s.Stdout.String(), creds.PrivateKey, ""),
	}
	for what, secret := range secrets {
		if len(secret) < 16 {
			t.Fatalf("%s %q is too short to search for", what, secret)
		}
		for where, text := range places {
			if strings.Contains(text, secret) {
				t.Errorf("%s appears in %s", what, where)
			}
		}
	}
}

// readFile returns a file's contents, failing the test if it cannot be read.
func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
