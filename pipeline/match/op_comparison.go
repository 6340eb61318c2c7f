package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

type cmpOp uint8

const (
	opEQ cmpOp = iota
	opLT
	opLTE
	opGT
	opGTE
)

// cmpPred is $eq, $lt, $lte, $gt and $gte on one value. Values of different canonical types
// never compare (type bracketing), with mongod's exceptions: null equals a missing field, and
// MinKey/MaxKey bound everything.
type cmpPred struct {
	op  cmpOp
	rhs bson.RawValue
	nan bool // rhs is NaN
}

func (p *cmpPred) test(v bson.RawValue) bool {
	rhs := p.rhs
	switch rhs.Type {
	case bson.TypeNull:
		// Since MongoDB 8.0 null no longer equals undefined.
		if v.Type == 0 || v.Type == bson.TypeNull {
			return p.op == opEQ || p.op == opLTE || p.op == opGTE
		}
		return false
	case bson.TypeMinKey, bson.TypeMaxKey:
		if v.Type != rhs.Type {
			switch p.op {
			case opLT, opLTE:
				return rhs.Type == bson.TypeMaxKey
			case opGT, opGTE:
				return rhs.Type == bson.TypeMinKey
			}
			return false
		}
		return p.op == opEQ || p.op == opLTE || p.op == opGTE
	}
	if v.Type == 0 || value.TypeOrder(v.Type) != value.TypeOrder(rhs.Type) {
		return false
	}
	if p.nan || isNaN(v) {
		// NaN equals NaN and is neither above nor below anything.
		both := p.nan && isNaN(v)
		switch p.op {
		case opEQ, opLTE, opGTE:
			return both
		}
		return false
	}
	c := value.Compare(v, rhs)
	switch p.op {
	case opEQ:
		return c == 0
	case opLT:
		return c < 0
	case opLTE:
		return c <= 0
	case opGT:
		return c > 0
	}
	return c >= 0
}

// checkOperand rejects operand values mongod rejects in comparisons.
func checkOperand(path, op string, v bson.RawValue) error {
	if v.Type == bson.TypeUndefined {
		return errorf(path, op, "cannot compare to undefined")
	}
	return nil
}

func newCmp(op cmpOp, v bson.RawValue) *cmpPred {
	return &cmpPred{op: op, rhs: v, nan: isNaN(v)}
}

// eqPred is {path: literal} and $eq.
func eqPred(path, op string, v bson.RawValue) (pred, error) {
	if err := checkOperand(path, op, v); err != nil {
		return nil, err
	}
	return newCmp(opEQ, v), nil
}

func compileComparison(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	if err := checkOperand(path, op, v); err != nil {
		return nil, err
	}
	switch op {
	case "$eq":
		return leaf{pred: newCmp(opEQ, v), expand: true}, nil
	case "$ne":
		return negate{leaf{pred: newCmp(opEQ, v), expand: true}}, nil
	case "$lt":
		return leaf{pred: newCmp(opLT, v), expand: true}, nil
	case "$lte":
		return leaf{pred: newCmp(opLTE, v), expand: true}, nil
	case "$gt":
		return leaf{pred: newCmp(opGT, v), expand: true}, nil
	}
	return leaf{pred: newCmp(opGTE, v), expand: true}, nil
}
