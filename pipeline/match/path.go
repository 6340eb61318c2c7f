package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/value"
)

// pred is a predicate on one value: mongod's matchesSingleElement. It never traverses arrays
// itself; pathNode does that.
type pred interface {
	test(v bson.RawValue) bool
}

// pathNode matches when any value the path yields satisfies pred. expand makes a leaf array
// yield its elements before itself; $size and $elemMatch see the array as it is.
type pathNode struct {
	path   []string
	pred   pred
	expand bool
}

func (n *pathNode) match(doc bson.Raw, _ any) (bool, error) {
	return anyPath(doc, n.path, n.pred, n.expand), nil
}

// anyPath follows mongod's BSONElementIterator (src/mongo/db/matcher/path.cpp): descend through
// embedded documents; at an array with path left, look into every element that is a document
// and into the element whose index is the next path component; at an array ending the path,
// yield each element and then the array. A scalar in the middle of the path, or a missing
// field, yields the missing value.
func anyPath(doc []byte, path []string, p pred, expand bool) bool {
	cur := doc
	for i := 0; ; i++ {
		v := value.Lookup(cur, path[i])
		last := i == len(path)-1
		switch v.Type {
		case bson.TypeEmbeddedDocument:
			if last {
				return p.test(v)
			}
			cur = v.Value
			continue
		case bson.TypeArray:
			if last {
				return leafArray(v, p, expand)
			}
			return inArray(v.Value, path[i+1:], p, expand)
		case 0:
			return p.test(v)
		}
		if last {
			return p.test(v)
		}
		return p.test(bson.RawValue{})
	}
}

// leafArray yields the elements of an array that ends the path, then the array itself.
func leafArray(arr bson.RawValue, p pred, expand bool) bool {
	if expand {
		it := value.NewIter(arr.Value)
		for it.Next() {
			if p.test(it.Val()) {
				return true
			}
		}
	}
	return p.test(arr)
}

// inArray walks the rest of a path through the elements of an array.
func inArray(arr []byte, rest []string, p pred, expand bool) bool {
	next := rest[0]
	numeric := isAllDigits(next)
	yielded := false
	it := value.NewIter(arr)
	for it.Next() {
		e := it.Val()
		offset := numeric && string(it.Key()) == next
		if e.Type == bson.TypeEmbeddedDocument {
			yielded = true
			if anyPath(e.Value, rest, p, expand) {
				return true
			}
			if offset {
				if len(rest) == 1 {
					if p.test(e) {
						return true
					}
				} else if anyPath(e.Value, rest[1:], p, expand) {
					return true
				}
			}
			continue
		}
		if !offset {
			continue
		}
		if len(rest) == 1 {
			// An element picked by index is not itself expanded: {"a.0": 5} does not match
			// {a: [[5]]}.
			yielded = true
			if p.test(e) {
				return true
			}
		} else if e.Type == bson.TypeArray {
			yielded = true
			if inArray(e.Value, rest[1:], p, expand) {
				return true
			}
		}
	}
	if !yielded {
		// An array with nothing to descend into (empty, scalars only) makes the rest of the
		// path missing, so {"a.b": null} matches {a: [1, 2]} (SERVER-36681).
		return p.test(bson.RawValue{})
	}
	return false
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
