package e2e

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/mongo"
)

// lookupFixtures fills FerretDB's db "shop" with the collections of MongoDB's $lookup manual
// page examples: inventory (equality, with a null and a missing sku), members (an array
// localField), warehouses (let/pipeline) and restaurants (the concise correlated form).
func lookupFixtures(t *testing.T, fc *mongo.Client) {
	t.Helper()
	shop := fc.Database("shop")
	for coll, docs := range map[string][]any{
		"inventory": {
			bson.D{{Key: "_id", Value: 1}, {Key: "sku", Value: "almonds"}, {Key: "description", Value: "product 1"}, {Key: "instock", Value: 120}},
			bson.D{{Key: "_id", Value: 2}, {Key: "sku", Value: "bread"}, {Key: "description", Value: "product 2"}, {Key: "instock", Value: 80}},
			bson.D{{Key: "_id", Value: 3}, {Key: "sku", Value: "cashews"}, {Key: "description", Value: "product 3"}, {Key: "instock", Value: 60}},
			bson.D{{Key: "_id", Value: 4}, {Key: "sku", Value: "pecans"}, {Key: "description", Value: "product 4"}, {Key: "instock", Value: 70}},
			bson.D{{Key: "_id", Value: 5}, {Key: "sku", Value: nil}, {Key: "description", Value: "Incomplete"}},
			bson.D{{Key: "_id", Value: 6}},
		},
		"members": {
			bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "artie"}, {Key: "status", Value: "A"}},
			bson.D{{Key: "_id", Value: 2}, {Key: "name", Value: "giraffe"}, {Key: "status", Value: "D"}},
			bson.D{{Key: "_id", Value: 3}, {Key: "name", Value: "giraffe1"}, {Key: "status", Value: "A"}},
			bson.D{{Key: "_id", Value: 4}, {Key: "name", Value: "panda"}, {Key: "status", Value: "A"}},
			bson.D{{Key: "_id", Value: 5}, {Key: "name", Value: "pandabear"}, {Key: "status", Value: "A"}},
			bson.D{{Key: "_id", Value: 6}, {Key: "name", Value: "giraffe2"}, {Key: "status", Value: "D"}},
		},
		"warehouses": {
			bson.D{{Key: "_id", Value: 1}, {Key: "stock_item", Value: "almonds"}, {Key: "warehouse", Value: "A"}, {Key: "instock", Value: 120}},
			bson.D{{Key: "_id", Value: 2}, {Key: "stock_item", Value: "pecans"}, {Key: "warehouse", Value: "A"}, {Key: "instock", Value: 80}},
			bson.D{{Key: "_id", Value: 3}, {Key: "stock_item", Value: "almonds"}, {Key: "warehouse", Value: "B"}, {Key: "instock", Value: 60}},
			bson.D{{Key: "_id", Value: 4}, {Key: "stock_item", Value: "cookies"}, {Key: "warehouse", Value: "B"}, {Key: "instock", Value: 40}},
			bson.D{{Key: "_id", Value: 5}, {Key: "stock_item", Value: "cookies"}, {Key: "warehouse", Value: "A"}, {Key: "instock", Value: 80}},
		},
		"restaurants": {
			bson.D{{Key: "_id", Value: 1}, {Key: "name", Value: "American Steak House"}, {Key: "food", Value: bson.A{"filet", "sirloin"}}, {Key: "beverages", Value: bson.A{"beer", "wine"}}},
			bson.D{{Key: "_id", Value: 2}, {Key: "name", Value: "Honest John Pizza"}, {Key: "food", Value: bson.A{"cheese pizza", "pepperoni pizza"}}, {Key: "beverages", Value: bson.A{"soda"}}},
		},
	} {
		if _, err := shop.Collection(coll).InsertMany(t.Context(), docs); err != nil {
			t.Fatal(err)
		}
	}
}

func fromD(conn, coll string) bson.D {
	return bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: "shop"}, {Key: "coll", Value: coll}}
}

