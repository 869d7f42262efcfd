package ipvsadm

import (
	"errors"

	"github.com/govs/govs/internal/ipvs"
)

// errno classes of the kernel's answers, as govs's sentinels stand for them.
type errno int

const (
	errOther errno = iota
	errEEXIST
	errESRCH
	errENOENT
	errEINVAL
)

func classify(err error) errno {
	switch {
	case errors.Is(err, ipvs.ErrServiceExists), errors.Is(err, ipvs.ErrDestExists), errors.Is(err, ipvs.ErrDaemonRunning):
		return errEEXIST
	case errors.Is(err, ipvs.ErrNoService), errors.Is(err, ipvs.ErrNoDaemon):
		return errESRCH
	case errors.Is(err, ipvs.ErrNoDest), errors.Is(err, ipvs.ErrNoScheduler):
		return errENOENT
	case errors.Is(err, ipvs.ErrInvalid):
		return errEINVAL
	}
	return errOther
}

// strerrorTable is libipvs's ipvs_strerror table: messages by the call
// that failed and its errno. CmdList stands for the get-service calls.
var strerrorTable = []struct {
	cmd Cmd
	no  errno
	msg string
}{
	{CmdAdd, errEEXIST, "Service already exists"},
	{CmdAdd, errENOENT, "Scheduler or persistence engine not found"},
	{CmdEdit, errESRCH, "No such service"},
	{CmdEdit, errENOENT, "Scheduler or persistence engine not found"},
	{CmdDel, errESRCH, "No such service"},
	{CmdZero, errESRCH, "No such service"},
	{CmdAddDest, errESRCH, "Service not defined"},
	{CmdAddDest, errEEXIST, "Destination already exists"},
	{CmdEditDest, errESRCH, "Service not defined"},
	{CmdEditDest, errENOENT, "No such destination"},
	{CmdDelDest, errESRCH, "Service not defined"},
	{CmdDelDest, errENOENT, "No such destination"},
	{CmdStartDaemon, errEEXIST, "Daemon has already run"},
	{CmdStopDaemon, errESRCH, "No daemon is running"},
	{CmdList, errESRCH, "No such service"},
	{CmdNone, errEINVAL, "Invalid operation.  Possibly wrong module version, address not unicast, ..."},
}

// Strerror returns ipvsadm's message for err, the answer to cmd, as
// libipvs's ipvs_strerror words it. generic is true when the message is
// not specific to the failure (EINVAL's catch-all, strerror's, or the
// error's own text for errors that have no errno).
func Strerror(cmd Cmd, err error) (msg string, generic bool) {
	no := classify(err)
	for _, e := range strerrorTable {
		if (e.cmd == CmdNone || e.cmd == cmd) && e.no == no {
			return e.msg, no == errEINVAL
		}
	}
	switch no {
	case errEEXIST:
		return "File exists", true
	case errESRCH:
		return "No such process", true
	case errENOENT:
		return "No such file or directory", true
	}
	return err.Error(), true
}
