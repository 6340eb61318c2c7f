package match

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// inPred is $in: equal to one of the values (null also matches a missing field) or matched by
// one of the regular expressions. Values are sorted so a long list costs a binary search.
type inPred struct {
	values  []bson.RawValue
	regexes []*regexPred
	hasNull bool
}

func (p *inPred) test(v bson.RawValue) bool {
	if v.Type == 0 {
		return p.hasNull
	}
	if v.Type != bson.TypeUndefined {
		i := sort.Search(len(p.values), func(i int) bool { return value.Compare(p.values[i], v) >= 0 })
		if i < len(p.values) && value.Compare(p.values[i], v) == 0 {
			return true
		}
	}
	for _, r := range p.regexes {
		if r.test(v) {
			return true
		}
	}
	return false
}

func compileIn(_ *compiler, path, op string, v bson.RawValue, _ int) (clause, error) {
	if v.Type != bson.TypeArray {
		return nil, errorf(path, op, op+" needs an array")
	}
	p := &inPred{}
	it := value.NewIter(v.Value)
	for it.Next() {
		e := it.Val()
		switch e.Type {
		case bson.TypeRegex:
			r, err := regexFromValue(path, op, e)
			if err != nil {
				return nil, err
			}
			p.regexes = append(p.regexes, r)
			continue
		case bson.TypeEmbeddedDocument:
			if isOperatorDoc(bson.Raw(e.Value)) {
				return nil, errorf(path, op, "cannot nest $ under "+op)
			}
		case bson.TypeUndefined:
			return nil, errorf(path, op, op+" cannot contain undefined")
		case bson.TypeNull:
			p.hasNull = true
		}
		p.values = append(p.values, e)
	}
	sort.SliceStable(p.values, func(i, j int) bool { return value.Compare(p.values[i], p.values[j]) < 0 })
	l := leaf{pred: p, expand: true}
	if op == "$nin" {
		return negate{l}, nil
	}
	return l, nil
}
