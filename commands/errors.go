package commands

import (
	"fmt"
	"unicode/utf8"
)

// Code is a MongoDB error code. Every error a client sees carries one, with its codeName.
type Code int32

// The codes spid returns. Numbers and names are MongoDB's (src/mongo/base/error_codes.yml), so
// drivers and mongosh treat them as they would a mongod's.
const (
	CodeInternalError             Code = 1
	CodeBadValue                  Code = 2
	CodeFailedToParse             Code = 9
	CodeUnauthorized              Code = 13
	CodeTypeMismatch              Code = 14
	CodeInvalidLength             Code = 16
	CodeProtocolError             Code = 17
	CodeAuthenticationFailed      Code = 18
	CodeInvalidBSON               Code = 22
	CodeCommandNotFound           Code = 59
	CodeInvalidOptions            Code = 72
	CodeExceededMemoryLimit       Code = 146
	CodeIllegalOpMsgFlag          Code = 223
	CodeTooManyDocumentSequences  Code = 233
	CodeChecksumMismatch          Code = 288
	CodeUnsupportedOpQueryCommand Code = 352
	CodeBSONObjectTooLarge        Code = 10334
	CodeMissingDatabase           Code = 40571
)

var codeNames = map[Code]string{
	CodeInternalError:             "InternalError",
	CodeBadValue:                  "BadValue",
	CodeFailedToParse:             "FailedToParse",
	CodeUnauthorized:              "Unauthorized",
	CodeTypeMismatch:              "TypeMismatch",
	CodeInvalidLength:             "InvalidLength",
	CodeProtocolError:             "ProtocolError",
	CodeAuthenticationFailed:      "AuthenticationFailed",
	CodeInvalidBSON:               "InvalidBSON",
	CodeCommandNotFound:           "CommandNotFound",
	CodeInvalidOptions:            "InvalidOptions",
	CodeExceededMemoryLimit:       "ExceededMemoryLimit",
	CodeIllegalOpMsgFlag:          "IllegalOpMsgFlag",
	CodeTooManyDocumentSequences:  "TooManyDocumentSequences",
	CodeChecksumMismatch:          "ChecksumMismatch",
	CodeUnsupportedOpQueryCommand: "UnsupportedOpQueryCommand",
	CodeBSONObjectTooLarge:        "BSONObjectTooLarge",
	CodeMissingDatabase:           "Location40571",
}

// Name is the codeName sent beside the code.
func (c Code) Name() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("Location%d", int32(c))
}

// Error is a command failure as the client sees it: {ok: 0, errmsg, code, codeName}.
type Error struct {
	Code Code
	Msg  string
	// Name overrides Code.Name() for codes defined elsewhere (the processor runtime's).
	Name string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (%d): %s", e.Code.Name(), int32(e.Code), e.Msg)
}

// Errorf returns an *Error with a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// maxErrmsg bounds an error message, so that no client value echoed in one can make the
// reply large; handlers cut each value they echo to wire.ClipLen as well.
const maxErrmsg = 1024

// appendError appends the reply document of a failed command.
func appendError(dst []byte, e *Error) []byte {
	r := startReply(dst)
	r.Double("ok", 0)
	msg := e.Msg
	if len(msg) > maxErrmsg {
		cut := maxErrmsg
		for cut > 0 && !utf8.RuneStart(msg[cut]) {
			cut--
		}
		msg = msg[:cut] + fmt.Sprintf("...[+%d bytes]", len(msg)-cut)
	}
	r.String("errmsg", msg)
	r.Int32("code", int32(e.Code))
	name := e.Name
	if name == "" {
		name = e.Code.Name()
	}
	r.String("codeName", name)
	return r.end()
}
