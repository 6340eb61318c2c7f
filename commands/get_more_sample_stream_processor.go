package commands

import (
	"context"

	"github.com/spi-streams/spi/processor"
)

// getMoreSampleStreamProcessor is {getMoreSampleStreamProcessor: <name>, cursorId (or the older
// cursorID), batchSize?} → {ok: 1, cursorId: <long; 0 once exhausted>, messages: [...],
// nextBatch: [...]}: messages for mongosh and Atlas, nextBatch for the driver spec (spec
// §13.3). It waits up to about a second for documents and returns at most batchSize (default
// 5); the cursor ends at its limit, at 40 MB, or when the processor stops.
func getMoreSampleStreamProcessor(ctx context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	v, err := call.Body.LookupErr("cursorId")
	if err != nil {
		v, err = call.Body.LookupErr("cursorID")
	}
	if err != nil {
		return Errorf(CodeFailedToParse, "%s.cursorId is required", call.Name)
	}
	id, ok := wholeNumber(v)
	if !ok {
		return Errorf(CodeTypeMismatch, "%s.cursorId must be a number, not %s", call.Name, typeName(v.Type))
	}
	batch, _, err := optInt(call, "batchSize", 1, processor.MaxSampleBatch)
	if err != nil {
		return err
	}
	docs, next, err := m.GetMore(ctx, workspaceOf(call.Conn), name, id, int(batch))
	if err != nil {
		return procErr(err)
	}
	r.Int64("cursorId", next)
	for _, field := range []string{"messages", "nextBatch"} {
		r.Array(field)
		for i, d := range docs {
			r.Document(arrayKey(i), d)
		}
		r.EndDoc()
	}
	return nil
}
