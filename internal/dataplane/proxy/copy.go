package proxy

import (
	"errors"
	"io"
	"net"
)

// pumpResult is how one direction of a TCP connection ended.
type pumpResult struct {
	n int64
	// readErr is an error reading the source (nil at its EOF).
	readErr error
	// writeErr is an error writing the destination.
	writeErr error
	// refused is set when the engine refused a chunk.
	refused bool
}

// copyBuffered is pump's fallback through a user-space buffer.
func copyBuffered(dst, src *net.TCPConn, report func(n int) bool) (res pumpResult) {
	buf := make([]byte, 64<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if !report(n) {
				res.refused = true
				return res
			}
			m, werr := dst.Write(buf[:n])
			res.n += int64(m)
			if werr != nil {
				res.writeErr = werr
				return res
			}
		}
		if errors.Is(err, io.EOF) {
			return res
		}
		if err != nil {
			res.readErr = err
			return res
		}
	}
}
