package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

type bitsOp uint8

const (
	bitsAllSet bitsOp = iota
	bitsAnySet
	bitsAllClear
	bitsAnyClear
)

// bitsPred is $bitsAllSet, $bitsAnySet, $bitsAllClear and $bitsAnyClear on integers (two's
// complement, sign-extended past bit 63) and binData (little-endian bytes, zero past the end).
// Fractional and out-of-range numbers and other types never match.
type bitsPred struct {
	op        bitsOp
	positions []uint32
}

func (p *bitsPred) test(v bson.RawValue) bool {
	var (
		n    int64
		data []byte
		bin  bool
	)
	switch {
	case value.IsNumber(v):
		i, exact, ok := asInt64(v)
		if !ok || !exact {
			return false
		}
		n = i
	case v.Type == bson.TypeBinary:
		_, d, ok := v.BinaryOK()
		if !ok {
			return false
		}
		data, bin = d, true
	default:
		return false
	}
	for _, pos := range p.positions {
		var set bool
		if bin {
			set = int(pos/8) < len(data) && data[pos/8]>>(pos%8)&1 == 1
		} else if pos >= 64 {
			set = n < 0
		} else {
			set = n>>pos&1 == 1
		}
		switch p.op {
		case bitsAllSet:
			if !set {
				return false
			}
		case bitsAnySet:
			if set {
				return true
			}
		case bitsAllClear:
			if set {
				return false
			}
		case bitsAnyClear:
			if !set {
				return true
			}
		}
	}
	return p.op == bitsAllSet || p.op == bitsAllClear
}

func compileBits(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	p := &bitsPred{}
	switch op {
	case "$bitsAnySet":
		p.op = bitsAnySet
	case "$bitsAllClear":
		p.op = bitsAllClear
	case "$bitsAnyClear":
		p.op = bitsAnyClear
	}
	switch {
	case value.IsNumber(v):
		n, exact, _ := asInt64(v)
		if !exact {
			return nil, errorf(path, op, op+" takes a bitmask that is a whole number representable as a 64-bit integer")
		}
		if n < 0 {
			return nil, errorf(path, op, op+" takes a non-negative bitmask")
		}
		for i := uint32(0); i < 63; i++ {
			if n>>i&1 == 1 {
				p.positions = append(p.positions, i)
			}
		}
	case v.Type == bson.TypeBinary:
		_, data, _ := v.BinaryOK()
		for i, b := range data {
			for j := uint32(0); j < 8; j++ {
				if b>>j&1 == 1 {
					p.positions = append(p.positions, uint32(i)*8+j)
				}
			}
		}
	case v.Type == bson.TypeArray:
		it := value.NewIter(v.Value)
		for it.Next() {
			e := it.Val()
			if !value.IsNumber(e) {
				return nil, errorf(path, op, op+" bit positions must be numbers, not "+value.TypeName(e))
			}
			n, exact, _ := asInt64(e)
			switch {
			case !exact:
				return nil, errorf(path, op, op+" bit positions must be whole numbers")
			case n < 0:
				return nil, errorf(path, op, op+" bit positions must be >= 0")
			case n > 1<<31-1:
				return nil, errorf(path, op, op+" bit positions cannot be represented as a 32-bit signed integer")
			}
			p.positions = append(p.positions, uint32(n))
		}
	default:
		return nil, errorf(path, op, op+" takes an Array, a number, or a BinData but received: "+value.TypeName(v))
	}
	return leaf{pred: p, expand: true}, nil
}
