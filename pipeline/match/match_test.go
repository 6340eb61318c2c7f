package match

import (
	"errors"
	"strings"
	"testing"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

func TestEquality(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{}`, `{"a": 1}`, true},
		{`{"a": 1}`, `{"a": 1}`, true},
		{`{"a": 1}`, `{"a": 2}`, false},
		{`{"a": 1}`, `{}`, false},
		// Numbers compare by value across types.
		{`{"a": 1}`, `{"a": 1.0}`, true},
		{`{"a": 1}`, `{"a": {"$numberLong": "1"}}`, true},
		{`{"a": 1}`, `{"a": {"$numberDecimal": "1.000"}}`, true},
		{`{"a": {"$numberDecimal": "0.1"}}`, `{"a": 0.1}`, false},
		{`{"a": {"$numberLong": "9007199254740993"}}`, `{"a": 9007199254740992.0}`, false},
		{`{"a": {"$numberLong": "9007199254740993"}}`, `{"a": {"$numberDecimal": "9007199254740993"}}`, true},
		{`{"a": {"$numberDouble": "NaN"}}`, `{"a": {"$numberDecimal": "NaN"}}`, true},
		// Type bracketing: a number never equals a string.
		{`{"a": 1}`, `{"a": "1"}`, false},
		{`{"a": "x"}`, `{"a": "x"}`, true},
		{`{"a": true}`, `{"a": 1}`, false},
		// Arrays: any element, or the whole array.
		{`{"a": 1}`, `{"a": [3, 1]}`, true},
		{`{"a": [3, 1]}`, `{"a": [3, 1]}`, true},
		{`{"a": [1, 3]}`, `{"a": [3, 1]}`, false},
		{`{"a": [1]}`, `{"a": [[1], 2]}`, true},
		{`{"a": 1}`, `{"a": [[1]]}`, false},
		{`{"a": []}`, `{"a": []}`, true},
		{`{"a": []}`, `{"a": [[]]}`, true},
		// Documents: whole-document equality, field order matters.
		{`{"a": {"b": 1, "c": 2}}`, `{"a": {"b": 1, "c": 2}}`, true},
		{`{"a": {"b": 1, "c": 2}}`, `{"a": {"c": 2, "b": 1}}`, false},
		{`{"a": {"b": 1}}`, `{"a": {"b": 1.0}}`, true},
		{`{"a": {"b": 1}}`, `{"a": {"b": 1, "c": 2}}`, false},
		{`{"a": {"$eq": {"b": 1}}}`, `{"a": [{"b": 1}]}`, true},
		{`{"a": {}}`, `{"a": {}}`, true},
		// DBRef-shaped documents are literals.
		{`{"a": {"$ref": "c", "$id": 1}}`, `{"a": {"$ref": "c", "$id": 1}}`, true},
		// Dates, including before 1970.
		{`{"d": {"$date": "1969-07-20T20:17:40Z"}}`, `{"d": {"$date": "1969-07-20T20:17:40Z"}}`, true},
		{`{"d": {"$lt": {"$date": "1970-01-01T00:00:00Z"}}}`, `{"d": {"$date": "1969-07-20T20:17:40Z"}}`, true},
		{`{"d": {"$gt": {"$date": "1960-01-01T00:00:00Z"}}}`, `{"d": {"$date": "1969-07-20T20:17:40Z"}}`, true},
		{`{"d": {"$gt": {"$date": "1969-12-31T00:00:00Z"}}}`, `{"d": {"$date": "1969-07-20T20:17:40Z"}}`, false},
		{`{"d": {"$gt": 5}}`, `{"d": {"$date": "1970-01-01T00:00:01Z"}}`, false},
		// Multiple fields are ANDed.
		{`{"a": 1, "b": 2}`, `{"a": 1, "b": 2}`, true},
		{`{"a": 1, "b": 2}`, `{"a": 1, "b": 3}`, false},
		// MinKey and MaxKey.
		{`{"a": {"$minKey": 1}}`, `{"a": {"$minKey": 1}}`, true},
		{`{"a": {"$lt": {"$maxKey": 1}}}`, `{"a": "anything"}`, true},
		{`{"a": {"$gt": {"$minKey": 1}}}`, `{"a": null}`, true},
		{`{"a": {"$gt": {"$maxKey": 1}}}`, `{"a": 5}`, false},
		{`{"a": {"$gte": {"$maxKey": 1}}}`, `{"a": {"$maxKey": 1}}`, true},
		// Regex values: a literal /re/ matches strings, $eq compares the regex itself.
		{`{"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}`, `{"a": "xyz"}`, true},
		{`{"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}`, `{"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}`, true},
		{`{"a": {"$eq": {"$regularExpression": {"pattern": "^x", "options": ""}}}}`, `{"a": "xyz"}`, false},
		{`{"a": {"$eq": {"$regularExpression": {"pattern": "^x", "options": ""}}}}`, `{"a": {"$regularExpression": {"pattern": "^x", "options": ""}}}`, true},
		// Strings and symbols compare alike.
		{`{"a": "x"}`, `{"a": {"$symbol": "x"}}`, true},
	})
}

