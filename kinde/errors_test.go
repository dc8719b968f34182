package kinde

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestNewAPIError(t *testing.T) {
	tests := []struct {
		name      string
		status    int
		body      string
		code, msg string
	}{
		{"errors array", 400, `{"errors":[{"code":"INVALID_KEY","message":"Key is invalid"}]}`, "INVALID_KEY", "Key is invalid"},
		{"errors array, several", 403, `{"errors":[{"code":"FORBIDDEN","message":"Missing scope read:users"},{"code":"X","message":"second"}]}`, "FORBIDDEN", "Missing scope read:users; second"},
		{"errors object", 404, `{"errors":{"code":"ROUTE_NOT_FOUND","message":"The requested API route does not exist"}}`, "ROUTE_NOT_FOUND", "The requested API route does not exist"},
		{"bare code and message", 400, `{"code":"BAD","message":"nope"}`, "BAD", "nope"},
		{"empty body", 429, ``, "", "Too Many Requests"},
		{"whitespace body", 500, " \n", "", "Internal Server Error"},
		{"empty errors array", 400, `{"errors":[]}`, "", "Bad Request"},
		{"plain text", 502, "upstream\x00 broke", "", "upstream  broke"},
		{"invalid utf8", 500, "\xff\xfe", "", "Internal Server Error"},
	}
	for _, test := range tests {
		t.Run(test.name, func(t *testing.T) {
			e := newAPIError(http.MethodGet, "/api/v1/x", test.status, []byte(test.body))
			if e.Status != test.status || e.Code != test.code || e.Message != test.msg {
				t.Fatalf("got %d %q %q, want %d %q %q", e.Status, e.Code, e.Message, test.status, test.code, test.msg)
			}
		})
	}
}

func TestAPIErrorLongTextIsCut(t *testing.T) {
	long := make([]byte, 1000)
	for i := range long {
		long[i] = 'a'
	}
	e := newAPIError("GET", "/p", 500, long)
	if len(e.Message) > maxErrorText+len("…") {
		t.Fatalf("message not cut: %d bytes", len(e.Message))
	}
}

func TestAPIErrorString(t *testing.T) {
	e := &APIError{Status: 404, Code: "NOT_FOUND", Message: "No permission", Method: "DELETE", Path: "/api/v1/permissions/p1"}
	want := "kinde: DELETE /api/v1/permissions/p1: 404 NOT_FOUND: No permission"
	if got := e.Error(); got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}

func TestErrorHelpers(t *testing.T) {
	wrap := func(status int) error {
		return fmt.Errorf("admin: delete: %w", &APIError{Status: status})
	}
	checks := []struct {
		name   string
		fn     func(error) bool
		status int
	}{
		{"IsNotFound", IsNotFound, 404},
		{"IsRateLimited", IsRateLimited, 429},
		{"IsForbidden", IsForbidden, 403},
		{"IsUnauthorized", IsUnauthorized, 401},
		{"IsBadRequest", IsBadRequest, 400},
		{"IsServerError", IsServerError, 503},
	}
	for _, c := range checks {
		if !c.fn(wrap(c.status)) {
			t.Errorf("%s(%d) = false", c.name, c.status)
		}
		if c.fn(wrap(200)) || c.fn(fmt.Errorf("plain")) || c.fn(nil) {
			t.Errorf("%s matched a non-matching error", c.name)
		}
	}
	if StatusCode(wrap(418)) != 418 || StatusCode(nil) != 0 {
		t.Error("StatusCode wrong")
	}
}

func TestErrorKinds(t *testing.T) {
	cases := []struct {
		status                       int
		code                         string
		unknown, notAssigned, exists bool
	}{
		{404, "ROLE_NOT_FOUND", true, false, false},
		{404, "", true, false, false},
		{404, "ROUTE_NOT_FOUND", false, false, false},
		{400, "PERMISSION_INVALID", true, false, false},
		{400, "USER_NOT_FOUND", true, false, false},
		{400, "ROLE_NOT_ASSIGNED", false, true, false},
		{400, "PERMISSION_NOT_IN_ROLE", false, true, false},
		{400, "USER_NOT_IN_ORGANIZATION", false, true, false},
		{400, "PERMISSION_KEY_EXISTS", false, false, true},
		{400, "ROLE_ALREADY_ASSIGNED", false, false, true},
		{400, "INVALID_REQUEST", false, false, false},
		{400, "KEY_REQUIRED", false, false, false},
		{500, "PERMISSION_INVALID", false, false, false},
		{403, "ROLE_NOT_ASSIGNED", false, false, false},
	}
	for _, c := range cases {
		err := fmt.Errorf("admin: %w", &APIError{Status: c.status, Code: c.code})
		if got := errors.Is(err, ErrUnknownID); got != c.unknown {
			t.Errorf("%d %s: unknown id = %v", c.status, c.code, got)
		}
		if got := errors.Is(err, ErrNotAssigned); got != c.notAssigned {
			t.Errorf("%d %s: not assigned = %v", c.status, c.code, got)
		}
		if got := errors.Is(err, ErrExists); got != c.exists {
			t.Errorf("%d %s: exists = %v", c.status, c.code, got)
		}
	}
	if errors.Is(errors.New("plain"), ErrUnknownID) || errors.Is(nil, ErrNotAssigned) {
		t.Error("a non-API error matched a kind")
	}
}
