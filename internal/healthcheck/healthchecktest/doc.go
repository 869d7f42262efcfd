// Package healthchecktest provides fakes for testing code that uses
// package healthcheck: a manual clock and a scripted checker.
package healthchecktest
