package netns

import (
	"errors"
	"fmt"
	"slices"
	"sync"
)

// TB is what the builders need of their caller: a *testing.T or
// *testing.B, or an [Env] for programs (the root demo). Every builder
// reports failure through Fatal/Fatalf and registers its undo with
// Cleanup.
type TB interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Skip(args ...any)
}

// Env lets a program use the builders outside tests. Fatal (and Skip:
// not being root is an error here) stops the builder by panicking with
// an error that [Env.Build] recovers and returns; [Env.Close] runs the
// cleanups, last first, as the testing package would.
type Env struct {
	mu       sync.Mutex
	cleanups []func()
	errs     []error
}

type envFatal struct{ err error }

// Helper implements TB.
func (e *Env) Helper() {}

// Cleanup implements TB.
func (e *Env) Cleanup(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.cleanups = append(e.cleanups, f)
}

// Errorf implements TB: the error is returned by Close.
func (e *Env) Errorf(format string, args ...any) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, fmt.Errorf(format, args...))
}

// Fatal implements TB.
func (e *Env) Fatal(args ...any) { panic(envFatal{errors.New(fmt.Sprint(args...))}) }

// Fatalf implements TB.
func (e *Env) Fatalf(format string, args ...any) { panic(envFatal{fmt.Errorf(format, args...)}) }

// Skip implements TB: outside tests there is nothing to skip to.
func (e *Env) Skip(args ...any) { panic(envFatal{errors.New(fmt.Sprint(args...))}) }

// Build runs f, which calls builders with e, and returns the error of
// the first builder that failed. Whatever was built stays until Close.
func (e *Env) Build(f func()) (err error) {
	defer func() {
		if r := recover(); r != nil {
			ef, ok := r.(envFatal)
			if !ok {
				panic(r)
			}
			err = ef.err
		}
	}()
	f()
	return nil
}

// Close undoes everything built, last first, and returns the errors the
// cleanups reported.
func (e *Env) Close() error {
	e.mu.Lock()
	cl := e.cleanups
	e.cleanups = nil
	e.mu.Unlock()
	for _, f := range slices.Backward(cl) {
		func() {
			defer func() {
				if r := recover(); r != nil {
					if ef, ok := r.(envFatal); ok {
						e.Errorf("%v", ef.err)
						return
					}
					panic(r)
				}
			}()
			f()
		}()
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return errors.Join(e.errs...)
}
