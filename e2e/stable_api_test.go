package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"

	"github.com/spi-streams/spi/commands"
)

// strictMsg is mongod's APIStrictError text for a command outside API Version 1.
func strictMsg(name string) string {
	return "Provided apiStrict:true, but the command " + name + " is not in API Version 1. Information on supported " +
		"commands and migrations in API Version 1 can be found at https://dochub.mongodb.org/core/manual-versioned-api."
}

type apiOutcome struct {
	Ping       float64 `json:"ping"`
	StrictCode int     `json:"strictCode"`
	StrictMsg  string  `json:"strictMsg"`
	StreamCode int     `json:"streamCode"`
	LaxBuild   string  `json:"laxBuild"`
	WrongCode  int     `json:"wrongCode"`
	WrongMsg   string  `json:"wrongMsg"`
}

// With serverApi {version: "1", strict: true}, mongosh and the Node driver run commands of API
// Version 1 (ping) and get APIStrictError (323) for any other (buildInfo, the stream commands),
// as from mongod; without strict, buildInfo runs; a wrong apiVersion is APIVersionError (322).
func TestStableAPI(t *testing.T) {
	s := startSpid(t)
	want := apiOutcome{Ping: 1, StrictCode: 323, StrictMsg: strictMsg("buildInfo"), StreamCode: 323, LaxBuild: "7.0.0",
		WrongCode: 322, WrongMsg: `API version must be "1"`}
	t.Run("mongosh", func(t *testing.T) {
		r := runMongosh(t, s.Admin(t, "", ""), "--apiVersion", "1", "--apiStrict", "--quiet", "--eval", `
const o = {ping: db.adminCommand({ping: 1}).ok};
try { db.adminCommand({buildInfo: 1}); } catch (e) { o.strictCode = e.code; o.strictMsg = e.message; }
try { sp.listConnections(); } catch (e) { o.streamCode = e.code; }
print(JSON.stringify(o));
`)
		var strict apiOutcome
		lastJSON(t, r, &strict)
		r = runMongosh(t, s.Admin(t, "", ""), "--apiVersion", "1", "--quiet", "--eval", `
const o = {laxBuild: db.adminCommand({buildInfo: 1}).version};
print(JSON.stringify(o));
`)
		var lax apiOutcome
		lastJSON(t, r, &lax)
		r = runMongosh(t, s.Admin(t, "", ""), "--quiet", "--eval", `
const o = {};
try { db.adminCommand({ping: 1, apiVersion: "2"}); } catch (e) { o.wrongCode = e.code; o.wrongMsg = e.message; }
print(JSON.stringify(o));
`)
		var wrong apiOutcome
		lastJSON(t, r, &wrong)
		got := apiOutcome{Ping: strict.Ping, StrictCode: strict.StrictCode, StrictMsg: strict.StrictMsg, StreamCode: strict.StreamCode,
			LaxBuild: lax.LaxBuild, WrongCode: wrong.WrongCode, WrongMsg: wrong.WrongMsg}
		if got != want {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
	t.Run("node", func(t *testing.T) {
		r := runNode(t, `
const strict = new MongoClient(argv[0], {serverApi: {version: '1', strict: true, deprecationErrors: true}});
const o = {ping: (await strict.db('admin').command({ping: 1})).ok};
try { await strict.db('admin').command({buildInfo: 1}); } catch (e) { o.strictCode = e.code; o.strictMsg = e.message; }
try { await strict.db('admin').command({listStreamConnections: 1}); } catch (e) { o.streamCode = e.code; }
await strict.close();
const lax = new MongoClient(argv[0], {serverApi: {version: '1'}});
o.laxBuild = (await lax.db('admin').command({buildInfo: 1})).version;
await lax.close();
const plain = new MongoClient(argv[0]);
try { await plain.db('admin').command({ping: 1, apiVersion: '2'}); } catch (e) { o.wrongCode = e.code; o.wrongMsg = e.message; }
await plain.close();
console.log(JSON.stringify(o));
`, s.Admin(t, "", ""))
		var got apiOutcome
		lastJSON(t, r, &got)
		if got != want {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	})
	// The API parameters are checked on every command, the first (the handshake's hello)
	// included, each on its own: mongod keeps no API version per connection.
	t.Run("placement", func(t *testing.T) {
		rc := dialRaw(t, s.Addr)
		steps := []struct {
			cmd  bson.D
			code int32
		}{
			{bson.D{{Key: "hello", Value: 1}, {Key: "apiVersion", Value: "2"}, {Key: "$db", Value: "admin"}}, 322},
			{bson.D{{Key: "hello", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}, {Key: "$db", Value: "admin"}}, 0},
			{bson.D{{Key: "isMaster", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}, {Key: "$db", Value: "admin"}}, 323},
			{bson.D{{Key: "ping", Value: 1}, {Key: "apiStrict", Value: true}, {Key: "$db", Value: "admin"}}, 4886600},
			{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: 1}, {Key: "$db", Value: "admin"}}, 14},
			{bson.D{{Key: "ping", Value: 1}, {Key: "$db", Value: "admin"}}, 0},
			{bson.D{{Key: "ping", Value: 1}, {Key: "apiVersion", Value: "1"}, {Key: "apiStrict", Value: true}, {Key: "$db", Value: "admin"}}, 0},
		}
		for i, st := range steps {
			if got := codeOf(rc.run(st.cmd)); got != st.code {
				t.Errorf("step %d %v: code %d, want %d", i, st.cmd, got, st.code)
			}
		}
	})
}

// An unauthenticated ping is {ok: 1}, as health checks expect from mongod; so is every command
// mongod allows before authentication, and every other command of spid's table, including all
// stream commands and listDatabases, is refused with 13 "command <name> requires authentication".
func TestCommandsBeforeAuthentication(t *testing.T) {
	s := startSpid(t)
	// mongod's commands whose requiresAuth() is false, among the names spid knows.
	mongodAnonymous := map[string]bool{"hello": true, "isMaster": true, "ismaster": true, "saslStart": true,
		"saslContinue": true, "authenticate": true, "logout": true, "connectionStatus": true, "ping": true}
	t.Run("mongosh", func(t *testing.T) {
		r := runMongosh(t, "mongodb://"+s.Addr+"/", "--quiet", "--eval", `print(JSON.stringify(db.adminCommand('ping')))`)
		if r.Exit != 0 || strings.TrimSpace(r.Stdout) != `{"ok":1}` {
			t.Errorf("exit %d, stdout %q, stderr %q", r.Exit, r.Stdout, r.Stderr)
		}
	})
	t.Run("go", func(t *testing.T) {
		c, err := mongo.Connect(options.Client().ApplyURI("mongodb://" + s.Addr + "/").SetServerSelectionTimeout(10 * time.Second))
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = c.Disconnect(context.Background()) }()
		var reply bson.M
		if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "ping", Value: 1}}).Decode(&reply); err != nil || reply["ok"] != 1.0 {
			t.Errorf("ping: %v %v", reply, err)
		}
	})
	t.Run("every command", func(t *testing.T) {
		for _, name := range commands.Names() {
			reply := dialRaw(t, s.Addr).run(bson.D{{Key: name, Value: 1}, {Key: "$db", Value: "admin"}})
			msg, _ := reply.Lookup("errmsg").StringValueOK()
			refused := codeOf(reply) == 13 && msg == "command "+name+" requires authentication"
			if refused == mongodAnonymous[name] {
				t.Errorf("%s before authentication: %v; mongod allows it: %v", name, reply, mongodAnonymous[name])
			}
		}
	})
}
