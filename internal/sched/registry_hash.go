package sched

var hashSchedulers = map[string]New{}
