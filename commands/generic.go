package commands

import (
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/x/bsonx/bsoncore"
)

// Codes of the generic-argument checks (mongod's error_codes.yml and the assertion IDs of
// src/mongo/db/api_parameters.cpp and the IDL parser).
const (
	CodeIllegalOperation     Code = 20
	CodeAPIVersionError      Code = 322
	CodeAPIStrictError       Code = 323
	CodeIDLRequiredField     Code = 40414
	CodeAPIParamsWithoutVers Code = 4886600
)

func init() {
	codeNames[CodeIllegalOperation] = "IllegalOperation"
	codeNames[CodeAPIVersionError] = "APIVersionError"
	codeNames[CodeAPIStrictError] = "APIStrictError"
}

// Generic holds the generic command arguments of one call, the fields any command may carry
// (mongod's generic_argument.idl): the dispatcher checks them, keeps what spid uses here and
// removes them all from the Body handlers see.
type Generic struct {
	// APIVersion is "1" or "" (none given); APIStrict and APIDeprecationErrors are the Stable
	// API options (MongoDB manual, "Stable API").
	APIVersion           string
	APIStrict            bool
	APIDeprecationErrors bool
	// LSID is the logical session's {id: UUID} document, nil without one. spid keeps no state per
	// session: a session is only a label on the commands that carry it.
	LSID bson.Raw
	// MaxTimeMS is the client's time limit in milliseconds, 0 for none.
	MaxTimeMS int64
	// Comment is the client's comment of any type; Type 0 when absent.
	Comment bson.RawValue
}

// genericKind says how the dispatcher treats one generic argument.
type genericKind uint8

const (
	genericIgnored     genericKind = iota // accepted, any type, and removed
	genericDoc                            // must be a document; removed
	genericAPIVersion                     // string, must be "1"
	genericAPIBool                        // apiStrict, apiDeprecationErrors: boolean
	genericLSID                           // {id: UUID, ...}
	genericMaxTimeMS                      // non-negative number
	genericComment                        // kept in Generic.Comment
	genericTransaction                    // txnNumber, autocommit, startTransaction: refused
)

// genericFields are the generic arguments spid accepts (mongod's generic_argument.idl, the
// fields drivers send: Driver Sessions, Versioned API and Read/Write Concern specifications).
var genericFields = map[string]genericKind{
	"$db":                    genericIgnored, // already read into Call.DB
	"$readPreference":        genericDoc,
	"$clusterTime":           genericDoc,
	"$audit":                 genericDoc,
	"$client":                genericDoc,
	"$queryOptions":          genericDoc,
	"readConcern":            genericDoc,
	"writeConcern":           genericDoc,
	"apiVersion":             genericAPIVersion,
	"apiStrict":              genericAPIBool,
	"apiDeprecationErrors":   genericAPIBool,
	"lsid":                   genericLSID,
	"maxTimeMS":              genericMaxTimeMS,
	"comment":                genericComment,
	"clientOperationKey":     genericIgnored,
	"txnNumber":              genericTransaction,
	"autocommit":             genericTransaction,
	"startTransaction":       genericTransaction,
	"stmtId":                 genericTransaction,
	"txnRetryCounter":        genericTransaction,
	"mayBypassWriteBlocking": genericIgnored,
	// Fields mongod's own nodes attach to commands between themselves; a client has no reason to
	// send them, and they mean nothing to spid, but a command that carries one is not malformed.
	"$configServerState":              genericIgnored,
	"$configTime":                     genericIgnored,
	"$topologyTime":                   genericIgnored,
	"$replData":                       genericIgnored,
	"$oplogQueryData":                 genericIgnored,
	"databaseVersion":                 genericIgnored,
	"shardVersion":                    genericIgnored,
	"tracking_info":                   genericIgnored,
	"allowImplicitCollectionCreation": genericIgnored,
	"maxTimeMSOpOnly":                 genericIgnored,
	"usesDefaultMaxTimeMS":            genericIgnored,
}

// apiVersion1 lists the commands of spid's table that belong to Stable API version 1, as they do
// on mongod (MongoDB manual, "Stable API Reference"); with apiStrict: true every other command
// fails with APIStrictError. Stream processing commands are not part of it.
var apiVersion1 = map[string]bool{
	"authenticate":    true,
	"endSessions":     true,
	"hello":           true,
	"listCollections": true,
	"listDatabases":   true,
	"ping":            true,
	"saslContinue":    true,
	"saslStart":       true,
}

