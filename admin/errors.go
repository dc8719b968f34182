package admin

import (
	"errors"
	"fmt"

	"permsync/kinde"
)

// Code classifies an admin error; handlers map it to an HTTP status.
type Code string

// Error codes.
const (
	CodeForbidden   Code = "forbidden"   // the actor lacks the admin permission (403)
	CodeNotFound    Code = "not_found"   // no such permission, user or fan-out (404)
	CodeInvalid     Code = "invalid"     // bad input, e.g. a wrong confirmation key (400/422)
	CodeConflict    Code = "conflict"    // not possible in the current state (409)
	CodeUnavailable Code = "unavailable" // Kinde could not be reached or refused (502/503)
	CodeInternal    Code = "internal"    // anything else (500)
)

// Error is an admin error. Message is safe to show to users; Err, when set,
// is the underlying cause, for logs only.
type Error struct {
	Code    Code
	Message string
	Err     error
}

// Error implements error. It includes the cause, so log it, don't show it.
func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("admin: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("admin: %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrorCode returns the Code of an *Error in err's chain; CodeInternal for
// any other non-nil error and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the user-safe message of an *Error in err's chain, or
// a generic one for any other error.
func ErrorMessage(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok && e.Message != "" {
		return e.Message
	}
	return "Something went wrong. Please try again."
}

// ErrForbidden is the error every method returns to an actor without the
// admin permission.
var ErrForbidden = &Error{Code: CodeForbidden, Message: "You do not have permission to administer permissions."}

func errInvalid(msg string) error { return &Error{Code: CodeInvalid, Message: msg} }

func errNotFound(msg string) error { return &Error{Code: CodeNotFound, Message: msg} }

func errInternal(err error) error {
	return &Error{Code: CodeInternal, Message: "Something went wrong. Please try again.", Err: err}
}

// kindeError turns a Kinde client error into an *Error. what names the thing
// looked up, for the not-found message ("Permission", "User").
func kindeError(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*Error](err); ok {
		return err
	}
	switch {
	case kinde.IsNotFound(err) && what != "":
		return &Error{Code: CodeNotFound, Message: what + " not found at Kinde.", Err: err}
	case kinde.IsForbidden(err), kinde.IsUnauthorized(err):
		return &Error{Code: CodeUnavailable, Message: "Kinde refused the request: check the M2M application's scopes.", Err: err}
	case kinde.IsRateLimited(err):
		return &Error{Code: CodeUnavailable, Message: "Kinde is rate limiting us. Please try again in a minute.", Err: err}
	default:
		return &Error{Code: CodeUnavailable, Message: "Kinde could not be reached. Please try again.", Err: err}
	}
}