func TestPaths(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a.b": 1}`, `{"a": {"b": 1}}`, true},
		{`{"a.b": 1}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{`{"a.b": 2}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{`{"a.b": 3}`, `{"a": [{"b": 1}, {"b": 2}]}`, false},
		{`{"a.b": 1}`, `{"a": [{"b": [0, 1]}]}`, true},
		{`{"a.b": [0, 1]}`, `{"a": [{"b": [0, 1]}]}`, true},
		{`{"a.b.c": 1}`, `{"a": [{"b": [{"c": 1}]}]}`, true},
		{`{"a.b.c": 1}`, `{"a": {"b": {"c": 1}}}`, true},
		// Arrays of arrays are not traversed implicitly.
		{`{"a.b": 1}`, `{"a": [[{"b": 1}]]}`, false},
		// Numeric components index arrays...
		{`{"a.0": 1}`, `{"a": [1, 2]}`, true},
		{`{"a.1": 1}`, `{"a": [1, 2]}`, false},
		{`{"a.0.b": 1}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{`{"a.1.b": 1}`, `{"a": [{"b": 1}, {"b": 2}]}`, false},
		{`{"a.0.0": 5}`, `{"a": [[5]]}`, true},
		{`{"a.0.b": 1}`, `{"a": [[{"b": 1}]]}`, true},
		// ...an element picked by index is not expanded...
		{`{"a.0": 5}`, `{"a": [[5]]}`, false},
		{`{"a.0": [5]}`, `{"a": [[5]]}`, true},
		// ...and also match fields named "0".
		{`{"a.0": 1}`, `{"a": {"0": 1}}`, true},
		{`{"a.0": 1}`, `{"a": [{"0": 1}]}`, true},
		{`{"a.0": {"0": 1}}`, `{"a": [{"0": 1}]}`, true},
		{`{"a.00": 1}`, `{"a": [1]}`, false},
		// A scalar in the middle of the path.
		{`{"a.b": 1}`, `{"a": 1}`, false},
		{`{"a.b": 1}`, `{"a": "b"}`, false},
	})
}

func TestNullAndMissing(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": null}`, `{"a": null}`, true},
		{`{"a": null}`, `{}`, true},
		{`{"a": null}`, `{"a": 0}`, false},
		{`{"a": null}`, `{"a": {"$undefined": true}}`, false}, // MongoDB 8.0
		{`{"a": null}`, `{"a": [1, null]}`, true},
		{`{"a": null}`, `{"a": [1, 2]}`, false},
		{`{"a": null}`, `{"a": []}`, false},
		{`{"a": {"$ne": null}}`, `{"a": 1}`, true},
		{`{"a": {"$ne": null}}`, `{}`, false},
		{`{"a": {"$ne": null}}`, `{"a": {"$undefined": true}}`, true},
		{`{"a": {"$ne": null}}`, `{"a": [1, null]}`, false},
		{`{"a": {"$gte": null}}`, `{}`, true},
		{`{"a": {"$lte": null}}`, `{"a": null}`, true},
		{`{"a": {"$gt": null}}`, `{"a": null}`, false},
		{`{"a": {"$lt": null}}`, `{"a": 1}`, false},
		{`{"a": {"$not": {"$gte": null}}}`, `{"a": 4}`, true},
		{`{"a": {"$in": [null, 4]}}`, `{}`, true},
		{`{"a": {"$in": [null, 4]}}`, `{"a": 4}`, true},
		{`{"a": {"$nin": [null, 4]}}`, `{"a": {}}`, true},
		{`{"a": {"$nin": [null, 4]}}`, `{}`, false},
		// Dotted paths.
		{`{"a.b": null}`, `{"a": {}}`, true},
		{`{"a.b": null}`, `{"a": 4}`, true},
		{`{"a.b": null}`, `{"a": null}`, true},
		{`{"a.b": null}`, `{"a": {"b": "hi"}}`, false},
		{`{"a.b": null}`, `{"a": [{"b": null}, {"b": 3}]}`, true},
		{`{"a.b": null}`, `{"a": [{"b": 3}, {}]}`, true},
		{`{"a.b": null}`, `{"a": [{"b": 1}, {"b": 3}]}`, false},
		{`{"a.b": null}`, `{"a": [{"b": {"$undefined": true}}, {"b": 3}]}`, false},
		// Arrays with nothing to descend into make the subpath missing (SERVER-36681).
		{`{"a.b": null}`, `{"a": []}`, true},
		{`{"a.b": null}`, `{"a": [1, 2]}`, true},
		{`{"a.b": null}`, `{"a": [[]]}`, true},
		{`{"a.b": {"$ne": null}}`, `{"a": [1, 2]}`, false},
		{`{"a.b": {"$ne": null}}`, `{"a": [{"b": 1}]}`, true},
		{`{"a.b": {"$exists": false}}`, `{"a": [1, 2]}`, true},
		{`{"a.b": {"$exists": true}}`, `{"a": [1, 2]}`, false},
	})
}

