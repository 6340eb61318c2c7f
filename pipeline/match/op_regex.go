package match

import (
	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/pcre"
)

// regexPred is $regex and /re/ literals: it matches strings and symbols, and regex values with
// the same pattern and options.
type regexPred struct {
	re      *pcre.Regexp
	pattern string
	flags   string
}

func (p *regexPred) test(v bson.RawValue) bool {
	switch v.Type {
	case bson.TypeString, bson.TypeSymbol:
		s, ok := strBytes(v)
		return ok && reMatchBytes(p.re, s)
	case bson.TypeRegex:
		pat, fl, ok := v.RegexOK()
		return ok && pat == p.pattern && fl == p.flags
	}
	return false
}

func newRegexPred(path, op, pattern, flags string) (*regexPred, error) {
	re, msg := compileRegex(pattern, flags)
	if msg != "" {
		return nil, errorf(path, op, msg)
	}
	return &regexPred{re: re, pattern: pattern, flags: flags}, nil
}

// regexFromValue compiles a BSON regular expression value used as a query (/re/ literals, and
// in $in, $nin, $all and $not).
func regexFromValue(path, op string, v bson.RawValue) (*regexPred, error) {
	pat, fl, ok := v.RegexOK()
	if !ok {
		return nil, errorf(path, op, "malformed regular expression")
	}
	return newRegexPred(path, op, pat, fl)
}

// compileRegexOp compiles $regex with its sibling $options.
func compileRegexOp(path string, regex, options bson.RawValue, hasOptions bool) (clause, error) {
	var pattern, flags string
	switch regex.Type {
	case bson.TypeString:
		pattern = regex.StringValue()
	case bson.TypeRegex:
		pattern, flags = regex.Regex()
	default:
		return nil, errorf(path, "$regex", "$regex has to be a string")
	}
	if hasOptions {
		if options.Type != bson.TypeString {
			return nil, errorf(path, "$options", "$options has to be a string")
		}
		o := options.StringValue()
		if flags != "" && o != "" {
			return nil, errorf(path, "$options", "options set in both $regex and $options")
		}
		if o != "" {
			flags = o
		}
	}
	p, err := newRegexPred(path, "$regex", pattern, flags)
	if err != nil {
		return nil, err
	}
	return leaf{pred: p, expand: true}, nil
}
