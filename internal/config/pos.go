package config

import (
	"errors"
	"fmt"
	"strconv"
)

// ErrInvalid is wrapped by every configuration error, so callers can tell a
// bad configuration (refuse it, keep the running one) from an I/O failure.
var ErrInvalid = errors.New("invalid configuration")

// Pos is a position in a configuration file: the file name as it was opened
// (or included) and the 1-based line number.
type Pos struct {
	File string `json:"file"`
	Line int    `json:"line"`
}

// String renders p as "file:line", the form editors and keepalived's own
// messages use.
func (p Pos) String() string {
	if p.File == "" {
		return "line " + strconv.Itoa(p.Line)
	}
	return p.File + ":" + strconv.Itoa(p.Line)
}

// Error is one configuration problem at a position. Load and Parse join all
// of them with errors.Join; each wraps ErrInvalid.
type Error struct {
	Pos Pos
	Msg string
}

func (e *Error) Error() string { return e.Pos.String() + ": " + e.Msg }

// Unwrap makes errors.Is(err, ErrInvalid) hold.
func (e *Error) Unwrap() error { return ErrInvalid }

// Warning is something keepalived would log and carry on with: an unknown
// keyword, a keyword govs does not implement, a value that was corrected.
type Warning struct {
	Pos Pos
	Msg string
}

func (w Warning) String() string { return w.Pos.String() + ": " + w.Msg }

// diag collects errors and warnings in the order they are found.
type diag struct {
	errs  []error
	warns []Warning
}

func (d *diag) errorf(p Pos, format string, args ...any) {
	d.errs = append(d.errs, &Error{Pos: p, Msg: fmt.Sprintf(format, args...)})
}

func (d *diag) warnf(p Pos, format string, args ...any) {
	d.warns = append(d.warns, Warning{Pos: p, Msg: fmt.Sprintf(format, args...)})
}
