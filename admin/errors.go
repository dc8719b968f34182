package admin

import (
	"errors"

	"permsync/apperr"
	"permsync/kinde"
)

// Service methods return *apperr.Error values; the handlers map the code to
// a status and show the message.

// ErrForbidden is the error every method returns to an actor without the
// admin permission.
var ErrForbidden = apperr.E(apperr.Forbidden, "You do not have permission to administer permissions.")

// errInternal wraps a failure of our own (the database, a transaction) for
// the logs, with a generic message for the user.
func errInternal(err error) error {
	return apperr.Wrap(err, apperr.Internal, "Something went wrong. Please try again.")
}

// kindeError turns a Kinde client error into an *apperr.Error. what names
// the thing looked up, for the not-found message ("Permission", "User").
func kindeError(err error, what string) error {
	if err == nil {
		return nil
	}
	if _, ok := errors.AsType[*apperr.Error](err); ok {
		return err
	}
	switch {
	case kinde.IsUnknownID(err) && what != "":
		return apperr.Wrap(err, apperr.NotFound, what+" not found at Kinde.")
	case kinde.IsForbidden(err), kinde.IsUnauthorized(err):
		return apperr.Wrap(err, apperr.Unavailable, "Kinde refused the request: check the M2M application's scopes.")
	case kinde.IsRateLimited(err):
		return apperr.Wrap(err, apperr.Unavailable, "Kinde is rate limiting us. Please try again in a minute.")
	default:
		return apperr.Wrap(err, apperr.Unavailable, "Kinde could not be reached. Please try again.")
	}
}
