package processor

import (
	"errors"
	"fmt"
)

// Code is the error code a processor command fails with. The numbers are MongoDB's
// (src/mongo/base/error_codes.yml) where MongoDB has one; Atlas Stream Processing's own are 418
// (worker out of memory) and 420 (invalid options), as the Atlas docs name them (spec §1.2).
// StreamProcessorDoesNotExist and StreamProcessorAlreadyExists are the names mongod's streams
// module uses; their public numbers are unknown, so spi fixes them here and keeps them stable.
type Code int32

// Error codes of the processor runtime.
const (
	CodeBadValue                     Code = 2
	CodeFailedToParse                Code = 9
	CodeTypeMismatch                 Code = 14
	CodeIllegalOperation             Code = 20
	CodeCursorNotFound               Code = 43
	CodeInvalidOptions               Code = 72
	CodeInternalError                Code = 1
	CodeStreamProcessorOutOfMemory   Code = 418
	CodeStreamProcessorKafkaError    Code = 419
	CodeStreamProcessorInvalidOption Code = 420
	CodeStreamProcessorAtlasError    Code = 421
	CodeStreamProcessorDoesNotExist  Code = 1_000_000
	CodeStreamProcessorAlreadyExists Code = 1_000_001
	CodeStreamProcessorLimit         Code = 1_000_002
	CodeStreamProcessorConnError     Code = 1_000_003
)

var codeNames = map[Code]string{
	CodeBadValue:                     "BadValue",
	CodeFailedToParse:                "FailedToParse",
	CodeTypeMismatch:                 "TypeMismatch",
	CodeIllegalOperation:             "IllegalOperation",
	CodeCursorNotFound:               "CursorNotFound",
	CodeInvalidOptions:               "InvalidOptions",
	CodeInternalError:                "InternalError",
	CodeStreamProcessorOutOfMemory:   "StreamProcessorWorkerOutOfMemory",
	CodeStreamProcessorKafkaError:    "StreamProcessorKafkaConnectionError",
	CodeStreamProcessorInvalidOption: "StreamProcessorInvalidOptions",
	CodeStreamProcessorAtlasError:    "StreamProcessorAtlasConnectionError",
	CodeStreamProcessorDoesNotExist:  "StreamProcessorDoesNotExist",
	CodeStreamProcessorAlreadyExists: "StreamProcessorAlreadyExists",
	CodeStreamProcessorLimit:         "StreamProcessorLimitExceeded",
	CodeStreamProcessorConnError:     "StreamProcessorConnectionError",
}

// Name is the codeName sent beside the code.
func (c Code) Name() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Location%d", int32(c))
}

// Error is a failed processor operation as a client sees it: a code, its name, and a message
// that names the field and the reason.
type Error struct {
	Code Code
	Msg  string
	// Retryable says whether a processor that failed with this error may succeed if started
	// again unchanged (errorRetryable in getStreamProcessor).
	Retryable bool
}

func (e *Error) Error() string { return e.Msg }

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// AsError returns err as an *Error, wrapping any other error as an InternalError.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: CodeInternalError, Msg: err.Error(), Retryable: true}
}

func notFound(name string) *Error {
	return Errorf(CodeStreamProcessorDoesNotExist, "stream processor does not exist: %s", name)
}
