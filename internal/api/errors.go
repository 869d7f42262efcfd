package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/govs/govs/internal/config"
	"github.com/govs/govs/internal/dataplane"
	"github.com/govs/govs/internal/ipvs"
)

// ErrUnreachable is wrapped by the client's errors when govsd cannot be
// reached at all: the socket does not exist, nothing listens on it, or the
// caller may not open it.
var ErrUnreachable = errors.New("govsd is unreachable")

// Error codes carried in the "code" field of an error response.
const (
	CodeServiceExists = "service_exists"
	CodeNoService     = "no_service"
	CodeDestExists    = "dest_exists"
	CodeNoDest        = "no_dest"
	CodeNoScheduler   = "no_scheduler"
	CodeDaemonRunning = "daemon_running"
	CodeNoDaemon      = "no_daemon"
	CodeUnsupported   = "unsupported"
	CodeInvalid       = "invalid"
	// CodeInvalidConfig: a reload found errors in the configuration file;
	// the running configuration stays.
	CodeInvalidConfig = "invalid_config"
	// CodeNoConfig: a reload of a govsd started without -f.
	CodeNoConfig = "no_config"
	// CodeNotFound and CodeMethodNotAllowed are for requests to routes
	// that do not exist; CodeInternal is everything else.
	CodeNotFound         = "not_found"
	CodeMethodNotAllowed = "method_not_allowed"
	CodeInternal         = "internal"
)

// errorCodes maps sentinels to codes and HTTP statuses. The order matters
// when an error wraps several (errors.Join): the first match wins, and the
// specific table errors come before the generic ones.
var errorCodes = []struct {
	err    error
	code   string
	status int
}{
	{ipvs.ErrNoService, CodeNoService, http.StatusNotFound},
	{ipvs.ErrNoDest, CodeNoDest, http.StatusNotFound},
	{ipvs.ErrServiceExists, CodeServiceExists, http.StatusConflict},
	{ipvs.ErrDestExists, CodeDestExists, http.StatusConflict},
	{ipvs.ErrNoScheduler, CodeNoScheduler, http.StatusUnprocessableEntity},
	{ipvs.ErrDaemonRunning, CodeDaemonRunning, http.StatusConflict},
	{ipvs.ErrNoDaemon, CodeNoDaemon, http.StatusNotFound},
	{dataplane.ErrUnsupported, CodeUnsupported, http.StatusNotImplemented},
	{ipvs.ErrInvalid, CodeInvalid, http.StatusBadRequest},
	{config.ErrInvalid, CodeInvalidConfig, http.StatusUnprocessableEntity},
	{ErrNoConfig, CodeNoConfig, http.StatusConflict},
}

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	// Code is one of the Code* constants.
	Code string `json:"code"`
	// Message is the error as the director reported it: what was wrong
	// and, where it can, what to do.
	Message string `json:"message"`
	// OpIndex is, for a batch that stopped at an op, that op's index (the
	// ops before it are applied); Op is its command.
	OpIndex *int   `json:"op_index,omitempty"`
	Op      OpKind `json:"op,omitempty"`
}

// codeOf returns the code and status for err.
func codeOf(err error) (string, int) {
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code, c.status
		}
	}
	return CodeInternal, http.StatusInternalServerError
}

// Error is an error response as the client sees it. It unwraps to the
// sentinel its code stands for, so errors.Is(err, ipvs.ErrNoService) and
// the like hold on the client side; Error returns the server's message
// unchanged.
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("govsd: %s (HTTP %d)", e.Code, e.Status)
	}
	return e.Message
}

// Unwrap returns the sentinel error of e's code, nil for codes that have
// none.
func (e *Error) Unwrap() error {
	for _, c := range errorCodes {
		if c.code == e.Code {
			return c.err
		}
	}
	return nil
}
