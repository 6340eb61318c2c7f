package pipeline

import (
	"errors"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/expr"
)

// WindowSpec is a parsed $tumblingWindow, $hoppingWindow or $sessionWindow.
type WindowSpec struct {
	Kind string
	// Interval and HopSize are in milliseconds (tumbling, hopping); Gap for sessions.
	Interval, HopSize, Gap int64
	// Offset shifts window boundaries from the UTC epoch, in milliseconds.
	Offset int64
	// AllowedLateness is how far behind the watermark a window stays open (default 3 s).
	AllowedLateness int64
	// IdleTimeout closes windows after this much processing time without input (0: never).
	IdleTimeout int64
	// ProcessingTime says windows follow arrival time instead of event time.
	ProcessingTime bool
	// PartitionBy keys sessions.
	PartitionBy expr.Expr

	// The inner pipeline: pre runs per document on arrival; group (optional) accumulates;
	// post runs when the window closes (stateless stages per document, $sort/$limit/$count on
	// the whole window).
	pre   []Stage
	group *groupStage
	post  []Stage
}

var errBadSnapshot = errors.New("pipeline: the snapshot does not match this pipeline")

func parseWindow(name string, spec bson.RawValue) (*WindowSpec, error) {
	doc, ok := spec.DocumentOK()
	if !ok {
		return nil, errf(name, "", "takes an options document, not %s", typeName(spec))
	}
	w := &WindowSpec{Kind: name, AllowedLateness: 3000}
	allowed := []string{"interval", "pipeline", "boundary", "offset", "idleTimeout", "allowedLateness"}
	switch name {
	case "$hoppingWindow":
		allowed = append(allowed, "hopSize")
	case "$sessionWindow":
		allowed = []string{"partitionBy", "gap", "pipeline", "boundary", "allowedLateness"}
	}
	if err := checkFields(name, "", doc, allowed...); err != nil {
		return nil, err
	}
	if b, err := doc.LookupErr("boundary"); err == nil {
		switch s, _ := b.StringValueOK(); s {
		case "eventTime":
		case "processingTime":
			w.ProcessingTime = true
		default:
			return nil, errf(name, "boundary", "must be \"eventTime\" or \"processingTime\"")
		}
	}
	if name == "$sessionWindow" {
		gap, err := parseDuration(name, "gap", doc.Lookup("gap"), false)
		if err != nil {
			return nil, err
		}
		w.Gap = gap.Millis()
		pb, err := doc.LookupErr("partitionBy")
		if err != nil {
			return nil, errf(name, "partitionBy", "is required")
		}
		if w.PartitionBy, err = compileExpr(name, "partitionBy", pb); err != nil {
			return nil, err
		}
	} else {
		iv, err := parseDuration(name, "interval", doc.Lookup("interval"), false)
		if err != nil {
			return nil, err
		}
		w.Interval = iv.Millis()
		w.HopSize = w.Interval
		if name == "$hoppingWindow" {
			hop, err := parseDuration(name, "hopSize", doc.Lookup("hopSize"), false)
			if err != nil {
				return nil, err
			}
			w.HopSize = hop.Millis()
		}
		if v, err := doc.LookupErr("offset"); err == nil {
			o, ok := v.DocumentOK()
			if !ok {
				return nil, errf(name, "offset", "must be {offsetFromUtc: <int>, unit: \"ms|second|minute|hour\"}")
			}
			if err := checkFields(name, "offset", o, "offsetFromUtc", "unit"); err != nil {
				return nil, err
			}
			n, err := intField(name, "offset.offsetFromUtc", o.Lookup("offsetFromUtc"))
			if err != nil {
				return nil, err
			}
			unit, _ := o.Lookup("unit").StringValueOK()
			ms, known := unitMillis[unit]
			if !known || unit == "day" {
				return nil, errf(name, "offset.unit", "must be ms, second, minute or hour")
			}
			w.Offset = n * ms
		}
		if v, err := doc.LookupErr("idleTimeout"); err == nil {
			if w.ProcessingTime {
				return nil, errf(name, "idleTimeout", "cannot be used with boundary \"processingTime\"")
			}
			d, err := parseDuration(name, "idleTimeout", v, true)
			if err != nil {
				return nil, err
			}
			w.IdleTimeout = d.Millis()
		}
	}
	if v, err := doc.LookupErr("allowedLateness"); err == nil {
		if w.ProcessingTime {
			return nil, errf(name, "allowedLateness", "cannot be used with boundary \"processingTime\"")
		}
		d, err := parseDuration(name, "allowedLateness", v, true)
		if err != nil {
			return nil, err
		}
		w.AllowedLateness = d.Millis()
	}
	if w.ProcessingTime {
		w.AllowedLateness = 0
	}
	inner, err := parseInner(name, doc.Lookup("pipeline"))
	if err != nil {
		return nil, err
	}
	// Split the inner pipeline: stateless stages up to the first window-only stage run on
	// arrival; a leading $group accumulates; everything else runs at close.
	i := 0
	for ; i < len(inner); i++ {
		if _, batch := inner[i].(batchStage); batch {
			break
		}
		if _, g := inner[i].(*groupStage); g {
			break
		}
		w.pre = append(w.pre, inner[i])
	}
	if i < len(inner) {
		if g, ok := inner[i].(*groupStage); ok {
			w.group = g
			i++
		}
	}
	for ; i < len(inner); i++ {
		if _, g := inner[i].(*groupStage); g {
			return nil, errf(name, "pipeline", "may have only one $group")
		}
		w.post = append(w.post, inner[i])
	}
	return w, nil
}

// floorDiv is division rounding toward negative infinity (dates before 1970 included).
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// windowsFor returns the starts of the tumbling or hopping windows containing t.
func (w *WindowSpec) windowsFor(t int64) []int64 {
	if w.HopSize == w.Interval {
		return []int64{floorDiv(t-w.Offset, w.Interval)*w.Interval + w.Offset}
	}
	var starts []int64
	last := floorDiv(t-w.Offset, w.HopSize)*w.HopSize + w.Offset
	for s := last; s > t-w.Interval; s -= w.HopSize {
		starts = append(starts, s)
	}
	// Oldest first.
	for i, j := 0, len(starts)-1; i < j; i, j = i+1, j-1 {
		starts[i], starts[j] = starts[j], starts[i]
	}
	return starts
}
