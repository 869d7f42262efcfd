package sched

var listSchedulers = map[string]New{}
