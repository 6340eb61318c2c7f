package admin

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// apiError is an Atlas-style error reply: {detail, error, errorCode, parameters, reason}.
type apiError struct {
	Status int
	Code   string
	Detail string
	Params []any
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Detail) }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{Status: status, Code: code, Detail: fmt.Sprintf(format, args...)}
}

// missing is a required attribute that was not given.
func missing(field string) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "MISSING_ATTRIBUTE",
		Detail: fmt.Sprintf("The required attribute %s was not specified.", field), Params: []any{field}}
}

// invalid is an attribute whose value cannot be accepted.
func invalid(field, format string, args ...any) *apiError {
	return &apiError{Status: http.StatusBadRequest, Code: "INVALID_ATTRIBUTE",
		Detail: fmt.Sprintf("Invalid attribute %s: %s", field, fmt.Sprintf(format, args...)), Params: []any{field}}
}

func notFound(kind, name string) *apiError {
	return &apiError{Status: http.StatusNotFound, Code: "RESOURCE_NOT_FOUND",
		Detail: fmt.Sprintf("No %s named %q exists in this project.", kind, name), Params: []any{name}}
}

func duplicate(kind, name string) *apiError {
	return &apiError{Status: http.StatusConflict, Code: "DUPLICATE_NAME",
		Detail: fmt.Sprintf("A %s named %q already exists.", kind, name), Params: []any{name}}
}

func conflict(format string, args ...any) *apiError {
	return errorf(http.StatusConflict, "CONFLICT", format, args...)
}

func writeError(w http.ResponseWriter, e *apiError) {
	params := e.Params
	if params == nil {
		params = []any{}
	}
	writeJSON(w, e.Status, map[string]any{
		"detail":     e.Detail,
		"error":      e.Status,
		"errorCode":  e.Code,
		"parameters": params,
		"reason":     http.StatusText(e.Status),
	})
}

// mediaType is the versioned media type of every reply.
const mediaType = "application/vnd.atlas.2023-02-01+json"

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", mediaType)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