func TestComparison(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": {"$gt": 1}}`, `{"a": 2}`, true},
		{`{"a": {"$gt": 1}}`, `{"a": 1}`, false},
		{`{"a": {"$gte": 1}}`, `{"a": 1.0}`, true},
		{`{"a": {"$lt": 1}}`, `{"a": 0.5}`, true},
		{`{"a": {"$lte": 1}}`, `{"a": {"$numberDecimal": "1.0000001"}}`, false},
		{`{"a": {"$gt": {"$numberDecimal": "0.1"}}}`, `{"a": 0.1}`, true}, // 0.1 as a double is above decimal 0.1
		{`{"a": {"$gt": 1}}`, `{"a": "2"}`, false},
		{`{"a": {"$lt": "b"}}`, `{"a": "a"}`, true},
		{`{"a": {"$lt": "b"}}`, `{"a": 1}`, false},
		{`{"a": {"$gt": 1}}`, `{}`, false},
		{`{"a": {"$gt": 1}}`, `{"a": [0, 5]}`, true},
		{`{"a": {"$gt": 1, "$lt": 5}}`, `{"a": [0, 10]}`, true}, // each bound by its own element
		{`{"a": {"$gt": 1, "$lt": 5}}`, `{"a": 7}`, false},
		{`{"a": {"$gt": [1]}}`, `{"a": [2]}`, true},
		{`{"a": {"$gt": {"b": 1}}}`, `{"a": {"b": 2}}`, true},
		{`{"a": {"$gt": {"b": 1}}}`, `{"a": 2}`, false},
		{`{"a": {"$gt": {"$numberDouble": "NaN"}}}`, `{"a": 1}`, false},
		{`{"a": {"$lt": {"$numberDouble": "NaN"}}}`, `{"a": 1}`, false},
		{`{"a": {"$lt": 1}}`, `{"a": {"$numberDouble": "NaN"}}`, false},
		{`{"a": {"$gte": {"$numberDouble": "NaN"}}}`, `{"a": {"$numberDouble": "NaN"}}`, true},
		{`{"a": {"$gt": {"$numberDouble": "-Infinity"}}}`, `{"a": -1e308}`, true},
		{`{"a": {"$gt": {"$numberLong": "9007199254740992"}}}`, `{"a": {"$numberLong": "9007199254740993"}}`, true},
		{`{"a": {"$gt": {"$timestamp": {"t": 1, "i": 1}}}}`, `{"a": {"$timestamp": {"t": 1, "i": 2}}}`, true},
		{`{"a": {"$gt": false}}`, `{"a": true}`, true},
		{`{"a": {"$ne": 1}}`, `{"a": [1, 2]}`, false},
		{`{"a": {"$ne": 1}}`, `{"a": [2, 3]}`, true},
		{`{"a": {"$ne": 1}}`, `{}`, true},
		{`{"a": {"$eq": 1}}`, `{"a": [1]}`, true},
	})
}

func TestIn(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": {"$in": [1, 2]}}`, `{"a": 2.0}`, true},
		{`{"a": {"$in": [1, 2]}}`, `{"a": 3}`, false},
		{`{"a": {"$in": [1, 2]}}`, `{"a": [3, 2]}`, true},
		{`{"a": {"$in": [[1, 2]]}}`, `{"a": [1, 2]}`, true},
		{`{"a": {"$in": []}}`, `{"a": 1}`, false},
		{`{"a": {"$in": ["1"]}}`, `{"a": 1}`, false},
		{`{"a": {"$in": [{"$regularExpression": {"pattern": "^ab", "options": "i"}}]}}`, `{"a": "ABc"}`, true},
		{`{"a": {"$in": [{"$regularExpression": {"pattern": "^ab", "options": ""}}, 5]}}`, `{"a": 5}`, true},
		{`{"a": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "x", {"b": 1}]}}`, `{"a": {"b": 1.0}}`, true},
		{`{"a": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "x", {"b": 1}]}}`, `{"a": {"$numberDecimal": "7.00"}}`, true},
		{`{"a": {"$in": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, "x", {"b": 1}]}}`, `{"a": 7.5}`, false},
		{`{"a": {"$nin": [1, 2]}}`, `{"a": 3}`, true},
		{`{"a": {"$nin": [1, 2]}}`, `{"a": [3, 1]}`, false},
		{`{"a": {"$nin": [1, 2]}}`, `{}`, true},
		{`{"a": {"$nin": [{"$regularExpression": {"pattern": "^s", "options": ""}}]}}`, `{"a": "str"}`, false},
	})
}

