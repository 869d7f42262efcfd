package vrrp

import (
	"slices"
	"testing"
)

func TestNotifyCommands(t *testing.T) {
	s := NotifyScripts{Master: "/etc/keepalived/master.sh arg", Any: "/etc/keepalived/notify.sh"}
	got := s.commands(Transition{Instance: "VI_1", From: StateBackup, To: StateMaster, Priority: 150})
	want := [][]string{
		{"/bin/sh", "-c", "/etc/keepalived/master.sh arg"},
		{"/bin/sh", "-c", `/etc/keepalived/notify.sh "$@"`, "notify", "INSTANCE", "VI_1", "MASTER", "150"},
	}
	if !slices.EqualFunc(got, want, slices.Equal) {
		t.Errorf("commands = %q, want %q", got, want)
	}
	stop := s.commands(Transition{Instance: "VI_1", To: StateInit})
	if len(stop) != 1 || stop[0][6] != "STOP" {
		t.Errorf("stop commands = %q, want only the generic script with STOP", stop)
	}
}