func mergeOut(conn, coll string) bson.D {
	return bson.D{{Key: "$merge", Value: bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: conn}, {Key: "db", Value: "out"}, {Key: "coll", Value: coll}}}}}}
}

// $lookup and $cachedLookup against embedded FerretDB through a Cluster connection (spec §3.4;
// issue 11 acceptance 5): each syntax gives the results of the matching example of MongoDB's
// $lookup manual page (equality with null and missing keys, an array localField, let/pipeline,
// the concise correlated form), and $cachedLookup gives the equality results too; its cache
// stays within maxMemUsageBytes (verbose stats); a let expression that fails is a dead letter;
// an execute-as role without find on from is refused at create with 420 naming role, namespace
// and action; an unreachable deployment is a retryable 421 naming the host, never the password.
func TestLookupFromFerretDB(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	lookupFixtures(t, fc)
	s := startSpid(t, "--checkpoint-interval", "300ms", "--processor-retry-timeout", "3s")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "fdb", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	c := connectGo(t, s.Admin(t, "", ""))

	orders := bson.A{
		bson.D{{Key: "_id", Value: 1}, {Key: "item", Value: "almonds"}, {Key: "price", Value: 12}, {Key: "quantity", Value: 2}},
		bson.D{{Key: "_id", Value: 2}, {Key: "item", Value: "pecans"}, {Key: "price", Value: 20}, {Key: "quantity", Value: 1}},
		bson.D{{Key: "_id", Value: 3}},
	}
	inv := func(id int) string {
		return map[int]string{
			1: `{"_id":1,"description":"product 1","instock":120,"sku":"almonds"}`,
			2: `{"_id":2,"description":"product 2","instock":80,"sku":"bread"}`,
			4: `{"_id":4,"description":"product 4","instock":70,"sku":"pecans"}`,
			5: `{"_id":5,"description":"Incomplete","sku":null}`,
			6: `{"_id":6}`,
		}[id]
	}
	equalityWant := []string{
		`{"_id":1,"inventory_docs":[` + inv(1) + `],"item":"almonds","price":12,"quantity":2}`,
		`{"_id":2,"inventory_docs":[` + inv(4) + `],"item":"pecans","price":20,"quantity":1}`,
		`{"_id":3,"inventory_docs":[` + inv(5) + `,` + inv(6) + `]}`,
	}
	cached := func(maxMem int64) bson.D {
		return bson.D{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"},
			{Key: "as", Value: "inventory_docs"}, {Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "hour"}}}, {Key: "maxMemUsageBytes", Value: maxMem}}}}
	}
	for _, tc := range []struct {
		name  string
		input bson.A
		stage bson.D
		want  []string
	}{
		{"equality", orders, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"},
			{Key: "foreignField", Value: "sku"}, {Key: "as", Value: "inventory_docs"}}}}, equalityWant},
		{"cached", orders, cached(1 << 20), equalityWant},
		// mongod's jstests (lookup_equijoin_semantics.js): an empty array localField matches
		// like null; an array matches by each element, null among them.
		{"arrays", bson.A{
			bson.D{{Key: "_id", Value: 10}, {Key: "o", Value: bson.A{}}},
			bson.D{{Key: "_id", Value: 11}, {Key: "o", Value: bson.D{{Key: "item", Value: bson.A{"pecans", nil}}}}},
			bson.D{{Key: "_id", Value: 12}, {Key: "o", Value: bson.A{bson.D{{Key: "item", Value: "almonds"}}, bson.D{{Key: "x", Value: 1}}, bson.D{{Key: "item", Value: bson.A{"bread"}}}}}},
		}, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "o.item"},
			{Key: "foreignField", Value: "sku"}, {Key: "as", Value: "inv"}}}}, []string{
			`{"_id":10,"inv":[` + inv(5) + `,` + inv(6) + `],"o":[]}`,
			`{"_id":11,"inv":[` + inv(4) + `,` + inv(5) + `,` + inv(6) + `],"o":{"item":["pecans",null]}}`,
			`{"_id":12,"inv":[` + inv(1) + `,` + inv(2) + `],"o":[{"item":"almonds"},{"x":1},{"item":["bread"]}]}`,
		}},
		{"array", bson.A{
			bson.D{{Key: "_id", Value: 1}, {Key: "title", Value: "Reading is ..."}, {Key: "enrollmentlist", Value: bson.A{"giraffe2", "pandabear", "artie"}}},
			bson.D{{Key: "_id", Value: 2}, {Key: "title", Value: "But Writing ..."}, {Key: "enrollmentlist", Value: bson.A{"giraffe1", "artie"}}},
		}, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "members")}, {Key: "localField", Value: "enrollmentlist"},
			{Key: "foreignField", Value: "name"}, {Key: "as", Value: "enrollee_info"}}}}, []string{
			`{"_id":1,"enrollee_info":[{"_id":1,"name":"artie","status":"A"},{"_id":5,"name":"pandabear","status":"A"},{"_id":6,"name":"giraffe2","status":"D"}],"enrollmentlist":["giraffe2","pandabear","artie"],"title":"Reading is ..."}`,
			`{"_id":2,"enrollee_info":[{"_id":1,"name":"artie","status":"A"},{"_id":3,"name":"giraffe1","status":"A"}],"enrollmentlist":["giraffe1","artie"],"title":"But Writing ..."}`,
		}},
		{"letpipeline", bson.A{
			bson.D{{Key: "_id", Value: 1}, {Key: "item", Value: "almonds"}, {Key: "price", Value: 12}, {Key: "ordered", Value: 2}},
			bson.D{{Key: "_id", Value: 2}, {Key: "item", Value: "pecans"}, {Key: "price", Value: 20}, {Key: "ordered", Value: 1}},
			bson.D{{Key: "_id", Value: 3}, {Key: "item", Value: "cookies"}, {Key: "price", Value: 10}, {Key: "ordered", Value: 60}},
		}, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "warehouses")},
			{Key: "let", Value: bson.D{{Key: "order_item", Value: "$item"}, {Key: "order_qty", Value: "$ordered"}}},
			{Key: "pipeline", Value: bson.A{
				bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$and", Value: bson.A{
					bson.D{{Key: "$eq", Value: bson.A{"$stock_item", "$$order_item"}}},
					bson.D{{Key: "$gte", Value: bson.A{"$instock", "$$order_qty"}}},
				}}}}}}},
				bson.D{{Key: "$project", Value: bson.D{{Key: "stock_item", Value: 0}, {Key: "_id", Value: 0}}}},
			}},
			{Key: "as", Value: "stockdata"}}}}, []string{
			`{"_id":1,"item":"almonds","ordered":2,"price":12,"stockdata":[{"instock":120,"warehouse":"A"},{"instock":60,"warehouse":"B"}]}`,
			`{"_id":2,"item":"pecans","ordered":1,"price":20,"stockdata":[{"instock":80,"warehouse":"A"}]}`,
			`{"_id":3,"item":"cookies","ordered":60,"price":10,"stockdata":[{"instock":80,"warehouse":"A"}]}`,
		}},
		{"concise", bson.A{
			bson.D{{Key: "_id", Value: 1}, {Key: "item", Value: "filet"}, {Key: "restaurant_name", Value: "American Steak House"}},
			bson.D{{Key: "_id", Value: 2}, {Key: "item", Value: "cheese pizza"}, {Key: "restaurant_name", Value: "Honest John Pizza"}, {Key: "drink", Value: "lemonade"}},
			bson.D{{Key: "_id", Value: 3}, {Key: "item", Value: "cheese pizza"}, {Key: "restaurant_name", Value: "Honest John Pizza"}, {Key: "drink", Value: "soda"}},
		}, bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "restaurants")}, {Key: "localField", Value: "restaurant_name"}, {Key: "foreignField", Value: "name"},
			{Key: "let", Value: bson.D{{Key: "orders_drink", Value: "$drink"}}},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$in", Value: bson.A{"$$orders_drink", "$beverages"}}}}}}}}},
			{Key: "as", Value: "matches"}}}}, []string{
			`{"_id":1,"item":"filet","matches":[],"restaurant_name":"American Steak House"}`,
			`{"_id":2,"drink":"lemonade","item":"cheese pizza","matches":[],"restaurant_name":"Honest John Pizza"}`,
			`{"_id":3,"drink":"soda","item":"cheese pizza","matches":[{"_id":2,"beverages":["soda"],"food":["cheese pizza","pepperoni pizza"],"name":"Honest John Pizza"}],"restaurant_name":"Honest John Pizza"}`,
		}},
	} {
		pipe := bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: tc.input}}}}, tc.stage, mergeOut("fdb", tc.name)}
		mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: tc.name}, {Key: "pipeline", Value: pipe}})
		mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: tc.name}})
		waitOutputs(t, c, tc.name, int64(len(tc.input)), 0)
		if got := collection(t, fc, "out", tc.name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n%s\nwant\n%s", tc.name, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
		mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: tc.name}})
	}

	// $cachedLookup within maxMemUsageBytes: 200 documents with 50 distinct keys, a cache with
	// room for a few entries; the results stay right and the cache, as verbose stats show it,
	// never holds more than its limit.
	var many bson.A
	skus := []string{"almonds", "bread", "cashews", "pecans"}
	for i := range 200 {
		many = append(many, bson.D{{Key: "_id", Value: i}, {Key: "item", Value: fmt.Sprintf("%s-%d", skus[i%4], i%50)}, {Key: "sku", Value: skus[i%4]}})
	}
	const maxMem = 600
	small := bson.D{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "sku"}, {Key: "foreignField", Value: "sku"},
		{Key: "as", Value: "inv"}, {Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "hour"}}}, {Key: "maxMemUsageBytes", Value: maxMem}}}}
	keyed := bson.D{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"},
		{Key: "as", Value: "none"}, {Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "hour"}}}, {Key: "maxMemUsageBytes", Value: maxMem}}}}
	pipe := bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: many}}}}, small, keyed, mergeOut("fdb", "many")}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "many"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "many"}})
	waitOutputs(t, c, "many", int64(len(many)), 0)
	var st struct {
		Stats struct {
			OperatorStats []struct {
				Name                      string
				StateSize, MaxMemoryUsage int64
			}
		}
	}
	if err := c.Database("admin").RunCommand(t.Context(), bson.D{{Key: "getStreamProcessorStats", Value: "many"}, {Key: "options", Value: bson.D{{Key: "verbose", Value: true}}}}).Decode(&st); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, op := range st.Stats.OperatorStats {
		if op.Name != "$cachedLookup" {
			continue
		}
		n++
		if op.MaxMemoryUsage != maxMem || op.StateSize <= 0 || op.StateSize > maxMem {
			t.Errorf("$cachedLookup stats: stateSize %d, maxMemoryUsage %d; want 0 < stateSize <= %d", op.StateSize, op.MaxMemoryUsage, maxMem)
		}
	}
	if n != 2 {
		t.Errorf("verbose operatorStats has %d $cachedLookup operators, want 2: %+v", n, st.Stats.OperatorStats)
	}
	got := collection(t, fc, "out", "many")
	for i, d := range got {
		sku := skus[i%4]
		wantInv := map[string]string{"almonds": inv(1), "pecans": inv(4),
			"bread":   `{"_id":2,"description":"product 2","instock":80,"sku":"bread"}`,
			"cashews": `{"_id":3,"description":"product 3","instock":60,"sku":"cashews"}`}[sku]
		want := fmt.Sprintf(`{"_id":%d,"inv":[%s],"item":"%s-%d","none":[],"sku":"%s"}`, i, wantInv, sku, i%50, sku)
		if d != want {
			t.Errorf("many[%d] = %s, want %s", i, d, want)
			break
		}
	}
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "many"}})

	// A let expression that fails for a document sends that document to the dead-letter queue.
	pipe = bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: bson.A{
		bson.D{{Key: "_id", Value: 1}, {Key: "n", Value: 2}}, bson.D{{Key: "_id", Value: 2}, {Key: "n", Value: 0}}}}}}},
		bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "let", Value: bson.D{{Key: "q", Value: bson.D{{Key: "$divide", Value: bson.A{240, "$n"}}}}}},
			{Key: "pipeline", Value: bson.A{bson.D{{Key: "$match", Value: bson.D{{Key: "$expr", Value: bson.D{{Key: "$eq", Value: bson.A{"$instock", "$$q"}}}}}}}}}, {Key: "as", Value: "hit"}}}},
		mergeOut("fdb", "letfail")}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "letfail"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "letfail"}})
	waitOutputs(t, c, "letfail", 1, 1)
	if got, want := collection(t, fc, "out", "letfail"), []string{`{"_id":1,"hit":[` + inv(1) + `],"n":2}`}; !reflect.DeepEqual(got, want) {
		t.Errorf("letfail: %v, want %v", got, want)
	}
	mustAdmin(t, c, bson.D{{Key: "stopStreamProcessor", Value: "letfail"}})

	// Execute-as: a custom role that may only insert into shop.* may not find there; the
	// processor is refused at create with 420 naming role, namespace and action.
	a.ok("POST", "/customDBRoles/roles", map[string]any{"roleName": "shopInsert",
		"actions": []any{map[string]any{"action": "INSERT", "resources": []any{map[string]any{"db": "shop", "collection": ""}}}}})
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "inserter", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "shopInsert", "type": "CUSTOM"}})
	for _, stage := range []bson.D{
		{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("inserter", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"}}}},
		{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("inserter", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"},
			{Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}}, {Key: "maxMemUsageBytes", Value: 1000}}}},
	} {
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "denied"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: orders}}}}, stage, mergeOut("fdb", "denied")}}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || ce.Code != 420 || !strings.Contains(ce.Message, "execute-as role shopInsert may not") ||
			!strings.Contains(ce.Message, "shop.inventory") || !strings.Contains(ce.Message, "FIND") {
			t.Errorf("%s through a role without find: %v, want 420 naming shopInsert, shop.inventory and FIND", stage[0].Key, err)
		}
	}

	// Option errors name the field.
	for _, tc := range []struct {
		stage bson.D
		want  string
	}{
		{bson.D{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"},
			{Key: "maxMemUsageBytes", Value: 1000}}}}, "ttl"},
		{bson.D{{Key: "$cachedLookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"},
			{Key: "ttl", Value: bson.D{{Key: "size", Value: 1}, {Key: "unit", Value: "second"}}}, {Key: "maxMemUsageBytes", Value: int64(1) << 40}}}}, "$cachedLookup.maxMemUsageBytes"},
		{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("nowhere", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"}}}}, `no connection named "nowhere"`},
		{bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("fdb", "inventory")}, {Key: "localField", Value: "item"}, {Key: "as", Value: "x"}}}}, "foreignField"},
	} {
		_, err := runAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "bad"}, {Key: "pipeline", Value: bson.A{
			bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: orders}}}}, tc.stage, mergeOut("fdb", "bad")}}})
		var ce mongo.CommandError
		if !errors.As(err, &ce) || !strings.Contains(ce.Message, tc.want) {
			t.Errorf("%v: %v, want an error naming %q", tc.stage, err, tc.want)
		}
	}

	// An unreachable deployment: the processor retries with 421 naming the host, then fails;
	// the connection's password appears nowhere.
	const password = "lookup-Secret-0815"
	dead := freeAddr(t) // nothing listens there
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "gone", "type": "Cluster", "clusterName": "gone",
		"connectionString": "mongodb://" + dead + "/?serverSelectionTimeoutMS=300&connectTimeoutMS=300",
		"dbRoleToExecute":  map[string]any{"role": "readAnyDatabase", "type": "BUILT_IN"},
		"authentication":   map[string]any{"username": "spi", "password": password}})
	pipe = bson.A{bson.D{{Key: "$source", Value: bson.D{{Key: "documents", Value: orders}}}},
		bson.D{{Key: "$lookup", Value: bson.D{{Key: "from", Value: fromD("gone", "inventory")}, {Key: "localField", Value: "item"}, {Key: "foreignField", Value: "sku"}, {Key: "as", Value: "x"}}}},
		mergeOut("fdb", "gone")}
	mustAdmin(t, c, bson.D{{Key: "createStreamProcessor", Value: "gone"}, {Key: "pipeline", Value: pipe}})
	mustAdmin(t, c, bson.D{{Key: "startStreamProcessor", Value: "gone"}})
	var msg string
	waitUntil(t, "the processor with an unreachable lookup to fail", func() bool {
		var state string
		var code int32
		state, code, msg = processorState(t, c, "gone")
		if msg != "" && (code != 421 || !strings.Contains(msg, dead) || !strings.Contains(msg, "shop.inventory")) {
			t.Fatalf("gone: %s %d %q", state, code, msg)
		}
		return state == "FAILED"
	})
	t.Logf("unreachable lookup: %q", msg)
	if n, _ := fc.Database("out").Collection("gone").CountDocuments(t.Context(), bson.D{}); n != 0 {
		t.Errorf("out.gone holds %d documents: a lookup that failed must not let documents through", n)
	}
	for i, out := range []string{msg, s.Stdout.String(), s.Stderr.String()} {
		if strings.Contains(out, password) {
			t.Errorf("message or log %d carries the password", i)
		}
	}
}

