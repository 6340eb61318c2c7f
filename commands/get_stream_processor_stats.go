package commands

import (
	"context"
	"math"
	"time"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline"
)

// getStreamProcessorStats is sp.x.stats({scale, verbose}) (flat, as mongosh sends it) or
// {options: {scale, verbose}} (driver spec):
//
//	{ok: 1, ns: "<groupId>.<workspace>.<name>", name, state, tier, pipeline,
//	 stats: {name, processorId, status, scaleFactor, inputMessageCount, inputMessageSize,
//	         outputMessageCount, outputMessageSize, dlqMessageCount, dlqMessageSize, stateSize,
//	         memoryTrackerBytes, watermark, [kafkaPartitions: [{topic, partition, currentOffset,
//	         checkpointOffset, isIdle, watermark, consumerGroupLag}] for a Kafka source],
//	         [operatorStats, latency with verbose], ok: 1}}
//
// Sizes are in bytes divided by scale (spec §5.1). Counts are longs, as Atlas sends them.
func getStreamProcessorStats(_ context.Context, call *Call, r *Reply) error {
	m, name, err := target(call)
	if err != nil {
		return err
	}
	scale, _, err := optInt(call, "scale", 1, math.MaxInt32)
	if err != nil {
		return err
	}
	if scale == 0 {
		scale = 1
	}
	verbose, _, err := optBool(call, "verbose")
	if err != nil {
		return err
	}
	ws := workspaceOf(call.Conn)
	info, ops, err := m.StatsOf(ws, name)
	if err != nil {
		return procErr(err)
	}
	p, s := info.Processor, info.Stats
	r.String("ns", m.GroupID()+"."+ws+"."+p.Name)
	r.String("name", p.Name)
	r.String("state", p.State)
	r.String("tier", tierOf(call, p))
	if p.ErrorMsg != "" {
		r.String("errorMsg", p.ErrorMsg)
		r.Int32("errorCode", p.ErrorCode)
		r.Bool("errorRetryable", p.ErrorRetryable)
	}
	r.Doc("stats")
	r.String("name", p.Name)
	r.String("processorId", p.ID)
	r.String("status", statusOf(p.State))
	r.Int64("scaleFactor", scale)
	r.Int64("inputMessageCount", s.InputCount)
	r.Double("inputMessageSize", float64(s.InputSize/scale))
	r.Int64("outputMessageCount", s.OutputCount)
	r.Double("outputMessageSize", float64(s.OutputSize/scale))
	r.Int64("dlqMessageCount", s.DLQCount)
	r.Int64("dlqMessageSize", s.DLQSize/scale)
	r.Int64("stateSize", s.StateSize/scale)
	r.Int64("memoryTrackerBytes", s.StateSize/scale)
	if s.Watermark != math.MinInt64 && s.Watermark != 0 {
		r.Time("watermark", time.UnixMilli(s.Watermark))
	}
	if len(s.KafkaPartitions) > 0 {
		r.Array("kafkaPartitions")
		for i, kp := range s.KafkaPartitions {
			r.Doc(arrayKey(i))
			r.String("topic", kp.Topic)
			r.Int32("partition", kp.Partition)
			r.Int64("currentOffset", kp.CurrentOffset)
			r.Int64("checkpointOffset", kp.CheckpointOffset)
			r.Bool("isIdle", kp.IsIdle)
			if kp.Watermark != math.MinInt64 {
				r.Time("watermark", time.UnixMilli(kp.Watermark))
			}
			r.Int64("consumerGroupLag", kp.ConsumerGroupLag)
			r.EndDoc()
		}
		r.EndDoc()
	}
	if verbose {
		// The source and the sink are operators too, as Atlas lists them.
		all := make([]pipeline.OperatorStats, 0, len(ops)+2)
		first := s.OutputCount
		if len(ops) > 0 {
			first = ops[0].InputCount
		}
		all = append(all, pipeline.OperatorStats{Name: "$source", InputCount: s.InputCount, OutputCount: first, DLQCount: s.SourceDLQ})
		all = append(all, ops...)
		if sink := sinkName(p.Pipeline); sink != "" {
			all = append(all, pipeline.OperatorStats{Name: sink, InputCount: s.OutputCount + s.SinkDLQ, OutputCount: s.OutputCount, DLQCount: s.SinkDLQ})
		}
		r.Array("operatorStats")
		for i, op := range all {
			r.Doc(arrayKey(i))
			r.String("name", op.Name)
			r.Int64("inputMessageCount", op.InputCount)
			r.Int64("outputMessageCount", op.OutputCount)
			r.Int64("dlqMessageCount", op.DLQCount)
			if op.MaxMemoryUsage > 0 {
				// A $cachedLookup's cache: what it holds and its maxMemUsageBytes.
				r.Int64("stateSize", op.StateSize)
				r.Int64("maxMemoryUsage", op.MaxMemoryUsage)
			}
			r.EndDoc()
		}
		r.EndDoc()
		l := s.Latency
		r.Doc("latency")
		r.Int64("p50", l.P50)
		r.Int64("p99", l.P99)
		r.Time("start", l.Start)
		r.Time("end", l.End)
		r.String("unit", "microseconds")
		r.Int64("count", l.Count)
		r.Int64("sum", l.Sum)
		r.EndDoc()
	}
	r.Double("ok", 1)
	r.EndDoc()
	r.RawArray("pipeline", p.Pipeline)
	return nil
}

// sinkName is the operator name of the pipeline's last stage if it is a sink.
func sinkName(pipe []byte) string {
	vals, err := bson.RawArray(pipe).Values()
	if err != nil || len(vals) == 0 {
		return ""
	}
	last, ok := vals[len(vals)-1].DocumentOK()
	if !ok {
		return ""
	}
	e, err := last.IndexErr(0)
	if err != nil {
		return ""
	}
	switch k := e.Key(); k {
	case "$emit", "$merge", "$https":
		return k
	}
	return ""
}
