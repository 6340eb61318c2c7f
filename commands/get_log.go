package commands

import "context"

// getLog serves the in-memory logs mongod keeps. spid has no startup warnings to show, so
// mongosh's interactive startup prints no warning banner.
func getLog(_ context.Context, call *Call, r *Reply) error {
	name, ok := call.Arg.StringValueOK()
	if !ok {
		return Errorf(CodeTypeMismatch, "Argument to getLog must be of type String; found %s", typeName(call.Arg.Type))
	}
	switch name {
	case "*":
		r.Strings("names", []string{"global", "startupWarnings"})
	case "global", "startupWarnings":
		r.Int32("totalLinesWritten", 0)
		r.Array("log")
		r.EndDoc()
	default:
		return Errorf(CodeBadValue, "No log named '%s'", name)
	}
	return nil
}
