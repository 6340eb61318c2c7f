package mongodb

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/connectors"
	"github.com/spi-streams/spi/pipeline"
	"github.com/spi-streams/spi/store"
)

// customRoles is a project's registry of custom roles, as the Admin API stores them: writer
// grants INSERT and UPDATE on every collection of db1 ({db: "db1", collection: ""}), reader
// only FIND there.
func customRoles() func(string) (store.Role, bool) {
	db1 := []store.Resource{{DB: "db1"}}
	roles := map[string]store.Role{
		"writer": {Name: "writer", Actions: []store.RoleAction{{Action: "INSERT", Resources: db1}, {Action: "UPDATE", Resources: db1}}},
		"reader": {Name: "reader", Actions: []store.RoleAction{{Action: "FIND", Resources: db1}}},
	}
	return func(name string) (store.Role, bool) { r, ok := roles[name]; return r, ok }
}

func customEnv(role string) connectors.Env {
	e := env(role, "CUSTOM")
	e.Roles = customRoles()
	return e
}

func mergeInto(t *testing.T, db, coll string) *pipeline.Sink {
	st := mergeStage(t)
	st.Options = raw(t, bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: db}, {Key: "coll", Value: coll}}}})
	return st
}

// A CUSTOM execute-as role is checked with the project's custom roles: INSERT+UPDATE on db1
// allows $merge (merge/insert) into db1.c, FIND alone does not, and the refusal is 420 with the
// denial's message naming the missing action and the role.
func TestExecuteAsCustomRole(t *testing.T) {
	s, err := NewSink(customEnv("writer"), mergeInto(t, "db1", "c"))
	if err != nil {
		t.Fatalf("writer into db1.c: %v", err)
	}
	_ = s.Close()

	_, err = NewSink(customEnv("reader"), mergeInto(t, "db1", "c"))
	var ce *connectors.Error
	if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || ce.Retryable {
		t.Fatalf("reader into db1.c: %v, want a 420", err)
	}
	for _, want := range []string{"db1.c", `connection "c"`, "execute-as role reader may not insert into db1.c", "lacks the INSERT action", "give custom role reader the INSERT action"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("reader into db1.c: %q lacks %q", err, want)
		}
	}

	// The writer's privileges stop at db1.
	if _, err := NewSink(customEnv("writer"), mergeInto(t, "db2", "c")); !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), "may not insert into db2.c") {
		t.Errorf("writer into db2.c: %v, want a 420", err)
	}
	// whenMatched replace with whenNotMatched discard needs UPDATE only: still allowed.
	st := mergeInto(t, "db1", "c")
	st.Options = raw(t, bson.D{{Key: "into", Value: bson.D{{Key: "connectionName", Value: "c"}, {Key: "db", Value: "db1"}, {Key: "coll", Value: "c"}}},
		{Key: "whenMatched", Value: "replace"}, {Key: "whenNotMatched", Value: "discard"}})
	if _, err := NewSink(customEnv("writer"), st); err != nil {
		t.Errorf("writer replace/discard into db1.c: %v", err)
	}
}

// An unknown custom role, or an Env without custom roles, is refused with 420 naming it.
func TestExecuteAsUnknownCustomRole(t *testing.T) {
	for name, e := range map[string]connectors.Env{"registry": customEnv("gone"), "no Roles": env("gone", "CUSTOM")} {
		_, err := NewSink(e, mergeInto(t, "db1", "c"))
		var ce *connectors.Error
		if !errors.As(err, &ce) || ce.Code != connectors.CodeInvalidOptions || !strings.Contains(err.Error(), `no custom role named "gone" exists in this project`) {
			t.Errorf("%s: %v, want 420 naming the role", name, err)
		}
	}
}