// $lookup end to end through mongosh: the developer creates and starts a processor with
// sp.createStreamProcessor, whose $lookup reads a FerretDB collection through a Cluster
// connection and whose $merge writes the enriched documents back (the equality example of
// MongoDB's $lookup manual page).
func TestLookupMongosh(t *testing.T) {
	t.Parallel()
	uri := startFerretDB(t)
	fc := connectFerret(t, uri)
	lookupFixtures(t, fc)
	s := startSpid(t, "--checkpoint-interval", "300ms")
	a := newAPI(t, s.Creds(t))
	a.ok("POST", "/streams/default/connections", map[string]any{"name": "shopdb", "type": "Cluster", "clusterName": "ferret", "connectionString": uri,
		"dbRoleToExecute": map[string]any{"role": "readWriteAnyDatabase", "type": "BUILT_IN"}})
	out := mongoshScript(t, s.Admin(t, "", ""), `
sp.createStreamProcessor("enrich", [
  {$source: {documents: [{_id: 1, item: "almonds", quantity: 2}, {_id: 2, item: "pecans", quantity: 1}, {_id: 3}]}},
  {$lookup: {from: {connectionName: "shopdb", db: "shop", coll: "inventory"}, localField: "item", foreignField: "sku", as: "inventory_docs"}},
  {$project: {item: 1, skus: "$inventory_docs.sku", descriptions: "$inventory_docs.description"}},
  {$merge: {into: {connectionName: "shopdb", db: "out", coll: "enriched"}}}
]);
sp.enrich.start();
print("STATE", sp.enrich.stats().stats.status);
`)
	if len(markedLines(out, "STATE")) != 1 {
		t.Fatalf("mongosh: %s", out)
	}
	c := connectGo(t, s.Admin(t, "", ""))
	waitOutputs(t, c, "enrich", 3, 0)
	want := []string{
		`{"_id":1,"descriptions":["product 1"],"item":"almonds","skus":["almonds"]}`,
		`{"_id":2,"descriptions":["product 4"],"item":"pecans","skus":["pecans"]}`,
		`{"_id":3,"descriptions":["Incomplete"],"skus":[null]}`,
	}
	if got := collection(t, fc, "out", "enriched"); !reflect.DeepEqual(got, want) {
		t.Errorf("out.enriched:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
