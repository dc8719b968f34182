// Package apperr holds permsync's domain errors: a code that maps to an HTTP
// status and a message that is safe to show users. Anything that is not an
// *Error is an internal error whose text goes to the logs only.
package apperr

import (
	"errors"
	"fmt"
)

// Code classifies an error.
type Code string

// Codes, each mapped to one HTTP status by the handlers.
const (
	Invalid      Code = "invalid"      // 400: the request is wrong
	Unauthorized Code = "unauthorized" // 401: not signed in, or the session ended
	Forbidden    Code = "forbidden"    // 403: signed in but not allowed
	NotFound     Code = "not_found"    // 404
	Conflict     Code = "conflict"     // 409
	Unavailable  Code = "unavailable"  // 503: an upstream (Kinde) could not be reached
	Internal     Code = "internal"     // 500
)

// Error is a domain error: Message is shown to the user, Err is logged.
type Error struct {
	Code    Code
	Message string
	Err     error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", e.Code, e.Message, e.Err)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }

// E builds an error with a user-facing message.
func E(code Code, message string) *Error { return &Error{Code: code, Message: message} }

// Wrap builds an error with a user-facing message and a cause for the logs.
func Wrap(err error, code Code, message string) *Error {
	return &Error{Code: code, Message: message, Err: err}
}

// CodeOf returns the code of the first *Error in err's chain, or Internal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return Internal
}

// MessageOf returns the user-facing message of err, or a generic one for
// errors that are not *Error.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" {
		return e.Message
	}
	return "Something went wrong on our side. Please try again."
}
