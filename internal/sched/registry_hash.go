package sched

var hashSchedulers = map[string]New{
	"dh":    dhNew,
	"sh":    shNew,
	"mh":    mhNew,
	"lblc":  lblcNew,
	"lblcr": lblcrNew,
}
