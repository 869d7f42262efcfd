// Package apitest has an in-memory [api.Director] for tests of code that
// talks to a director: the API server, the client, govsadm.
//
// The fake keeps services and destinations with the table's basic rules
// (duplicates and missing entries give the ipvs sentinel errors,
// destinations are listed newest first), records every call, and can be
// told to fail any method. It does not validate, schedule or count: tests
// set the state they want to read back with [Director.SetState].
package apitest
