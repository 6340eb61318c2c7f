// Package ejson transcodes between JSON / MongoDB Extended JSON v2 text and BSON in one pass,
// without reflection and without an intermediate tree.
//
// AppendBSON turns one JSON, relaxed or canonical Extended JSON document into BSON (the Kafka
// `$source` converts each payload once with it); AppendJSON writes a BSON document as
// relaxedJson, canonicalJson or basicJson text (the Kafka `$emit` `config.outputFormat`).
//
// Sources: the Extended JSON v2 specification (mongodb/specifications,
// source/extended-json/extended-json.md: "Conversion table", "Parsers", "Special rules for
// parsing JSON numbers", "Special rules for parsing $uuid fields"), RFC 8259 (JSON), the BSON
// specification (bsonspec.org), the Atlas Stream Processing `$emit` page (output formats and
// `dateFormat`). Where the specification leaves room, the parser agrees with the Go driver's
// `bson.UnmarshalExtJSON(data, false, &raw)` byte for byte on every input both accept
// (FuzzAppendBSON holds that), and AppendJSON's relaxed and canonical output equals
// `bson.MarshalExtJSON(doc, canonical, false)`.
package ejson
