package expr

import (
	"sync"
	"unicode/utf8"

	"go.mongodb.org/mongo-driver/v2/bson"

	"github.com/spi-streams/spi/pipeline/pcre"
	"github.com/spi-streams/spi/pipeline/value"
)

// regexCache holds compiled patterns; bounded so hostile inputs cannot grow it without limit.
var regexCache sync.Map // pattern+"\x00"+options -> *pcre.Regexp

var regexCacheSize struct {
	sync.Mutex
	n int
}

// compileRegex compiles a PCRE2 pattern with options i, m, s, x, u (package pcre).
func compileRegex(op, pattern, opts string) (*pcre.Regexp, error) {
	key := pattern + "\x00" + opts
	if r, ok := regexCache.Load(key); ok {
		return r.(*pcre.Regexp), nil
	}
	r, err := pcre.Compile(pattern, opts)
	if err != nil {
		return nil, evalErr(op, op+": "+err.Error())
	}
	regexCacheSize.Lock()
	if regexCacheSize.n < 1000 {
		regexCacheSize.n++
		regexCache.Store(key, r)
	}
	regexCacheSize.Unlock()
	return r, nil
}

// regexKind selects $regexMatch, $regexFind or $regexFindAll.
type regexKind int

const (
	regexMatch regexKind = iota
	regexFind
	regexFindAll
)

func compileRegexOp(kind regexKind) compileFunc {
	return func(op string, args bson.RawValue, sc *scope) (Expr, error) {
		m, err := objArgs(op, args, "input", "regex", "options")
		if err != nil {
			return nil, err
		}
		if _, ok := m["input"]; !ok {
			return nil, compileErr(op, op+" requires 'input' parameter")
		}
		if _, ok := m["regex"]; !ok {
			return nil, compileErr(op, op+" requires 'regex' parameter")
		}
		var es [3]Expr
		for i, k := range []string{"input", "regex", "options"} {
			if es[i], err = optExpr(m, k, sc); err != nil {
				return nil, err
			}
		}
		// Validate a constant pattern now.
		if rv := m["regex"]; rv.Type == bson.TypeString || rv.Type == bson.TypeRegex {
			if ov, ok := m["options"]; !ok || ov.Type == bson.TypeString {
				if _, err := regexArgs(op, rv, m["options"]); err != nil {
					return nil, compileErr(op, err.(*EvalError).Msg)
				}
			}
		}
		return evalFunc(func(env *Env) (bson.RawValue, error) {
			var vs [3]bson.RawValue
			for i, e := range es {
				v, err := evalOpt(env, e)
				if err != nil {
					return v, err
				}
				vs[i] = v
			}
			re, err := regexArgs(op, vs[1], vs[2])
			if err != nil {
				return value.Missing, err
			}
			if value.IsNullish(vs[0]) || re == nil {
				switch kind {
				case regexMatch:
					return falseValue, nil
				case regexFind:
					return nullValue, nil
				}
				return emptyArray, nil
			}
			in, ok := str(vs[0])
			if !ok {
				return value.Missing, evalErr(op, op+" needs 'input' to be of type string")
			}
			switch kind {
			case regexMatch:
				ok, err := re.MatchString(in)
				if err != nil {
					return value.Missing, evalErr(op, op+": "+err.Error())
				}
				return boolValue(ok), nil
			case regexFind:
				loc, err := re.FindStringSubmatchIndex(in)
				if err != nil {
					return value.Missing, evalErr(op, op+": "+err.Error())
				}
				if loc == nil {
					return nullValue, nil
				}
				return matchDoc(in, loc), nil
			}
			out := newArr()
			locs, err := re.FindAllStringSubmatchIndex(in, -1)
			if err != nil {
				return value.Missing, evalErr(op, op+": "+err.Error())
			}
			for _, loc := range locs {
				if err := env.tick(op, 1); err != nil {
					return value.Missing, err
				}
				out.add(matchDoc(in, loc))
			}
			return out.done(), nil
		}), nil
	}
}

// regexArgs resolves 'regex' (a string or a BSON regex) and 'options'; nil means null.
func regexArgs(op string, rv, ov bson.RawValue) (*pcre.Regexp, error) {
	if value.IsNullish(rv) {
		return nil, nil
	}
	var pattern, opts string
	switch rv.Type {
	case bson.TypeString:
		pattern = rv.StringValue()
	case bson.TypeRegex:
		pattern, opts = rv.Regex()
	default:
		return nil, evalErr(op, op+" needs 'regex' to be of type string or regex")
	}
	if !value.IsNullish(ov) {
		o, ok := str(ov)
		if !ok {
			return nil, evalErr(op, op+" needs 'options' to be of type string")
		}
		if opts != "" && o != "" {
			return nil, evalErr(op, op+": found regex option(s) specified in both 'regex' and 'option' fields")
		}
		opts += o
	}
	return compileRegex(op, pattern, opts)
}

// matchDoc builds {match, idx, captures}; idx counts code points, as mongod does.
func matchDoc(in string, loc []int) bson.RawValue {
	b := newDoc()
	b.add("match", stringValue(in[loc[0]:loc[1]]))
	b.add("idx", int32Value(int32(utf8.RuneCountInString(in[:loc[0]]))))
	caps := newArr()
	for i := 2; i+1 < len(loc); i += 2 {
		if loc[i] < 0 {
			caps.add(nullValue)
		} else {
			caps.add(stringValue(in[loc[i]:loc[i+1]]))
		}
	}
	b.add("captures", caps.done())
	return b.done()
}