func TestExistsTypeMod(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": {"$exists": true}}`, `{"a": null}`, true},
		{`{"a": {"$exists": true}}`, `{}`, false},
		{`{"a": {"$exists": false}}`, `{}`, true},
		{`{"a": {"$exists": 0}}`, `{}`, true},
		{`{"a": {"$exists": 1}}`, `{"a": []}`, true},
		{`{"a.b": {"$exists": true}}`, `{"a": [{"c": 1}, {"b": 1}]}`, true},
		{`{"a.1": {"$exists": true}}`, `{"a": [5]}`, false},

		{`{"a": {"$type": "string"}}`, `{"a": "x"}`, true},
		{`{"a": {"$type": 2}}`, `{"a": "x"}`, true},
		{`{"a": {"$type": 2.0}}`, `{"a": 1}`, false},
		{`{"a": {"$type": "number"}}`, `{"a": {"$numberDecimal": "1"}}`, true},
		{`{"a": {"$type": "number"}}`, `{"a": "1"}`, false},
		{`{"a": {"$type": ["string", "int"]}}`, `{"a": 1}`, true},
		{`{"a": {"$type": "long"}}`, `{"a": {"$numberLong": "1"}}`, true},
		{`{"a": {"$type": "double"}}`, `{"a": 1}`, false},
		{`{"a": {"$type": "array"}}`, `{"a": []}`, true},
		{`{"a": {"$type": "array"}}`, `{"a": [1]}`, true},
		{`{"a": {"$type": "array"}}`, `{"a": 1}`, false},
		{`{"a": {"$type": "int"}}`, `{"a": ["x", 1]}`, true},
		{`{"a": {"$type": "array"}}`, `{"a": [[1]]}`, true},
		{`{"a": {"$type": "null"}}`, `{}`, false},
		{`{"a": {"$type": "null"}}`, `{"a": null}`, true},
		{`{"a": {"$type": -1}}`, `{"a": {"$minKey": 1}}`, true},
		{`{"a": {"$type": "maxKey"}}`, `{"a": {"$maxKey": 1}}`, true},
		{`{"a": {"$type": "date"}}`, `{"a": {"$date": "1950-01-01T00:00:00Z"}}`, true},
		{`{"a": {"$type": "object"}}`, `{"a": {}}`, true},
		{`{"a": {"$type": "binData"}}`, `{"a": {"$binary": {"base64": "AQ==", "subType": "00"}}}`, true},

		{`{"a": {"$mod": [4, 0]}}`, `{"a": 8}`, true},
		{`{"a": {"$mod": [4, 1]}}`, `{"a": 9.9}`, true},
		{`{"a": {"$mod": [4, -1]}}`, `{"a": -5}`, true},
		{`{"a": {"$mod": [4, 0]}}`, `{"a": "8"}`, false},
		{`{"a": {"$mod": [4, 0]}}`, `{"a": [1, 12]}`, true},
		{`{"a": {"$mod": [4.5, 0]}}`, `{"a": 8}`, true},
		{`{"a": {"$mod": [-1, 0]}}`, `{"a": {"$numberLong": "-9223372036854775808"}}`, true},
		{`{"a": {"$mod": [3, 1]}}`, `{"a": {"$numberDecimal": "7.9"}}`, true},
		{`{"a": {"$mod": [3, 0]}}`, `{"a": {"$numberDouble": "NaN"}}`, false},
	})
}

