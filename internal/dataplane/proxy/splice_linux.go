package proxy

import (
	"net"
	"os"
	"syscall"
)

// Zero-copy forwarding.
//
// io.Copy between two *net.TCPConn already uses splice(2) on Linux
// (src/net/tcpsock_posix.go readFrom -> src/net/splice_linux.go
// spliceFrom -> src/internal/poll/splice_linux.go Splice): it moves data
// socket -> pipe -> socket inside the kernel. But Splice loops until its
// limit or EOF before it returns, so io.Copy, even through an
// io.LimitedReader, can report nothing to the engine while an interactive
// session (telnet, ssh) trickles a few bytes: the engine's entry would see
// no packets and expire under a live connection, and the counters would
// lag for as long as it stays open. So the proxy runs the same loop
// itself, on the sockets' RawConn and the runtime's poller, with the same
// non-blocking splice calls, and reports every chunk a drain returns
// before pumping it on. No byte is copied to user space on this path.

// Flags of splice(2) (linux/splice.h); package syscall lacks them.
const (
	spliceMove     = 0x1
	spliceNonblock = 0x2
)

// pipeSize is the pipe capacity asked for: the most one drain moves, as
// Go's own splice uses (1 MiB is the default pipe-max-size).
const pipeSize = 1 << 20

// pipe is a kernel pipe used as the splice buffer of one direction.
// It carries the callbacks drain and pumpOut hand to RawConn.Read and
// Write, bound once when the pipe is made, and their results, so that
// moving a chunk allocates nothing (a closure per call would escape to
// the heap); pooled pipes keep them across connections.
type pipe struct {
	r, w int
	size int // capacity
	data int // bytes in the pipe

	// In and out of the callbacks: the bytes moved, the bytes to move
	// (pumpOut) and the splice error.
	n, want int
	serr    error
	drainFn func(fd uintptr) bool
	pumpFn  func(fd uintptr) bool
}

func newPipe() (*pipe, error) {
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	pp := &pipe{r: fds[0], w: fds[1], size: 64 << 10}
	// A smaller pipe works, with more system calls; ignore a refusal.
	if n, err := fcntl(pp.r, syscall.F_SETPIPE_SZ, pipeSize); err == nil {
		pp.size = n
	} else if n, err := fcntl(pp.r, syscall.F_GETPIPE_SZ, 0); err == nil {
		pp.size = n
	}
	pp.drainFn = pp.spliceIn
	pp.pumpFn = pp.spliceOut
	return pp, nil
}

func fcntl(fd, cmd, arg int) (int, error) {
	r, _, e := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), uintptr(cmd), uintptr(arg))
	if e != 0 {
		return 0, e
	}
	return int(r), nil
}

func (pp *pipe) close() {
	syscall.Close(pp.r)
	syscall.Close(pp.w)
}

// drain moves what src has to read (at most the pipe's capacity) into the
// empty pipe, waiting until there is something. It returns 0, nil at EOF.
func (pp *pipe) drain(src syscall.RawConn) (int, error) {
	pp.n, pp.serr = 0, nil
	if err := src.Read(pp.drainFn); err != nil {
		return 0, err
	}
	if pp.serr != nil {
		return 0, os.NewSyscallError("splice", pp.serr)
	}
	return pp.n, nil
}

// spliceIn is drain's callback on the source socket.
func (pp *pipe) spliceIn(fd uintptr) bool {
	for {
		n, err := syscall.Splice(int(fd), nil, pp.w, nil, pp.size, spliceMove|spliceNonblock)
		if err == syscall.EINTR {
			continue
		}
		// The pipe is empty, so EAGAIN means the socket has nothing
		// yet: return false to wait in the poller.
		if err == syscall.EAGAIN {
			return false
		}
		pp.n, pp.serr = int(n), err
		return true
	}
}

// pumpOut moves n bytes from the pipe to dst, waiting while dst's send
// buffer is full.
func (pp *pipe) pumpOut(dst syscall.RawConn, n int) (int, error) {
	pp.n, pp.want, pp.serr = 0, n, nil
	err := dst.Write(pp.pumpFn)
	if err == nil && pp.serr != nil {
		err = os.NewSyscallError("splice", pp.serr)
	}
	return pp.n, err
}

// spliceOut is pumpOut's callback on the destination socket.
func (pp *pipe) spliceOut(fd uintptr) bool {
	for pp.n < pp.want {
		m, e := syscall.Splice(pp.r, nil, int(fd), nil, pp.want-pp.n, spliceMove|spliceNonblock)
		switch e {
		case nil:
			pp.n += int(m)
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			pp.serr = e
			return true
		}
	}
	return true
}

// pipePool keeps a few empty pipes for reuse, as Go's splice does, so a
// short connection costs no pipe2 and fcntl calls.
type pipePool struct {
	free chan *pipe
}

func newPipePool() *pipePool { return &pipePool{free: make(chan *pipe, 64)} }

func (pl *pipePool) get() (*pipe, error) {
	select {
	case pp := <-pl.free:
		return pp, nil
	default:
		return newPipe()
	}
}

func (pl *pipePool) put(pp *pipe) {
	if pp.data != 0 { // holds bytes of a dead connection
		pp.close()
		return
	}
	select {
	case pl.free <- pp:
	default:
		pp.close()
	}
}

// close releases the pooled pipes; call it when nothing uses the pool.
func (pl *pipePool) close() {
	for {
		select {
		case pp := <-pl.free:
			pp.close()
		default:
			return
		}
	}
}

// pump forwards src to dst until src's EOF or an error, calling report
// with the size of every chunk before the chunk is written; report
// returning false stops the copy with refused set. dstRaw and srcRaw are
// the sockets' RawConns (taken once per connection).
func (p *Proxy) pump(dst, src *net.TCPConn, dstRaw, srcRaw syscall.RawConn, report func(n int) bool) (res pumpResult) {
	pp, err := p.pipes.get()
	if err != nil {
		// Out of file descriptors for a pipe: copy through user space
		// rather than fail the connection.
		p.log.Warn("no pipe for splice, copying in user space", "err", err)
		return copyBuffered(dst, src, report)
	}
	defer p.pipes.put(pp)
	for {
		n, err := pp.drain(srcRaw)
		if err != nil {
			res.readErr = err
			return res
		}
		if n == 0 {
			return res
		}
		pp.data += n
		if !report(n) {
			res.refused = true
			return res
		}
		m, err := pp.pumpOut(dstRaw, n)
		pp.data -= m
		res.n += int64(m)
		if err != nil {
			res.writeErr = err
			return res
		}
	}
}
