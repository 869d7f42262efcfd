package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"time"
)

// ErrSocketInUse is returned by [Listen] when another process answers on
// the socket path.
var ErrSocketInUse = errors.New("socket is in use")

// SocketMode is the permission of the API socket: owner and group may
// connect (connecting to a unix socket needs write permission).
const SocketMode fs.FileMode = 0o660

// Listen listens on the unix socket at path for the API. It creates the
// parent directory (mode 0755) if needed. A socket file left behind by a
// govsd that died is removed, but only when nothing answers on it: a
// running govsd's socket gives an error wrapping [ErrSocketInUse], and a
// path that is not a socket is never removed. The socket gets
// [SocketMode]. Closing the listener removes the socket file.
func Listen(path string) (*net.UnixListener, error) {
	if dir := filepath.Dir(path); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create socket directory: %w", err)
		}
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("listen for the API: %w", err)
	}
	l.SetUnlinkOnClose(true)
	// There is a moment between bind and chmod with the umask's mode;
	// the usual umask (022) leaves the socket unwritable, so closed, to
	// others meanwhile.
	if err := os.Chmod(path, SocketMode); err != nil {
		l.Close()
		return nil, fmt.Errorf("set mode of %s: %w", path, err)
	}
	return l, nil
}

// removeStale removes path if it is a unix socket nobody answers on.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("inspect %s: %w", path, err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("%s exists and is not a socket (%s): remove it or choose another path: %w", path, fi.Mode().Type(), fs.ErrExist)
	}
	c, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		c.Close()
		return fmt.Errorf("%s: another govsd answers on it: stop it first, or choose another --socket: %w", path, ErrSocketInUse)
	}
	if !isRefused(err) {
		return fmt.Errorf("probe %s for a running govsd: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale socket %s: %w", path, err)
	}
	return nil
}
