package commands

import (
	"context"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/match"
)

// listStreamProcessors is sp.listStreamProcessors(filter): {listStreamProcessors: 1, filter:
// <query or null>} → {ok: 1, streamProcessors: [{id, name, pipeline, state, tier, errorMsg, [errorCode, errorRetryable],
// lastModified, lastStateChange, options}]}. The filter is the full query language over those
// documents, e.g. {name: {$regex: '^test'}, 'options.dlq.connectionName': 'c'} (spec §4.1).
func listStreamProcessors(_ context.Context, call *Call, r *Reply) error {
	m, err := manager(call)
	if err != nil {
		return err
	}
	matcher, err := filterArg(call)
	if err != nil {
		return err
	}
	list := m.List(workspaceOf(call.Conn))
	docs := make([]bson.Raw, len(list))
	for i, info := range list {
		docs[i] = processorDoc(call, info.Processor)
	}
	return appendMatching(call, r, "streamProcessors", docs, matcher)
}

// appendMatching appends the documents the filter matches as an array.
func appendMatching(call *Call, r *Reply, field string, docs []bson.Raw, matcher match.Matcher) error {
	r.Array(field)
	i := 0
	for _, doc := range docs {
		if matcher != nil {
			ok, err := matcher.Match(doc, nil)
			if err != nil {
				return Errorf(CodeBadValue, "%s.filter: %v", call.Name, err)
			}
			if !ok {
				continue
			}
		}
		r.Document(arrayKey(i), doc)
		i++
	}
	r.EndDoc()
	return nil
}

// filterArg compiles the filter field: absent or null matches everything.
func filterArg(call *Call) (match.Matcher, error) {
	v, err := call.Body.LookupErr("filter")
	if err != nil || v.Type == bson.TypeNull {
		return nil, nil
	}
	doc, ok := v.DocumentOK()
	if !ok {
		return nil, Errorf(CodeTypeMismatch, "%s.filter must be an object or null, not %s", call.Name, typeName(v.Type))
	}
	m, err := match.Compile(doc, match.Options{})
	if err != nil {
		return nil, Errorf(CodeBadValue, "%s.filter: %v", call.Name, err)
	}
	return m, nil
}