func TestRegex(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": {"$regex": "^ab"}}`, `{"a": "abc"}`, true},
		{`{"a": {"$regex": "^ab"}}`, `{"a": "cab"}`, false},
		{`{"a": {"$regex": "^AB", "$options": "i"}}`, `{"a": "abc"}`, true},
		{`{"a": {"$options": "i", "$regex": "^AB"}}`, `{"a": "abc"}`, true},
		{`{"a": {"$regex": {"$regularExpression": {"pattern": "^AB", "options": "i"}}}}`, `{"a": "abc"}`, true},
		{`{"a": {"$regex": "^b", "$options": "m"}}`, `{"a": "a\nb"}`, true},
		{`{"a": {"$regex": "^b"}}`, `{"a": "a\nb"}`, false},
		{`{"a": {"$regex": "a.b", "$options": "s"}}`, `{"a": "a\nb"}`, true},
		{`{"a": {"$regex": "a.b"}}`, `{"a": "a\nb"}`, false},
		{`{"a": {"$regex": "a b # comment\n c", "$options": "x"}}`, `{"a": "abc"}`, true},
		{`{"a": {"$regex": "a[ ]b", "$options": "x"}}`, `{"a": "a b"}`, true},
		{`{"a": {"$regex": "^ab"}}`, `{"a": ["x", "abc"]}`, true},
		{`{"a": {"$regex": "1"}}`, `{"a": 1}`, false},
		{`{"a": {"$regex": "^x"}}`, `{"a": {"$symbol": "xy"}}`, true},
		{`{"a": {"$regex": "^é.$"}}`, `{"a": "éa"}`, true},
		{`{"a": {"$not": {"$regularExpression": {"pattern": "^a", "options": ""}}}}`, `{"a": "b"}`, true},
		{`{"a": {"$not": {"$regularExpression": {"pattern": "^a", "options": ""}}}}`, `{"a": "abc"}`, false},
		{`{"a": {"$not": {"$regex": "^a"}}}`, `{}`, true},
	})
}

func TestArrayOperators(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"a": {"$all": [1, 2]}}`, `{"a": [2, 3, 1]}`, true},
		{`{"a": {"$all": [1, 2]}}`, `{"a": [2, 3]}`, false},
		{`{"a": {"$all": [1]}}`, `{"a": 1}`, true},
		{`{"a": {"$all": []}}`, `{"a": [1]}`, false},
		{`{"a": {"$all": [[1, 2]]}}`, `{"a": [1, 2]}`, true},
		{`{"a": {"$all": [[1, 2]]}}`, `{"a": [[1, 2], 3]}`, true},
		{`{"a": {"$all": [{"$regularExpression": {"pattern": "^a", "options": ""}}, "bc"]}}`, `{"a": ["ab", "bc"]}`, true},
		{`{"a.b": {"$all": [1, 2]}}`, `{"a": [{"b": 1}, {"b": 2}]}`, true},
		{`{"a": {"$all": [{"$elemMatch": {"x": 1, "y": 2}}, {"$elemMatch": {"x": 3}}]}}`, `{"a": [{"x": 1, "y": 2}, {"x": 3}]}`, true},
		{`{"a": {"$all": [{"$elemMatch": {"x": 1, "y": 2}}, {"$elemMatch": {"x": 3}}]}}`, `{"a": [{"x": 1}, {"y": 2}, {"x": 3}]}`, false},

		{`{"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}}`, `{"a": [82, 90]}`, true},
		{`{"a": {"$elemMatch": {"$gte": 80, "$lt": 85}}}`, `{"a": [79, 90]}`, false},
		{`{"a": {"$elemMatch": {"$gte": 80}}}`, `{"a": 82}`, false},
		{`{"a": {"$elemMatch": {"$gt": 1}}}`, `{"a": [[2]]}`, false},
		{`{"a": {"$elemMatch": {"$ne": 1}}}`, `{"a": [1, 2]}`, true},
		{`{"a": {"$elemMatch": {"$ne": 1}}}`, `{"a": [1, 1]}`, false},
		{`{"a": {"$elemMatch": {"$eq": null}}}`, `{"a": [1, null]}`, true},
		{`{"a": {"$elemMatch": {"$not": {"$gt": 5}}}}`, `{"a": [9, 2]}`, true},
		{`{"a": {"$elemMatch": {"$size": 1}}}`, `{"a": [[1], 2]}`, true},
		{`{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1, "c": 2}]}`, true},
		{`{"a": {"$elemMatch": {"b": 1, "c": 2}}}`, `{"a": [{"b": 1}, {"c": 2}]}`, false},
		{`{"a": {"$elemMatch": {"b": {"$gt": 1}, "c": {"$lt": 2}}}}`, `{"a": [{"b": 2, "c": 1}]}`, true},
		{`{"a": {"$elemMatch": {"b": null}}}`, `{"a": [[]]}`, true},
		{`{"a": {"$elemMatch": {"b": null}}}`, `{"a": [1]}`, false},
		{`{"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}}`, `{"a": [{"c": 1}]}`, true},
		{`{"a": {"$elemMatch": {}}}`, `{"a": [1, {}]}`, true},
		{`{"a": {"$elemMatch": {}}}`, `{"a": [1]}`, false},
		{`{"a.b": {"$elemMatch": {"c": 1}}}`, `{"a": [{"b": [{"c": 1}]}]}`, true},
		{`{"a": {"$elemMatch": {"b.c": 1}}}`, `{"a": [{"b": [{"c": 1}]}]}`, true},
		{`{"a": {"$elemMatch": {"$elemMatch": {"$eq": 1}}}}`, `{"a": [[1]]}`, true},

		{`{"a": {"$size": 2}}`, `{"a": [1, 2]}`, true},
		{`{"a": {"$size": 2}}`, `{"a": [1]}`, false},
		{`{"a": {"$size": 0}}`, `{"a": []}`, true},
		{`{"a": {"$size": 0}}`, `{}`, false},
		{`{"a": {"$size": 1}}`, `{"a": [[1, 2]]}`, true},
		{`{"a": {"$size": 2}}`, `{"a": [[1, 2]]}`, false},
		{`{"a": {"$size": 1}}`, `{"a": "x"}`, false},
		{`{"a": {"$size": 2.0}}`, `{"a": [1, 2]}`, true},
		{`{"a.b": {"$size": 1}}`, `{"a": [{"b": [1]}, {"b": [1, 2]}]}`, true},
		{`{"a": {"$not": {"$size": 1}}}`, `{"a": [1, 2]}`, true},
	})
}

