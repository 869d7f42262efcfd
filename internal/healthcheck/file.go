package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// FileOptions configure a FILE_CHECK on a track_file.
type FileOptions struct {
	// Path is the tracked file's path (the track_file block's "file").
	Path string
	// Weight is the multiplier. 0: any non-zero value in the file fails
	// the check (with Reverse: a zero value fails). Non-zero: the check
	// passes and adds value*Weight (negated with Reverse) to the
	// realserver's weight, unless the product reaches the fault level
	// (math.MinInt32 after clamping), which fails it.
	Weight  int
	Reverse bool
}

// File is keepalived's FILE_CHECK. keepalived watches the file with
// inotify; here it is read at every check (the runner's delay_loop), which
// gives the same states with a delay of up to one loop.
//
// The file holds a number as C's strtol(buf, NULL, 0) reads it: leading
// blanks, optional sign, 0x hex or 0 octal, trailing text ignored. A
// missing or empty file, or one without a number, reads as 0; a number
// outside the 32-bit range is ignored and the last value kept.
type File struct {
	opts FileOptions
	last int64
}

// NewFile returns a FILE_CHECK checker.
func NewFile(opts FileOptions) (*File, error) {
	if opts.Path == "" {
		return nil, fmt.Errorf("%w: FILE_CHECK needs track_file", ErrConfig)
	}
	return &File{opts: opts}, nil
}

// Check reads the file and judges its value.
func (f *File) Check(context.Context) Result {
	start := time.Now()
	v, err := readTrackFile(f.opts.Path)
	switch {
	case err == nil:
		f.last = v
	case errors.Is(err, errOutOfRange):
		v = f.last
	default:
		return down(start, err)
	}
	return f.judge(start, v)
}

func (f *File) judge(start time.Time, v int64) Result {
	mult := int64(1)
	if f.opts.Reverse {
		mult = -1
	}
	msg := "value " + strconv.FormatInt(v, 10)
	if f.opts.Weight == 0 {
		if (v != 0) == (mult == 1) {
			return down(start, fmt.Errorf("%w: track file %s holds %d", ErrUnexpected, f.opts.Path, v))
		}
		return up(start, msg)
	}
	p := v * int64(f.opts.Weight) * mult // |v| <= 2^31, |weight| < 2^31: no overflow
	if p <= math.MinInt32 {
		zero := 0
		r := down(start, fmt.Errorf("%w: track file %s holds %d: fault", ErrUnexpected, f.opts.Path, v))
		r.Offset = &zero
		return r
	}
	off := int(min(p, math.MaxInt32))
	r := up(start, msg)
	r.Offset = &off
	return r
}

var errOutOfRange = errors.New("number out of range")

func readTrackFile(path string) (int64, error) {
	fh, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("read track file: %w", err)
	}
	defer fh.Close()
	buf := make([]byte, 127)
	n, err := io.ReadFull(fh, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("read track file: %w", err)
	}
	v, ok := strtol(string(buf[:n]))
	if !ok || v < math.MinInt32 || v > math.MaxInt32+1 {
		return 0, errOutOfRange
	}
	return v, nil
}

// strtol reads a number like C's strtol(s, NULL, 0); ok is false when the
// number overflows int64. No digits reads as 0.
func strtol(s string) (int64, bool) {
	s = strings.TrimLeft(s, " \t\n\v\f\r")
	neg := false
	if s != "" && (s[0] == '+' || s[0] == '-') {
		neg = s[0] == '-'
		s = s[1:]
	}
	base := 10
	switch {
	case len(s) > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') && isDigit(s[2], 16):
		base, s = 16, s[2:]
	case len(s) > 1 && s[0] == '0':
		base = 8
	}
	end := 0
	for end < len(s) && isDigit(s[end], base) {
		end++
	}
	if end == 0 {
		return 0, true
	}
	u, err := strconv.ParseUint(s[:end], base, 64)
	if err != nil || u > math.MaxInt64 {
		return 0, false
	}
	if neg {
		return -int64(u), true
	}
	return int64(u), true
}

func isDigit(c byte, base int) bool {
	var d int
	switch {
	case c >= '0' && c <= '9':
		d = int(c - '0')
	case c >= 'a' && c <= 'f':
		d = int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		d = int(c-'A') + 10
	default:
		return false
	}
	return d < base
}
