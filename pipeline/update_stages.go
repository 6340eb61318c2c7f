package pipeline

import (
	"fmt"

	"go.mongodb.org/mongo-driver/v2/bson"
)

// updateStages are the stages MongoDB allows in a pipeline-style update, and so in a $merge
// whenMatched pipeline (MongoDB manual, "Updates with Aggregation Pipeline", and $merge,
// whenMatched <pipeline>).
var updateStages = map[string]bool{"$addFields": true, "$set": true, "$project": true, "$unset": true, "$replaceRoot": true, "$replaceWith": true}

// ParseUpdateStages compiles a pipeline-style update (a BSON array of stages, each one of
// $addFields, $set, $project, $unset, $replaceRoot or $replaceWith), as $merge's whenMatched
// pipeline takes it. Errors name the stage's index and the reason. Variables such as $$new must
// have been replaced by literals before (the expression compiler refuses an unbound variable).
func ParseUpdateStages(pipeline bson.RawValue) ([]Stage, error) {
	arr, ok := pipeline.ArrayOK()
	if !ok {
		return nil, fmt.Errorf("must be an array of stages")
	}
	vals, err := arr.Values()
	if err != nil {
		return nil, fmt.Errorf("must be an array of stages")
	}
	if len(vals) == 0 {
		return nil, fmt.Errorf("must hold at least one stage")
	}
	out := make([]Stage, 0, len(vals))
	for i, v := range vals {
		name, spec, err := stageOf(i, v)
		if err != nil {
			return nil, err
		}
		if !updateStages[name] {
			return nil, fmt.Errorf("stage %d: %s is not allowed in an update pipeline; use $addFields, $set, $project, $unset, $replaceRoot or $replaceWith", i, name)
		}
		st, err := stages[name].parse(spec)
		if err != nil {
			return nil, fmt.Errorf("stage %d: %w", i, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// ApplyStages runs stages (from ParseUpdateStages) over doc and returns the one document they
// produce, in new memory. An error is the stage's per-document failure (an expression error, a
// $replaceRoot that is not a document).
func ApplyStages(stages []Stage, doc bson.Raw) (bson.Raw, error) {
	d := &Doc{Raw: doc}
	for _, st := range stages {
		var out *Doc
		if err := st.Process(d, nil, func(o *Doc) { out = o }); err != nil {
			return nil, err
		}
		if out == nil {
			return nil, fmt.Errorf("%s produced no document", st.Name())
		}
		d = out
	}
	return append(bson.Raw(nil), d.Raw...), nil
}
