package jobwire

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Error is an error reply of the service: {"error": {"code": ..., "message": ...}}.
// Match it with errors.Is against the Err* values, or errors.As for the details.
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the service's stable error code ("not_found", "stale_lease", ...).
	Code string
	// Message is the service's message.
	Message string
	// Details holds extra fields of the error (a validation error's per-field list).
	Details json.RawMessage
}

func (e *Error) Error() string {
	return fmt.Sprintf("jobwire: %s (HTTP %d, %s)", e.Message, e.Status, e.Code)
}

// Is matches the sentinel of the error's kind: by code, else by HTTP status.
func (e *Error) Is(target error) bool {
	sentinel, ok := target.(*Error)
	if !ok || sentinel.Status != 0 || sentinel.Message != "" {
		return false
	}
	return sentinel.Code == e.kind()
}

func (e *Error) kind() string {
	switch e.Code {
	case "not_found", "invalid_state", "stale_lease", "invalid_request", "payload_too_large",
		"unauthenticated", "forbidden":
		return e.Code
	}
	switch e.Status {
	case 400:
		return "invalid_request"
	case 401:
		return "unauthenticated"
	case 403:
		return "forbidden"
	case 404:
		return "not_found"
	case 413:
		return "payload_too_large"
	case 502, 503, 504:
		return "unavailable"
	}
	return e.Code
}

// Sentinels to match with errors.Is.
var (
	// ErrNotFound: no such job (never was, or its ttl ran out). HTTP 404.
	ErrNotFound = &Error{Code: "not_found"}
	// ErrInvalidState: the job's status does not allow this (retrying a live job). HTTP 409.
	ErrInvalidState = &Error{Code: "invalid_state"}
	// ErrStaleLease: the lease no longer owns the job's current attempt. HTTP 409.
	ErrStaleLease = &Error{Code: "stale_lease"}
	// ErrInvalidRequest: a malformed request or an option out of range. HTTP 400.
	ErrInvalidRequest = &Error{Code: "invalid_request"}
	// ErrPayloadTooLarge: the body is over the service's limit. HTTP 413.
	ErrPayloadTooLarge = &Error{Code: "payload_too_large"}
	// ErrUnauthenticated: no token, or one the service does not know. HTTP 401.
	ErrUnauthenticated = &Error{Code: "unauthenticated"}
	// ErrForbidden: the token's role does not allow this. HTTP 403.
	ErrForbidden = &Error{Code: "forbidden"}
	// ErrUnavailable: the service cannot serve now. HTTP 502, 503 or 504.
	ErrUnavailable = &Error{Code: "unavailable"}
	// ErrWaitTimeout: a wait ran out before the job finished (see *WaitTimeoutError).
	ErrWaitTimeout = errors.New("jobwire: wait timed out")
)

func errorFromResponse(status int, body []byte) *Error {
	var reply struct {
		Error struct {
			Code    string          `json:"code"`
			Message string          `json:"message"`
			Details json.RawMessage `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &reply); err == nil && reply.Error.Code != "" {
		return &Error{Status: status, Code: reply.Error.Code, Message: reply.Error.Message,
			Details: reply.Error.Details}
	}
	message := string(body)
	if len(message) > 500 {
		message = message[:500]
	}
	code := "http_error"
	if status >= 502 && status <= 504 {
		code = "unavailable"
	}
	return &Error{Status: status, Code: code, Message: message}
}

// ConnectionError is a request that got no answer: refused, reset, DNS, or timed out.
type ConnectionError struct {
	Method, Path string
	Err          error
}

func (e *ConnectionError) Error() string {
	return fmt.Sprintf("jobwire: %s %s: %v", e.Method, e.Path, e.Err)
}

// Unwrap gives the underlying network error (errors.Is(err, syscall.ECONNREFUSED) works).
func (e *ConnectionError) Unwrap() error { return e.Err }

// JobFailedError is returned by Apply when the job ended failed or aborted.
type JobFailedError struct {
	Job *Job
}

func (e *JobFailedError) Error() string {
	detail := "unknown error"
	if e.Job.Error != nil {
		detail = e.Job.Error.Type + ": " + e.Job.Error.Message
	}
	return fmt.Sprintf("jobwire: job %s (%s) %s: %s", e.Job.ID, e.Job.Function, e.Job.Status, detail)
}

// WaitTimeoutError is returned when a wait ran out; Job is the job as last seen.
type WaitTimeoutError struct {
	Job *Job
}

func (e *WaitTimeoutError) Error() string {
	return fmt.Sprintf("jobwire: job %s still %s when the wait ran out", e.Job.ID, e.Job.Status)
}

// Is makes errors.Is(err, ErrWaitTimeout) true.
func (e *WaitTimeoutError) Is(target error) bool { return target == ErrWaitTimeout }
