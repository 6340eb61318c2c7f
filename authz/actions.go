// Package authz holds the data-plane authorization model: privilege actions, built-in roles and
// their actions, custom roles, and (with the security issue) the single Check every command
// passes through.
package authz

import (
	"strings"
	"unicode"
)

// Action is a stream processing privilege action, named as MongoDB names privileges.
type Action string

// The stream processing privilege actions (spec section 6.1). The resource is always the whole
// workspace.
const (
	CreateStreamProcessor  Action = "createStreamProcessor"
	DropStreamProcessor    Action = "dropStreamProcessor"
	GetStreamProcessor     Action = "getStreamProcessor"
	ListStreamConnections  Action = "listStreamConnections"
	ListStreamProcessors   Action = "listStreamProcessors"
	ModifyStreamProcessor  Action = "modifyStreamProcessor"
	ProcessStreamProcessor Action = "processStreamProcessor"
	SampleStreamProcessor  Action = "sampleStreamProcessor"
	StartStreamProcessor   Action = "startStreamProcessor"
	StopStreamProcessor    Action = "stopStreamProcessor"
	StreamProcessorStats   Action = "streamProcessorStats"
)

// StreamActions lists every stream processing action.
var StreamActions = []Action{
	CreateStreamProcessor, DropStreamProcessor, GetStreamProcessor, ListStreamConnections, ListStreamProcessors,
	ModifyStreamProcessor, ProcessStreamProcessor, SampleStreamProcessor, StartStreamProcessor, StopStreamProcessor,
	StreamProcessorStats,
}

// legacyNames maps older action names to current ones.
var legacyNames = map[string]Action{"listConnections": ListStreamConnections}

// BuiltinRoles maps each built-in role to the stream actions it grants.
var BuiltinRoles = map[string][]Action{
	"atlasAdmin":           StreamActions,
	"readWriteAnyDatabase": StreamActions,
	"readAnyDatabase":      {GetStreamProcessor, ListStreamProcessors, StreamProcessorStats, ListStreamConnections},
}

// DatabaseActions are the Atlas custom-role actions for data access that a role may carry when
// it serves as a Cluster connection's execute-as role. They mean nothing on the data plane.
var DatabaseActions = []string{
	"FIND", "INSERT", "UPDATE", "REMOVE", "CHANGE_STREAM", "BYPASS_DOCUMENT_VALIDATION", "COLL_STATS",
	"CREATE_COLLECTION", "CREATE_INDEX", "DB_STATS", "DROP_COLLECTION", "DROP_DATABASE", "DROP_INDEX",
	"KILL_CURSORS", "LIST_COLLECTIONS", "LIST_DATABASES", "LIST_INDEXES", "OUT_TO_S3", "RENAME_COLLECTION_SAME_DB",
	"SQL_GET_SCHEMA", "SQL_SET_SCHEMA", "USE_UUID",
}

// AtlasName is the action as the Admin API spells it: CREATE_STREAM_PROCESSOR.
func (a Action) AtlasName() string {
	var b strings.Builder
	for i, r := range string(a) {
		if unicode.IsUpper(r) && i > 0 {
			b.WriteByte('_')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}

// ParseStreamAction accepts an action in either spelling (createStreamProcessor or
// CREATE_STREAM_PROCESSOR), and the older listConnections, and returns it.
func ParseStreamAction(s string) (Action, bool) {
	if a, ok := legacyNames[s]; ok {
		return a, true
	}
	if a, ok := legacyNames[fromAtlas(s)]; ok {
		return a, true
	}
	for _, a := range StreamActions {
		if s == string(a) || s == a.AtlasName() {
			return a, true
		}
	}
	return "", false
}

// fromAtlas turns LIST_CONNECTIONS into listConnections.
func fromAtlas(s string) string {
	parts := strings.Split(strings.ToLower(s), "_")
	for i := 1; i < len(parts); i++ {
		if parts[i] != "" {
			parts[i] = strings.ToUpper(parts[i][:1]) + parts[i][1:]
		}
	}
	return strings.Join(parts, "")
}