func TestLogical(t *testing.T) {
	runMatchCases(t, []matchCase{
		{`{"$and": [{"a": 1}, {"b": 2}]}`, `{"a": 1, "b": 2}`, true},
		{`{"$and": [{"a": 1}, {"b": 2}]}`, `{"a": 1}`, false},
		{`{"$or": [{"a": 1}, {"b": 2}]}`, `{"b": 2}`, true},
		{`{"$or": [{"a": 1}, {"b": 2}]}`, `{"c": 2}`, false},
		{`{"$or": [{"a": 1}]}`, `{"a": 1}`, true},
		{`{"$nor": [{"a": 1}, {"b": 2}]}`, `{"c": 2}`, true},
		{`{"$nor": [{"a": 1}, {"b": 2}]}`, `{"a": 1}`, false},
		{`{"$and": [{}]}`, `{"a": 1}`, true},
		{`{"$or": [{"$and": [{"a": 1}, {"b": 1}]}, {"c": 1}]}`, `{"a": 1, "b": 1}`, true},
		{`{"a": {"$not": {"$gt": 5}}}`, `{"a": 3}`, true},
		{`{"a": {"$not": {"$gt": 5}}}`, `{"a": 7}`, false},
		{`{"a": {"$not": {"$gt": 5}}}`, `{}`, true},
		{`{"a": {"$not": {"$gt": 5}}}`, `{"a": "x"}`, true},
		{`{"a": {"$not": {"$gt": 1, "$lt": 5}}}`, `{"a": [0, 10]}`, false},
		{`{"a": {"$not": {"$gt": 1, "$lt": 5}}}`, `{"a": 7}`, true},
		{`{"$comment": "ignored", "a": 1}`, `{"a": 1}`, true},
		{`{"$alwaysFalse": 1}`, `{"a": 1}`, false},
		{`{"$alwaysTrue": 1}`, `{"a": 1}`, true},
	})
}

func TestBits(t *testing.T) {
	runMatchCases(t, []matchCase{
		// 54 = 0b110110
		{`{"a": {"$bitsAllSet": [1, 5]}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAllSet": [0, 1]}}`, `{"a": 54}`, false},
		{`{"a": {"$bitsAllSet": 50}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAnySet": [0, 1]}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAnySet": 9}}`, `{"a": 54}`, false},
		{`{"a": {"$bitsAllClear": [0, 3]}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAllClear": [0, 1]}}`, `{"a": 54}`, false},
		{`{"a": {"$bitsAnyClear": [0, 1]}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAnyClear": [1, 2]}}`, `{"a": 54}`, false},
		{`{"a": {"$bitsAllSet": [1, 5]}}`, `{"a": 54.0}`, true},
		{`{"a": {"$bitsAllSet": [1, 5]}}`, `{"a": {"$numberDecimal": "54"}}`, true},
		{`{"a": {"$bitsAllSet": [1]}}`, `{"a": 54.5}`, false},
		{`{"a": {"$bitsAllSet": [1]}}`, `{"a": "54"}`, false},
		// Negative numbers are sign-extended.
		{`{"a": {"$bitsAllSet": [0, 63, 200]}}`, `{"a": -1}`, true},
		{`{"a": {"$bitsAllClear": [200]}}`, `{"a": 5}`, true},
		// binData: little-endian bytes; 0x36 = 54.
		{`{"a": {"$bitsAllSet": [1, 5]}}`, `{"a": {"$binary": {"base64": "Ng==", "subType": "00"}}}`, true},
		{`{"a": {"$bitsAllClear": [9]}}`, `{"a": {"$binary": {"base64": "Ng==", "subType": "00"}}}`, true},
		{`{"a": {"$bitsAllSet": {"$binary": {"base64": "Ng==", "subType": "00"}}}}`, `{"a": 54}`, true},
		{`{"a": {"$bitsAnySet": {"$binary": {"base64": "AAE=", "subType": "00"}}}}`, `{"a": 256}`, true},
		{`{"a": {"$bitsAllSet": []}}`, `{"a": 0}`, true},
		{`{"a": {"$bitsAnySet": []}}`, `{"a": 7}`, false},
		{`{"a": {"$bitsAnySet": [0]}}`, `{"a": [2, 3]}`, true},
	})
}

