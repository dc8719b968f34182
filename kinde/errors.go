package kinde

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// APIError is a non-2xx answer from the Management API.
type APIError struct {
	Status  int    // HTTP status code
	Code    string // Kinde error code, e.g. "ROUTE_NOT_FOUND"; may be empty
	Message string // Kinde's message, or the HTTP status text for an empty body
	Method  string // request method
	Path    string // request path, without the query
}

// Error implements error.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("kinde: ")
	if e.Method != "" {
		fmt.Fprintf(&b, "%s %s: ", e.Method, e.Path)
	}
	fmt.Fprintf(&b, "%d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	return b.String()
}

// maxErrorText bounds the text kept from a non-JSON error body.
const maxErrorText = 200

// errorItem is one entry of Kinde's error body.
type errorItem struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// newAPIError builds an APIError from a response status and body. It accepts
// Kinde's shapes {"errors":[{code,message},...]} and {"errors":{code,message}},
// a bare {code,message}, an empty body and non-JSON text.
func newAPIError(method, path string, status int, body []byte) *APIError {
	e := &APIError{Status: status, Method: method, Path: path}
	e.Code, e.Message = parseErrorBody(body)
	if e.Code == "" && e.Message == "" {
		e.Message = http.StatusText(status)
	}
	return e
}

// parseErrorBody extracts a code and message from an error body.
func parseErrorBody(body []byte) (code, message string) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return "", ""
	}
	var env struct {
		Errors  json.RawMessage `json:"errors"`
		Code    string          `json:"code"`
		Message string          `json:"message"`
	}
	if json.Unmarshal(body, &env) != nil {
		return "", cleanText(body)
	}
	errs := bytes.TrimSpace(env.Errors)
	switch {
	case len(errs) > 0 && errs[0] == '[':
		var items []errorItem
		if json.Unmarshal(errs, &items) == nil && len(items) > 0 {
			msgs := make([]string, 0, len(items))
			for _, it := range items {
				if it.Message != "" {
					msgs = append(msgs, it.Message)
				}
			}
			return items[0].Code, strings.Join(msgs, "; ")
		}
	case len(errs) > 0 && errs[0] == '{':
		var it errorItem
		if json.Unmarshal(errs, &it) == nil {
			return it.Code, it.Message
		}
	}
	return env.Code, env.Message
}

// cleanText keeps a short, printable prefix of a non-JSON body.
func cleanText(b []byte) string {
	if !utf8.Valid(b) {
		return ""
	}
	s := strings.Map(func(r rune) rune {
		if unicode.IsPrint(r) {
			return r
		}
		return ' '
	}, string(b))
	if len(s) > maxErrorText {
		cut := maxErrorText
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "…"
	}
	return strings.TrimSpace(s)
}

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	if e, ok := errors.AsType[*APIError](err); ok {
		return e.Status
	}
	return 0
}

// IsNotFound reports whether err is a 404 from the Management API.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// IsUnknownID reports whether err says an id is unknown: 404, or 400, which
// Kinde's spec declares for unknown ids on DELETE /permissions/{id},
// GET /roles/{id}/users and refresh_claims. Use it where an id may have
// gone; a 400 elsewhere is a malformed request.
//
// Unlike errors.Is(err, ErrUnknownID), it does not read the error code: any
// 400 counts, since Kinde does not publish its codes and on these routes the
// id is the only input. A 404 ROUTE_NOT_FOUND does not count: that is a wrong
// base URL (e.g. a custom domain where KINDE_DOMAIN belongs), not a gone id.
func IsUnknownID(err error) bool {
	e, ok := errors.AsType[*APIError](err)
	if !ok {
		return false
	}
	return e.Status == http.StatusBadRequest || (e.Status == http.StatusNotFound && e.Code != "ROUTE_NOT_FOUND")
}

// IsRateLimited reports whether err is a 429 that outlasted the retries.
func IsRateLimited(err error) bool { return StatusCode(err) == http.StatusTooManyRequests }

// IsForbidden reports whether err is a 403, e.g. a missing M2M scope.
func IsForbidden(err error) bool { return StatusCode(err) == http.StatusForbidden }

// IsUnauthorized reports whether err is a 401 (the token was refused twice).
func IsUnauthorized(err error) bool { return StatusCode(err) == http.StatusUnauthorized }

// IsBadRequest reports whether err is a 400.
func IsBadRequest(err error) bool { return StatusCode(err) == http.StatusBadRequest }

// IsServerError reports whether err is a 5xx that outlasted the retries.
func IsServerError(err error) bool { return StatusCode(err) >= 500 }

// Kinds of Management API refusal that callers act on, matched with
// errors.Is against an error holding an *APIError. Kinde's spec does not
// list its error codes and answers an unknown id with 400 on some routes and
// 404 on others, so the kinds are read from the status and the code's shape.
var (
	// ErrUnknownID: the id in the path or body names nothing (404 other than
	// an unknown route, or 400 with a code like ROLE_INVALID or
	// USER_NOT_FOUND).
	ErrUnknownID = errors.New("kinde: unknown id")
	// ErrNotAssigned: a removal of something the role, user or organization
	// does not hold (400 with a code like ROLE_NOT_ASSIGNED,
	// PERMISSION_NOT_IN_ROLE or USER_NOT_IN_ORGANIZATION). What the removal
	// wanted is already true.
	ErrNotAssigned = errors.New("kinde: not assigned")
	// ErrExists: a create or add of something that is already there (400
	// with a code like PERMISSION_KEY_EXISTS or ROLE_ALREADY_ASSIGNED).
	ErrExists = errors.New("kinde: already exists")
)

// Is makes errors.Is(err, ErrUnknownID), ErrNotAssigned and ErrExists work
// on an *APIError.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrUnknownID:
		return e.unknownID()
	case ErrNotAssigned:
		return e.Status == http.StatusBadRequest &&
			(strings.Contains(e.Code, "NOT_ASSIGNED") || strings.Contains(e.Code, "_NOT_IN_"))
	case ErrExists:
		return e.Status == http.StatusBadRequest &&
			(strings.HasSuffix(e.Code, "_EXISTS") || strings.Contains(e.Code, "ALREADY"))
	}
	return false
}

func (e *APIError) unknownID() bool {
	switch e.Status {
	case http.StatusNotFound:
		return e.Code != "ROUTE_NOT_FOUND"
	case http.StatusBadRequest:
		return strings.HasSuffix(e.Code, "_NOT_FOUND") || strings.HasSuffix(e.Code, "_INVALID")
	}
	return false
}