// stripGeneric reads the generic arguments of body into g and appends to dst the body without
// them (the command's own fields, in their order), which it returns. A generic argument of the
// wrong type or value is an error naming the field, as mongod's IDL parser words it.
func stripGeneric(dst []byte, body bson.Raw, g *Generic) ([]byte, *Error) {
	start, dst := bsoncore.AppendDocumentStart(dst)
	apiOptions := false
	rest := []byte(body)[4 : len(body)-1]
	for len(rest) > 0 {
		elem, r, ok := bsoncore.ReadElement(rest)
		if !ok {
			return dst, Errorf(CodeInvalidBSON, "malformed command document")
		}
		rest = r
		kind, generic := genericFields[string(elem.KeyBytes())]
		if !generic {
			dst = append(dst, elem...)
			continue
		}
		v := elem.Value()
		key := string(elem.KeyBytes())
		switch kind {
		case genericDoc:
			if v.Type != bsoncore.TypeEmbeddedDocument {
				return dst, wrongType(key, v.Type, "object")
			}
		case genericAPIVersion:
			s, ok := v.StringValueOK()
			if !ok {
				return dst, wrongType(key, v.Type, "string")
			}
			if s != "1" {
				return dst, Errorf(CodeAPIVersionError, "API version must be \"1\"")
			}
			g.APIVersion = s
		case genericAPIBool:
			b, ok := v.BooleanOK()
			if !ok {
				return dst, wrongType(key, v.Type, "bool")
			}
			apiOptions = true
			if key == "apiStrict" {
				g.APIStrict = b
			} else {
				g.APIDeprecationErrors = b
			}
		case genericLSID:
			if v.Type != bsoncore.TypeEmbeddedDocument {
				return dst, wrongType(key, v.Type, "object")
			}
			doc := v.Document()
			id, err := doc.LookupErr("id")
			if err != nil {
				return dst, Errorf(CodeIDLRequiredField, "BSON field 'OperationSessionInfo.lsid.id' is missing but a required field")
			}
			if sub, data, ok := id.BinaryOK(); !ok || sub != bson.TypeBinaryUUID || len(data) != 16 {
				return dst, Errorf(CodeBadValue, "BSON field 'OperationSessionInfo.lsid.id' must be a UUID (binary subtype 4, 16 bytes)")
			}
			g.LSID = bson.Raw(doc)
		case genericMaxTimeMS:
			n, ok := v.AsInt64OK()
			if !ok {
				return dst, wrongType(key, v.Type, "number")
			}
			if n < 0 {
				return dst, Errorf(CodeBadValue, "maxTimeMS must be a non-negative integer number of milliseconds, not %d", n)
			}
			g.MaxTimeMS = n
		case genericComment:
			g.Comment = bson.RawValue{Type: bson.Type(v.Type), Value: v.Data}
		case genericTransaction:
			return dst, Errorf(CodeIllegalOperation, "Transaction numbers are only allowed on a replica set member or mongos: "+
				"spid, like a standalone mongod, does not support transactions (field '%s')", key)
		}
	}
	dst, _ = bsoncore.AppendDocumentEnd(dst, start)
	if apiOptions && g.APIVersion == "" {
		return dst, Errorf(CodeAPIParamsWithoutVers, "Provided apiStrict and/or apiDeprecationErrors without passing apiVersion")
	}
	return dst, nil
}

// checkAPI applies apiStrict to a command (src/mongo/db/api_parameters.cpp).
func checkAPI(name string, g *Generic) *Error {
	if g.APIStrict && !apiVersion1[name] {
		return Errorf(CodeAPIStrictError, "Provided apiStrict:true, but the command %s is not in API Version 1. "+
			"Information on supported commands and migrations in API Version 1 can be found at "+
			"https://dochub.mongodb.org/core/manual-versioned-api.", name)
	}
	return nil
}

func wrongType(key string, t bsoncore.Type, want string) *Error {
	return Errorf(CodeTypeMismatch, "BSON field '%s' is the wrong type '%s', expected type '%s'", key, typeName(bson.Type(t)), want)
}
