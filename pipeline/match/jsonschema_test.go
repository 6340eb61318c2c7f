package match

import (
	"errors"
	"strings"
	"testing"
)

// solarSchema is shaped like the Atlas $validate examples for the solar sample stream.
const solarSchema = `{"$jsonSchema": {
	"bsonType": "object",
	"title": "solar reading",
	"required": ["device_id", "group_id", "timestamp", "obs"],
	"properties": {
		"device_id": {"bsonType": "string", "pattern": "^device_[0-9]+$", "description": "the device"},
		"group_id": {"bsonType": "int", "minimum": 0, "maximum": 10},
		"timestamp": {"bsonType": ["string", "date"]},
		"max_watts": {"bsonType": "number", "exclusiveMinimum": true, "minimum": 0},
		"obs": {
			"bsonType": "object",
			"required": ["watts", "temp"],
			"properties": {
				"watts": {"bsonType": "number", "minimum": 0},
				"temp": {"bsonType": ["int", "double"], "minimum": -40, "maximum": 100}
			},
			"additionalProperties": false
		}
	}
}}`

func TestJSONSchemaRealistic(t *testing.T) {
	good := `{"device_id": "device_1", "group_id": 2, "timestamp": "2024-01-01T00:00:00Z", "max_watts": 250, "obs": {"watts": 120, "temp": 21.5}}`
	runMatchCases(t, []matchCase{
		{solarSchema, good, true},
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": {"$date": "1969-01-01T00:00:00Z"}, "obs": {"watts": {"$numberDecimal": "1.5"}, "temp": 21}}`, true},
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": {"watts": 120, "temp": 21.5}, "extra": [1]}`, true},
		{solarSchema, `{"group_id": 2, "timestamp": "t", "obs": {"watts": 1, "temp": 1}}`, false},                                          // required
		{solarSchema, `{"device_id": "dev_1", "group_id": 2, "timestamp": "t", "obs": {"watts": 1, "temp": 1}}`, false},                    // pattern
		{solarSchema, `{"device_id": "device_1", "group_id": 2.0, "timestamp": "t", "obs": {"watts": 1, "temp": 1}}`, false},               // bsonType int
		{solarSchema, `{"device_id": "device_1", "group_id": 11, "timestamp": "t", "obs": {"watts": 1, "temp": 1}}`, false},                // maximum
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": 5, "obs": {"watts": 1, "temp": 1}}`, false},                   // bsonType array
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": {"watts": -1, "temp": 1}}`, false},                // nested minimum
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": {"watts": 1}}`, false},                            // nested required
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": {"watts": 1, "temp": 1, "x": 1}}`, false},         // additionalProperties
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "max_watts": 0, "obs": {"watts": 1, "temp": 1}}`, false}, // exclusiveMinimum
		{solarSchema, `{"device_id": "device_1", "group_id": 2, "timestamp": "t", "obs": [{"watts": 1, "temp": 1}]}`, false},               // no implicit array traversal
	})
}

func TestJSONSchemaKeywords(t *testing.T) {
	s := func(schema string) string { return `{"$jsonSchema": ` + schema + `}` }
	runMatchCases(t, []matchCase{
		// type (JSON names) and bsonType.
		{s(`{"properties": {"a": {"type": "number"}}}`), `{"a": {"$numberLong": "1"}}`, true},
		{s(`{"properties": {"a": {"type": "number"}}}`), `{"a": "1"}`, false},
		{s(`{"properties": {"a": {"type": "boolean"}}}`), `{"a": true}`, true},
		{s(`{"properties": {"a": {"type": ["string", "null"]}}}`), `{"a": null}`, true},
		{s(`{"properties": {"a": {"type": "object"}}}`), `{"a": []}`, false},
		{s(`{"properties": {"a": {"type": "array"}}}`), `{"a": []}`, true},
		{s(`{"properties": {"a": {"type": "string"}}}`), `{}`, true}, // not required: absent is fine
		{s(`{"properties": {"a": {"bsonType": "long"}}}`), `{"a": 1}`, false},
		{s(`{"properties": {"a": {"bsonType": "decimal"}}}`), `{"a": {"$numberDecimal": "1"}}`, true},
		{s(`{"properties": {"a": {"bsonType": "objectId"}}}`), `{"a": {"$oid": "507f1f77bcf86cd799439011"}}`, true},
		{s(`{"properties": {"a": {"bsonType": "date"}}}`), `{"a": {"$date": "1900-01-01T00:00:00Z"}}`, true},
		{s(`{"properties": {"a": {"bsonType": "timestamp"}}}`), `{"a": {"$timestamp": {"t": 1, "i": 1}}}`, true},
		{s(`{"properties": {"a": {"bsonType": "regex"}}}`), `{"a": {"$regularExpression": {"pattern": "x", "options": ""}}}`, true},
		{s(`{"properties": {"a": {"bsonType": "binData"}}}`), `{"a": {"$binary": {"base64": "AQ==", "subType": "00"}}}`, true},
		{s(`{"properties": {"a": {"bsonType": "bool"}}}`), `{"a": 0}`, false},
		{s(`{"properties": {"a": {"bsonType": "null"}}}`), `{"a": null}`, true},
		{s(`{"bsonType": "object"}`), `{}`, true},
		// required.
		{s(`{"required": ["a", "b"]}`), `{"a": 1, "b": null}`, true},
		{s(`{"required": ["a", "b"]}`), `{"a": 1}`, false},
		// additionalProperties and patternProperties.
		{s(`{"properties": {"a": {}}, "additionalProperties": false}`), `{"a": 1}`, true},
		{s(`{"properties": {"a": {}}, "additionalProperties": false}`), `{"a": 1, "b": 2}`, false},
		{s(`{"properties": {"a": {}}, "additionalProperties": {"bsonType": "string"}}`), `{"a": 1, "b": "x"}`, true},
		{s(`{"properties": {"a": {}}, "additionalProperties": {"bsonType": "string"}}`), `{"a": 1, "b": 2}`, false},
		{s(`{"patternProperties": {"^x_": {"bsonType": "int"}}, "additionalProperties": false}`), `{"x_1": 1, "x_2": 2}`, true},
		{s(`{"patternProperties": {"^x_": {"bsonType": "int"}}, "additionalProperties": false}`), `{"x_1": "1"}`, false},
		{s(`{"patternProperties": {"^x_": {"bsonType": "int"}}, "additionalProperties": false}`), `{"y": 1}`, false},
		// minProperties / maxProperties.
		{s(`{"minProperties": 2}`), `{"a": 1}`, false},
		{s(`{"minProperties": 2, "maxProperties": 2}`), `{"a": 1, "b": 2}`, true},
		{s(`{"maxProperties": 1}`), `{"a": 1, "b": 2}`, false},
		// items, additionalItems, minItems, maxItems, uniqueItems.
		{s(`{"properties": {"a": {"items": {"bsonType": "int"}}}}`), `{"a": [1, 2]}`, true},
		{s(`{"properties": {"a": {"items": {"bsonType": "int"}}}}`), `{"a": [1, "2"]}`, false},
		{s(`{"properties": {"a": {"items": {"bsonType": "int"}}}}`), `{"a": "not an array"}`, true},
		{s(`{"properties": {"a": {"items": [{"bsonType": "int"}, {"bsonType": "string"}]}}}`), `{"a": [1, "x", true]}`, true},
		{s(`{"properties": {"a": {"items": [{"bsonType": "int"}, {"bsonType": "string"}], "additionalItems": false}}}`), `{"a": [1, "x", true]}`, false},
		{s(`{"properties": {"a": {"items": [{"bsonType": "int"}], "additionalItems": {"bsonType": "bool"}}}}`), `{"a": [1, true, false]}`, true},
		{s(`{"properties": {"a": {"items": [{"bsonType": "int"}], "additionalItems": {"bsonType": "bool"}}}}`), `{"a": [1, true, 3]}`, false},
		{s(`{"properties": {"a": {"minItems": 2, "maxItems": 3}}}`), `{"a": [1]}`, false},
		{s(`{"properties": {"a": {"minItems": 2, "maxItems": 3}}}`), `{"a": [1, 2, 3]}`, true},
		{s(`{"properties": {"a": {"minItems": 2, "maxItems": 3}}}`), `{"a": [1, 2, 3, 4]}`, false},
		{s(`{"properties": {"a": {"uniqueItems": true}}}`), `{"a": [1, 2, 3]}`, true},
		{s(`{"properties": {"a": {"uniqueItems": true}}}`), `{"a": [1, 2, 1.0]}`, false},
		{s(`{"properties": {"a": {"uniqueItems": true}}}`), `{"a": [{"x": 1, "y": 2}, {"y": 2, "x": 1}]}`, false},
		{s(`{"properties": {"a": {"uniqueItems": false}}}`), `{"a": [1, 1]}`, true},
		// enum.
		{s(`{"properties": {"a": {"enum": ["red", "green", 3]}}}`), `{"a": "green"}`, true},
		{s(`{"properties": {"a": {"enum": ["red", "green", 3]}}}`), `{"a": 3.0}`, true},
		{s(`{"properties": {"a": {"enum": ["red", "green", 3]}}}`), `{"a": "blue"}`, false},
		{s(`{"properties": {"a": {"enum": [{"x": 1, "y": 2}]}}}`), `{"a": {"y": 2, "x": 1}}`, true},
		{s(`{"properties": {"a": {"enum": [[1, 2]]}}}`), `{"a": [2, 1]}`, false},
		// minimum / maximum / exclusive.
		{s(`{"properties": {"a": {"minimum": 5}}}`), `{"a": 5}`, true},
		{s(`{"properties": {"a": {"minimum": 5, "exclusiveMinimum": true}}}`), `{"a": 5}`, false},
		{s(`{"properties": {"a": {"minimum": 5, "exclusiveMinimum": false}}}`), `{"a": 5}`, true},
		{s(`{"properties": {"a": {"maximum": 5}}}`), `{"a": {"$numberDecimal": "5.0000001"}}`, false},
		{s(`{"properties": {"a": {"maximum": 5, "exclusiveMaximum": true}}}`), `{"a": 4.999}`, true},
		{s(`{"properties": {"a": {"maximum": 5, "exclusiveMaximum": true}}}`), `{"a": 5}`, false},
		{s(`{"properties": {"a": {"minimum": 5}}}`), `{"a": "1"}`, true}, // only numbers are constrained
		// multipleOf.
		{s(`{"properties": {"a": {"multipleOf": 3}}}`), `{"a": 9}`, true},
		{s(`{"properties": {"a": {"multipleOf": 3}}}`), `{"a": 10}`, false},
		{s(`{"properties": {"a": {"multipleOf": 0.1}}}`), `{"a": 0.3}`, true},
		{s(`{"properties": {"a": {"multipleOf": {"$numberDecimal": "0.01"}}}}`), `{"a": {"$numberDecimal": "1.23"}}`, true},
		{s(`{"properties": {"a": {"multipleOf": 2}}}`), `{"a": "x"}`, true},
		// minLength / maxLength count code points; pattern.
		{s(`{"properties": {"a": {"minLength": 2, "maxLength": 3}}}`), `{"a": "héé"}`, true},
		{s(`{"properties": {"a": {"maxLength": 2}}}`), `{"a": "héé"}`, false},
		{s(`{"properties": {"a": {"minLength": 2}}}`), `{"a": "h"}`, false},
		{s(`{"properties": {"a": {"pattern": "^[a-z]+$"}}}`), `{"a": "abc"}`, true},
		{s(`{"properties": {"a": {"pattern": "^[a-z]+$"}}}`), `{"a": "abc1"}`, false},
		{s(`{"properties": {"a": {"pattern": "^[a-z]+$"}}}`), `{"a": 1}`, true},
		// allOf / anyOf / oneOf / not.
		{s(`{"properties": {"a": {"allOf": [{"minimum": 1}, {"maximum": 3}]}}}`), `{"a": 2}`, true},
		{s(`{"properties": {"a": {"allOf": [{"minimum": 1}, {"maximum": 3}]}}}`), `{"a": 4}`, false},
		{s(`{"properties": {"a": {"anyOf": [{"bsonType": "string"}, {"minimum": 3}]}}}`), `{"a": 4}`, true},
		{s(`{"properties": {"a": {"anyOf": [{"bsonType": "string"}, {"bsonType": "bool"}]}}}`), `{"a": 4}`, false},
		{s(`{"properties": {"a": {"oneOf": [{"minimum": 1}, {"maximum": 3}]}}}`), `{"a": 2}`, false},
		{s(`{"properties": {"a": {"oneOf": [{"minimum": 1}, {"maximum": 3}]}}}`), `{"a": 5}`, true},
		{s(`{"properties": {"a": {"not": {"bsonType": "string"}}}}`), `{"a": 5}`, true},
		{s(`{"properties": {"a": {"not": {"bsonType": "string"}}}}`), `{"a": "x"}`, false},
		// dependencies.
		{s(`{"dependencies": {"card": ["billing"]}}`), `{"card": 1, "billing": 2}`, true},
		{s(`{"dependencies": {"card": ["billing"]}}`), `{"card": 1}`, false},
		{s(`{"dependencies": {"card": ["billing"]}}`), `{"billing": 1}`, true},
		{s(`{"dependencies": {"card": {"required": ["billing"]}}}`), `{"card": 1}`, false},
		{s(`{"dependencies": {"card": {"properties": {"billing": {"bsonType": "string"}}}}}`), `{"card": 1, "billing": 2}`, false},
		// $jsonSchema combines with other clauses.
		{`{"$jsonSchema": {"required": ["a"]}, "a": {"$gt": 1}}`, `{"a": 2}`, true},
		{`{"$or": [{"$jsonSchema": {"required": ["a"]}}, {"b": 1}]}`, `{"b": 1}`, true},
	})
}

func TestJSONSchemaErrors(t *testing.T) {
	s := func(schema string) string { return `{"$jsonSchema": ` + schema + `}` }
	cases := []struct{ filter, want string }{
		{s(`{"format": "email"}`), "$jsonSchema keyword 'format' is not currently supported"},
		{s(`{"properties": {"a": {"$ref": "#/x"}}}`), "a: $jsonSchema keyword '$ref' is not currently supported"},
		{s(`{"default": 1}`), "$jsonSchema keyword 'default' is not currently supported"},
		{s(`{"definitions": {}}`), "$jsonSchema keyword 'definitions' is not currently supported"},
		{s(`{"foo": 1}`), "Unknown $jsonSchema keyword: foo"},
		{s(`{"type": "integer"}`), "$jsonSchema type 'integer' is not currently supported."},
		{s(`{"type": "int"}`), "Unknown type name alias: int"},
		{s(`{"bsonType": "integer"}`), "Unknown type name alias: integer"},
		{s(`{"type": "object", "bsonType": "object"}`), "Cannot specify both $jsonSchema keywords 'type' and 'bsonType'"},
		{s(`{"type": 1}`), "must be either a string or an array of strings"},
		{s(`{"required": []}`), "'required' cannot be an empty array"},
		{s(`{"required": ["a", "a"]}`), "'required' array cannot contain duplicate values"},
		{s(`{"required": "a"}`), "'required' must be an array"},
		{s(`{"properties": 1}`), "'properties' must be an object"},
		{s(`{"properties": {"a": 1}}`), "Nested schema for $jsonSchema property 'a' must be an object"},
		{s(`{"minItems": -1}`), "'minItems' must be a non-negative integer"},
		{s(`{"minLength": 1.5}`), "'minLength' must be representable as a long integer"},
		{s(`{"exclusiveMinimum": true}`), "'minimum' must be a present if exclusiveMinimum is present"},
		{s(`{"minimum": "1"}`), "'minimum' must be a number"},
		{s(`{"multipleOf": 0}`), "'multipleOf' must have a positive value"},
		{s(`{"enum": []}`), "'enum' cannot be an empty array"},
		{s(`{"enum": [1, 1.0]}`), "'enum' array cannot contain duplicate values"},
		{s(`{"anyOf": []}`), "'anyOf' must be a nonempty array"},
		{s(`{"not": 1}`), "'not' must be an object"},
		{s(`{"pattern": "(?<=a"}`), "invalid regular expression"},
		{s(`{"title": 1}`), "'title' must be a string"},
		{s(`1`), "$jsonSchema must be an object"},
		{`{"a": {"$elemMatch": {"$jsonSchema": {}}}}`, "$jsonSchema can only be applied to the top-level document"},
	}
	for _, tc := range cases {
		_, err := Compile(ej(t, tc.filter), Options{})
		var ce *CompileError
		if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%s) = %v, want a CompileError containing %q", tc.filter, err, tc.want)
		}
	}
}
