package expr

import (
	"sort"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// dedupe removes duplicates (by value.Equal), keeping first occurrences in order.
func dedupe(es []bson.RawValue) []bson.RawValue {
	idx := make([]int, len(es))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(i, j int) bool { return value.Compare(es[idx[i]], es[idx[j]]) < 0 })
	keep := make([]bool, len(es))
	for i, k := range idx {
		if i == 0 || !value.Equal(es[idx[i-1]], es[k]) {
			keep[k] = true
		}
	}
	out := es[:0:0]
	for i, e := range es {
		if keep[i] {
			out = append(out, e)
		}
	}
	return out
}

func contains(set []bson.RawValue, v bson.RawValue) bool {
	i := sort.Search(len(set), func(i int) bool { return value.Compare(set[i], v) >= 0 })
	return i < len(set) && value.Equal(set[i], v)
}

func sorted(es []bson.RawValue) []bson.RawValue {
	s := append([]bson.RawValue(nil), es...)
	sort.Slice(s, func(i, j int) bool { return value.Compare(s[i], s[j]) < 0 })
	return s
}

func evalSetUnion(op string, vs []bson.RawValue) (bson.RawValue, error) {
	var all []bson.RawValue
	for _, v := range vs {
		if value.IsNullish(v) {
			return nullValue, nil
		}
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "All operands of $setUnion must be arrays. One argument is of type: "+typeName(v))
		}
		all = append(all, arrayValues(v)...)
	}
	return buildArray(dedupe(all)), nil
}

func evalSetIntersection(op string, vs []bson.RawValue) (bson.RawValue, error) {
	var result []bson.RawValue
	null := false
	for i, v := range vs {
		if value.IsNullish(v) {
			null = true
			continue
		}
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "All operands of $setIntersection must be arrays. One argument is of type: "+typeName(v))
		}
		es := dedupe(arrayValues(v))
		if i == 0 {
			result = es
			continue
		}
		set := sorted(es)
		kept := result[:0:0]
		for _, e := range result {
			if contains(set, e) {
				kept = append(kept, e)
			}
		}
		result = kept
	}
	if null {
		return nullValue, nil
	}
	return buildArray(result), nil
}

func evalSetDifference(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if anyNullish(a, b) {
		return nullValue, nil
	}
	if a.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "both operands of $setDifference must be arrays. First argument is of type: "+typeName(a))
	}
	if b.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "both operands of $setDifference must be arrays. Second argument is of type: "+typeName(b))
	}
	set := sorted(arrayValues(b))
	var out []bson.RawValue
	for _, e := range dedupe(arrayValues(a)) {
		if !contains(set, e) {
			out = append(out, e)
		}
	}
	return buildArray(out), nil
}

func evalSetEquals(op string, vs []bson.RawValue) (bson.RawValue, error) {
	var first []bson.RawValue
	for i, v := range vs {
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, "All operands of $setEquals must be arrays. One argument is of type: "+typeName(v))
		}
		s := sorted(dedupe(arrayValues(v)))
		if i == 0 {
			first = s
			continue
		}
		if len(s) != len(first) {
			return falseValue, nil
		}
		for j := range s {
			if !value.Equal(s[j], first[j]) {
				return falseValue, nil
			}
		}
	}
	return trueValue, nil
}

func evalSetIsSubset(op string, a, b bson.RawValue) (bson.RawValue, error) {
	if a.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "both operands of $setIsSubset must be arrays. First argument is of type: "+typeName(a))
	}
	if b.Type != bson.TypeArray {
		return value.Missing, evalErr(op, "both operands of $setIsSubset must be arrays. Second argument is of type: "+typeName(b))
	}
	set := sorted(arrayValues(b))
	for _, e := range arrayValues(a) {
		if !contains(set, e) {
			return falseValue, nil
		}
	}
	return trueValue, nil
}

func elementsTrue(any bool) func(op string, v bson.RawValue) (bson.RawValue, error) {
	return func(op string, v bson.RawValue) (bson.RawValue, error) {
		if v.Type != bson.TypeArray {
			return value.Missing, evalErr(op, op+"'s argument must be an array, but is "+typeName(v))
		}
		for _, e := range arrayValues(v) {
			if value.Truthy(e) == any {
				return boolValue(any), nil
			}
		}
		return boolValue(!any), nil
	}
}
