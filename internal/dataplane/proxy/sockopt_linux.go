package proxy

import (
	"strings"
	"syscall"
)

// ipv6Freebind is IPV6_FREEBIND (linux/in6.h, Linux 4.15); package
// syscall lacks it.
const ipv6Freebind = 78

// freebind lets a listener bind a VIP that is not (yet) on this host, as
// a keepalived backup holds its services before VRRP brings the VIP. It
// needs no privilege. A kernel that refuses it only means the VIP must be
// up before the service is added, so errors are ignored.
func freebind(network, _ string, c syscall.RawConn) error {
	return c.Control(func(fd uintptr) {
		if strings.HasSuffix(network, "6") {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_IPV6, ipv6Freebind, 1)
			return
		}
		_ = syscall.SetsockoptInt(int(fd), syscall.SOL_IP, syscall.IP_FREEBIND, 1)
	})
}
