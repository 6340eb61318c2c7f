package admin

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// maxBody is the largest request body accepted.
const maxBody = 1 << 20

var atlasMedia = regexp.MustCompile(`^application/vnd\.atlas\.\d{4}-\d{2}-\d{2}\+json$`)

// checkAccept refuses clients that cannot read JSON.
func checkAccept(r *http.Request) *apiError {
	acc := r.Header.Get("Accept")
	if acc == "" {
		return nil
	}
	for _, part := range strings.Split(acc, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if mt == "*/*" || mt == "application/*" || mt == "application/json" || atlasMedia.MatchString(mt) {
			return nil
		}
	}
	return errorf(http.StatusNotAcceptable, "NOT_ACCEPTABLE",
		"Accept %q is not served: use application/json or application/vnd.atlas.<date>+json.", acc)
}

// decodeBody decodes a JSON request body into dst, refusing unknown fields, wrong types,
// malformed JSON and bodies over 1 MiB, each with an error that names the problem.
func decodeBody(w http.ResponseWriter, r *http.Request, dst any) *apiError {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !atlasMedia.MatchString(mt)) {
			return errorf(http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE",
				"Content-Type %q is not accepted: send application/json.", ct)
		}
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil {
		if dec.More() {
			return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body holds more than one JSON value.")
		}
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body holds more than one JSON value.")
		}
		return nil
	}
	var (
		syn  *json.SyntaxError
		typ  *json.UnmarshalTypeError
		size *http.MaxBytesError
	)
	switch {
	case errors.Is(err, io.EOF):
		return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body is empty; a JSON object is required.")
	case errors.As(err, &size):
		return errorf(http.StatusRequestEntityTooLarge, "BODY_TOO_LARGE", "The request body exceeds %d bytes.", maxBody)
	case errors.As(err, &syn):
		return errorf(http.StatusBadRequest, "INVALID_JSON", "Malformed JSON at byte %d: %v.", syn.Offset, syn)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body ends in the middle of a JSON value.")
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body must be a JSON object, not %s.", typ.Value)
		}
		return invalid(field, "must be %s, not %s", jsonType(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		field := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return &apiError{Status: http.StatusBadRequest, Code: "INVALID_ATTRIBUTE",
			Detail: "Invalid attribute " + field + ": not a known attribute of this resource.", Params: []any{field}}
	}
	return errorf(http.StatusBadRequest, "INVALID_JSON", "The request body cannot be read: %v.", err)
}

func jsonType(kind string) string {
	switch kind {
	case "string":
		return "a string"
	case "bool":
		return "a boolean"
	case "slice", "array":
		return "an array"
	case "map", "struct", "ptr":
		return "an object"
	}
	return "a number"
}

// page is the paginated list shape of the Atlas API.
type page struct {
	Results    any    `json:"results"`
	TotalCount *int   `json:"totalCount,omitempty"`
	Links      []link `json:"links"`
}

type link struct {
	Href string `json:"href"`
	Rel  string `json:"rel"`
}

// paginate applies itemsPerPage, pageNum and includeCount to a list of n items and returns the
// [from, to) range to show.
func paginate(r *http.Request, n int) (from, to int, count *int, err *apiError) {
	q := r.URL.Query()
	num := func(name string, def, lo, hi int) (int, *apiError) {
		v := q.Get(name)
		if v == "" {
			return def, nil
		}
		i, e := strconv.Atoi(v)
		if e != nil || i < lo || (hi > 0 && i > hi) {
			rng := strconv.Itoa(lo) + " or more"
			if hi > 0 {
				rng = strconv.Itoa(lo) + " to " + strconv.Itoa(hi)
			}
			return 0, &apiError{Status: http.StatusBadRequest, Code: "INVALID_QUERY_PARAMETER",
				Detail: "Invalid query parameter " + name + ": must be an integer from " + rng + ".", Params: []any{name}}
		}
		return i, nil
	}
	per, err := num("itemsPerPage", 100, 1, 500)
	if err != nil {
		return 0, 0, nil, err
	}
	pg, err := num("pageNum", 1, 1, 0)
	if err != nil {
		return 0, 0, nil, err
	}
	include := true
	if v := q.Get("includeCount"); v != "" {
		b, e := strconv.ParseBool(v)
		if e != nil {
			return 0, 0, nil, &apiError{Status: http.StatusBadRequest, Code: "INVALID_QUERY_PARAMETER",
				Detail: "Invalid query parameter includeCount: must be true or false.", Params: []any{"includeCount"}}
		}
		include = b
	}
	// (pg-1)*per can overflow int for a huge pageNum: compare by division first. A page past
	// the end is empty, as in Atlas.
	from = n
	if pg-1 <= n/per {
		from = min((pg-1)*per, n)
	}
	to = from + min(per, n-from)
	if include {
		count = &n
	}
	return from, to, count, nil
}

func listPage[T any](r *http.Request, items []T) (page, *apiError) {
	from, to, count, err := paginate(r, len(items))
	if err != nil {
		return page{}, err
	}
	out := items[from:to]
	if out == nil {
		out = []T{}
	}
	return page{Results: out, TotalCount: count, Links: []link{{Href: selfURL(r), Rel: "self"}}}, nil
}

// selfURL is the absolute URL of the request, for links.
func selfURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host + r.URL.RequestURI()
}