func TestExpr(t *testing.T) {
	var calls int
	opts := Options{Expr: func(v bson.RawValue) (func(bson.Raw, any) (bson.RawValue, error), error) {
		field, ok := v.StringValueOK()
		if !ok {
			return nil, errors.New("expression must be a string")
		}
		return func(doc bson.Raw, ctx any) (bson.RawValue, error) {
			calls++
			if ctx != "ctx" {
				t.Errorf("ctx not passed through: %v", ctx)
			}
			if field == "boom" {
				return bson.RawValue{}, errors.New("boom")
			}
			return doc.Lookup(field), nil
		}, nil
	}}
	cases := []struct {
		filter, doc string
		want        bool
		wantErr     bool
	}{
		{`{"$expr": "a"}`, `{"a": 1}`, true, false},
		{`{"$expr": "a"}`, `{"a": 0}`, false, false},
		{`{"$expr": "a"}`, `{}`, false, false},
		{`{"$expr": "a"}`, `{"a": ""}`, true, false},
		{`{"$expr": "boom"}`, `{}`, false, true},
		{`{"b": 1, "$expr": "a"}`, `{"a": 1, "b": 2}`, false, false},
		{`{"$or": [{"$expr": "a"}, {"b": 1}]}`, `{"b": 1}`, true, false},
		{`{"$nor": [{"$expr": "boom"}]}`, `{}`, false, true},
	}
	for _, tc := range cases {
		m, err := Compile(ej(t, tc.filter), opts)
		if err != nil {
			t.Fatalf("Compile(%s): %v", tc.filter, err)
		}
		got, err := m.Match(ej(t, tc.doc), "ctx")
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("%s on %s: got %v, %v; want %v, error %v", tc.filter, tc.doc, got, err, tc.want, tc.wantErr)
		}
	}
	if calls == 0 {
		t.Error("evaluator never called")
	}
	if _, err := Compile(ej(t, `{"$expr": 1}`), opts); err == nil || !strings.Contains(err.Error(), "expression must be a string") {
		t.Errorf("expr compile error not reported: %v", err)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct{ filter, want string }{
		{`{"a": {"$foo": 1}}`, "a: unknown operator: $foo"},
		{`{"a": {"$gt": 1, "b": 1}}`, "a: unknown operator: b"},
		{`{"$foo": 1}`, "unknown top level operator: $foo"},
		{`{"a.b": {"$in": 1}}`, "a.b: $in needs an array"},
		{`{"a": {"$nin": 1}}`, "a: $nin needs an array"},
		{`{"a": {"$in": [{"$gt": 1}]}}`, "a: cannot nest $ under $in"},
		{`{"a": {"$regex": 1}}`, "a: $regex has to be a string"},
		{`{"a": {"$options": "i"}}`, "a: $options needs a $regex"},
		{`{"a": {"$regex": "x", "$options": "z"}}`, "a: $regex: invalid flag in regex options: z"},
		{`{"a": {"$regex": {"$regularExpression": {"pattern": "x", "options": "i"}}, "$options": "m"}}`, "options set in both $regex and $options"},
		{`{"a": {"$regex": "(?=x"}}`, "invalid regular expression"},
		{`{"a": {"$regex": "a{2,1}"}}`, "invalid regular expression"},
		{`{"a": {"$regex": "(a"}}`, "invalid regular expression"},
		{`{"$and": []}`, "$and/$or/$nor must be a nonempty array"},
		{`{"$or": 1}`, "$or must be an array"},
		{`{"$nor": [1]}`, "$or/$and/$nor entries need to be full objects"},
		{`{"a": {"$size": "1"}}`, "a: $size needs a number"},
		{`{"a": {"$size": 1.5}}`, "a: $size must be a whole number"},
		{`{"a": {"$size": -1}}`, "$size may not be negative"},
		{`{"a": {"$mod": 1}}`, "malformed mod, needs to be an array"},
		{`{"a": {"$mod": [1]}}`, "malformed mod, not enough elements"},
		{`{"a": {"$mod": [1, 2, 3]}}`, "malformed mod, too many elements"},
		{`{"a": {"$mod": ["1", 2]}}`, "malformed mod, divisor not a number"},
		{`{"a": {"$mod": [0, 2]}}`, "divisor cannot be 0"},
		{`{"a": {"$mod": [{"$numberDouble": "NaN"}, 2]}}`, "divisor value is invalid"},
		{`{"a": {"$type": "foo"}}`, "a: $type: unknown type name alias: foo"},
		{`{"a": {"$type": "missing"}}`, "unknown type name alias: missing"},
		{`{"a": {"$type": 42}}`, "Invalid numerical type code: 42"},
		{`{"a": {"$type": true}}`, "type must be represented as a number or a string"},
		{`{"a": {"$type": []}}`, "$type must match at least one type"},
		{`{"a": {"$all": 1}}`, "$all needs an array"},
		{`{"a": {"$all": [{"$gt": 1}]}}`, "no $ expressions in $all"},
		{`{"a": {"$all": [{"$elemMatch": {"b": 1}}, 1]}}`, "$all/$elemMatch has to be consistent"},
		{`{"a": {"$elemMatch": 1}}`, "$elemMatch needs an Object"},
		{`{"a": {"$elemMatch": {"$expr": 1}}}`, "$expr can only be applied to the top-level document"},
		{`{"a": {"$not": 1}}`, "$not needs a regex or a document"},
		{`{"a": {"$not": {}}}`, "$not cannot be empty"},
		{`{"a": {"$not": {"b": 1}}}`, "unknown operator: b"},
		{`{"a": {"$eq": {"$undefined": true}}}`, "cannot compare to undefined"},
		{`{"$expr": {"$eq": [1, 1]}}`, "$expr is not available here"},
		{`{"a": {"$near": [0, 0]}}`, "a: $near is not supported in stream processing"},
		{`{"a": {"$nearSphere": [0, 0]}}`, "$nearSphere is not supported in stream processing"},
		{`{"a": {"$geoWithin": {}}}`, "$geoWithin is not supported in stream processing"},
		{`{"a": {"$geoIntersects": {}}}`, "$geoIntersects is not supported in stream processing"},
		{`{"$where": "true"}`, "$where is not supported in stream processing"},
		{`{"$text": {"$search": "x"}}`, "$text is not supported in stream processing"},
		{`{"a": {"$bitsAllSet": -1}}`, "non-negative bitmask"},
		{`{"a": {"$bitsAllSet": [-1]}}`, "bit positions must be >= 0"},
		{`{"a": {"$bitsAllSet": "x"}}`, "takes an Array, a number, or a BinData"},
		{`{"$alwaysTrue": 2}`, "$alwaysTrue must be an integer value of 1"},
	}
	for _, tc := range cases {
		_, err := Compile(ej(t, tc.filter), Options{})
		if err == nil {
			t.Errorf("Compile(%s) succeeded, want error %q", tc.filter, tc.want)
			continue
		}
		var ce *CompileError
		if !errors.As(err, &ce) {
			t.Errorf("Compile(%s) error %T is not a *CompileError", tc.filter, err)
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Compile(%s) = %q, want it to contain %q", tc.filter, err, tc.want)
		}
	}
	if _, err := Compile(bson.Raw{1, 2, 3}, Options{}); err == nil {
		t.Error("invalid BSON accepted")
	}
}

func TestDeepNesting(t *testing.T) {
	f := `{"a": 1}`
	for range 150 {
		f = `{"$and": [` + f + `]}`
	}
	if _, err := Compile(ej(t, f), Options{}); err == nil || !strings.Contains(err.Error(), "depth limit") {
		t.Errorf("deep filter: %v", err)
	}
}

func TestMatchValueOf(t *testing.T) {
	// value.Of builds operands; a filter is just a document holding them.
	f, _ := bson.Marshal(bson.D{{Key: "n", Value: bson.D{{Key: "$gte", Value: value.Of(int64(10))}}}})
	m, err := Compile(f, Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, _ := bson.Marshal(bson.D{{Key: "n", Value: 10.0}})
	if ok, _ := m.Match(d, nil); !ok {
		t.Error("10.0 >= int64(10) should match")
	}
}
