package expr

import (
	"go.mongodb.org/mongo-driver/v2/bson"
)

// operators is the table of every supported expression operator.
var operators map[string]compileFunc

func init() {
	operators = map[string]compileFunc{
		// misc.go: literals, variables, stream metadata
		"$literal":     compileLiteral,
		"$let":         compileLet,
		"$meta":        compileMeta,
		"$currentDate": compileCurrentDate,
		"$createUUID":  compileCreateUUID,

		// arithmetic.go
		"$add":      arithOp(opAdd, evalAdd),
		"$subtract": binaryOp(evalSubtract),
		"$multiply": arithOp(opMul, evalMultiply),
		"$divide":   binaryOp(evalDivide),
		"$mod":      binaryOp(evalMod),
		"$abs":      unaryOp(evalAbs),
		"$ceil":     unaryOp(roundingUnary(roundCeil)),
		"$floor":    unaryOp(roundingUnary(roundFloor)),
		"$round":    compileRound(roundHalfEven),
		"$trunc":    compileRound(roundTrunc),
		"$exp":      unaryOp(floatUnary(mathExp, apdExp, nil)),
		"$ln":       unaryOp(floatUnary(mathLog, apdLn, positiveDomain)),
		"$log10":    unaryOp(floatUnary(mathLog10, apdLog10, positiveDomain)),
		"$sqrt":     unaryOp(floatUnary(mathSqrt, apdSqrt, sqrtDomain)),
		"$log":      binaryOp(evalLog),
		"$pow":      binaryOp(evalPow),

		// comparison.go
		"$eq":  compareOp(func(c int) bool { return c == 0 }),
		"$ne":  compareOp(func(c int) bool { return c != 0 }),
		"$gt":  compareOp(func(c int) bool { return c > 0 }),
		"$gte": compareOp(func(c int) bool { return c >= 0 }),
		"$lt":  compareOp(func(c int) bool { return c < 0 }),
		"$lte": compareOp(func(c int) bool { return c <= 0 }),
		"$cmp": binaryOp(evalCmp),

		// boolean.go
		"$and": compileAndOr(true),
		"$or":  compileAndOr(false),
		"$not": unaryOp(evalNot),

		// conditional.go
		"$cond":   compileCond,
		"$ifNull": compileIfNull,
		"$switch": compileSwitch,

		// string.go
		"$concat":       naryOp(0, -1, evalConcat),
		"$substr":       naryOp(3, 3, evalSubstrBytes),
		"$substrBytes":  naryOp(3, 3, evalSubstrBytes),
		"$substrCP":     naryOp(3, 3, evalSubstrCP),
		"$toLower":      unaryOp(caseOp(false)),
		"$toUpper":      unaryOp(caseOp(true)),
		"$trim":         compileTrim(true, true),
		"$ltrim":        compileTrim(true, false),
		"$rtrim":        compileTrim(false, true),
		"$split":        binaryOp(evalSplit),
		"$strLenBytes":  unaryOp(evalStrLenBytes),
		"$strLenCP":     unaryOp(evalStrLenCP),
		"$strcasecmp":   binaryOp(evalStrcasecmp),
		"$indexOfBytes": naryOp(2, 4, indexOf(false)),
		"$indexOfCP":    naryOp(2, 4, indexOf(true)),
		"$replaceOne":   compileReplace(false),
		"$replaceAll":   compileReplace(true),

		// regex.go
		"$regexMatch":   compileRegexOp(regexMatch),
		"$regexFind":    compileRegexOp(regexFind),
		"$regexFindAll": compileRegexOp(regexFindAll),

		// array.go
		"$arrayElemAt":   binaryOp(evalArrayElemAt),
		"$concatArrays":  naryOp(0, -1, evalConcatArrays),
		"$filter":        compileIter(false),
		"$map":           compileIter(true),
		"$reduce":        compileReduce,
		"$first":         unaryOp(firstLast(false)),
		"$last":          unaryOp(firstLast(true)),
		"$in":            binaryOp(evalIn),
		"$indexOfArray":  naryOp(2, 4, evalIndexOfArray),
		"$isArray":       unaryOp(evalIsArray),
		"$reverseArray":  unaryOp(evalReverseArray),
		"$size":          unaryOp(evalSize),
		"$slice":         naryOp(2, 3, evalSlice),
		"$zip":           compileZip,
		"$range":         naryOp(2, 3, evalRange),
		"$sortArray":     compileSortArray,
		"$firstN":        compileNArray("first"),
		"$lastN":         compileNArray("last"),
		"$maxN":          compileNArray("max"),
		"$minN":          compileNArray("min"),
		"$arrayToObject": unaryOp(evalArrayToObject),
		"$objectToArray": unaryOp(evalObjectToArray),

		// set.go
		"$setUnion":        naryOp(0, -1, evalSetUnion),
		"$setIntersection": naryOp(0, -1, evalSetIntersection),
		"$setDifference":   binaryOp(evalSetDifference),
		"$setEquals":       naryOp(2, -1, evalSetEquals),
		"$setIsSubset":     binaryOp(evalSetIsSubset),
		"$anyElementTrue":  unaryOp(elementsTrue(true)),
		"$allElementsTrue": unaryOp(elementsTrue(false)),

		// accumulator.go
		"$sum":        compileAccumulator(accSum),
		"$avg":        compileAccumulator(accAvg),
		"$max":        compileAccumulator(accMinMax(true)),
		"$min":        compileAccumulator(accMinMax(false)),
		"$stdDevPop":  compileAccumulator(accStdDev(false)),
		"$stdDevSamp": compileAccumulator(accStdDev(true)),

		// object.go
		"$mergeObjects": naryOp(0, -1, evalMergeObjects),
		"$getField":     compileGetField,
		"$setField":     compileSetField(false),
		"$unsetField":   compileSetField(true),

		// type.go / convert.go
		"$type":       unaryOp(evalType),
		"$isNumber":   unaryOp(evalIsNumber),
		"$convert":    compileConvert,
		"$toBool":     compileTo(bson.TypeBoolean),
		"$toDate":     compileTo(bson.TypeDateTime),
		"$toDecimal":  compileTo(bson.TypeDecimal128),
		"$toDouble":   compileTo(bson.TypeDouble),
		"$toInt":      compileTo(bson.TypeInt32),
		"$toLong":     compileTo(bson.TypeInt64),
		"$toObjectId": compileTo(bson.TypeObjectID),
		"$toString":   compileTo(bson.TypeString),

		// date.go
		"$dateFromString": compileDateFromString,
		"$dateToString":   compileDateToString,
		"$dateTrunc":      compileDateTrunc,
		"$dateAdd":        compileDateAdd(1),
		"$dateSubtract":   compileDateAdd(-1),
		"$dateDiff":       compileDateDiff,
		"$dateFromParts":  compileDateFromParts,
		"$dateToParts":    compileDateToParts,
	}
	for name := range dateParts {
		operators[name] = compileDatePart
	}
}
