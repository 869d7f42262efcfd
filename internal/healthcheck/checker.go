package healthcheck

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"
)

// Sentinel errors. A failed check's Result.Err wraps one of these where
// the cause is one of them, so callers can tell a timeout from a refusal.
var (
	// ErrTimeout: the check did not finish within its timeout.
	ErrTimeout = errors.New("check timed out")
	// ErrUnexpected: the server answered, but not as required (status
	// code, digest, banner, reply bytes, rcode...).
	ErrUnexpected = errors.New("unexpected answer")
	// ErrConfig: a checker was constructed with invalid options.
	ErrConfig = errors.New("invalid checker options")
)

// DefaultConnectTimeout is keepalived's connect_timeout when none is set.
const DefaultConnectTimeout = 5 * time.Second

// Checker is one health check of one realserver, keepalived's
// TCP_CHECK, HTTP_GET, ... block. Check runs the check once and reports;
// it never retries (the [Runner] does, by keepalived's retry rules).
// Implementations are safe for use by one goroutine at a time.
type Checker interface {
	Check(ctx context.Context) Result
}

// Result is the outcome of one check.
type Result struct {
	// Up is true when the check passed.
	Up bool
	// Weight, when not nil on a passing check, is the weight this checker
	// asks the realserver to have (MISC_CHECK with misc_dynamic: exit
	// status minus 2). A passing result with nil Weight withdraws an
	// earlier request, so the configured weight applies again.
	Weight *int
	// Offset, when not nil, is added to the realserver's weight
	// (FILE_CHECK with a weight: file value times weight). It replaces
	// this checker's earlier offset.
	Offset *int
	// Err says why the check failed; nil when Up.
	Err error
	// Message is a short human-readable detail ("HTTP 200", "exit 3").
	Message string
	// Duration is how long the check took.
	Duration time.Duration
}

func (r Result) String() string {
	s := "down"
	if r.Up {
		s = "up"
	}
	if r.Message != "" {
		s += ": " + r.Message
	}
	if r.Err != nil {
		s += ": " + r.Err.Error()
	}
	return s
}

func up(start time.Time, msg string) Result {
	return Result{Up: true, Message: msg, Duration: time.Since(start)}
}

func down(start time.Time, err error) Result {
	return Result{Err: err, Duration: time.Since(start)}
}

// ConnOptions are keepalived's generic connection options, common to all
// network checkers. The lead fills ConnectIP and ConnectPort from the
// realserver when the config leaves them out.
type ConnOptions struct {
	ConnectIP   netip.Addr    // connect_ip (required here)
	ConnectPort uint16        // connect_port (required for TCP, HTTP, SMTP, DNS, UDP)
	BindTo      netip.Addr    // bindto: source address, zero for any
	BindPort    uint16        // bind_port: source port, 0 for any
	BindIf      string        // bind_if: SO_BINDTODEVICE, needs privileges
	FWMark      uint32        // fwmark: SO_MARK on checker packets, needs privileges
	Timeout     time.Duration // connect_timeout; 0 means DefaultConnectTimeout
}

func (o ConnOptions) timeout() time.Duration {
	if o.Timeout <= 0 {
		return DefaultConnectTimeout
	}
	return o.Timeout
}

// target is the address checks go to.
func (o ConnOptions) target() netip.AddrPort {
	return netip.AddrPortFrom(o.ConnectIP.Unmap(), o.ConnectPort)
}

func (o ConnOptions) validate(kind string, needPort bool) error {
	var errs []error
	if !o.ConnectIP.IsValid() {
		errs = append(errs, fmt.Errorf("%s: connect_ip is required", kind))
	}
	if needPort && o.ConnectPort == 0 {
		errs = append(errs, fmt.Errorf("%s: connect_port is required", kind))
	}
	if o.BindTo.IsValid() && o.ConnectIP.IsValid() && o.BindTo.Unmap().Is4() != o.ConnectIP.Unmap().Is4() {
		errs = append(errs, fmt.Errorf("%s: bindto %s and connect_ip %s are of different families", kind, o.BindTo, o.ConnectIP))
	}
	if o.Timeout < 0 {
		errs = append(errs, fmt.Errorf("%s: connect_timeout %s is negative", kind, o.Timeout))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrConfig, errors.Join(errs...))
}

// dialer returns a net.Dialer bound as the options say.
func (o ConnOptions) dialer(network string) *net.Dialer {
	d := &net.Dialer{Timeout: o.timeout(), Control: o.control()}
	if o.BindTo.IsValid() || o.BindPort != 0 {
		ip := o.BindTo.Unmap()
		switch network {
		case "udp":
			d.LocalAddr = &net.UDPAddr{IP: addrIP(ip), Port: int(o.BindPort)}
		default:
			d.LocalAddr = &net.TCPAddr{IP: addrIP(ip), Port: int(o.BindPort)}
		}
	}
	return d
}

func addrIP(a netip.Addr) net.IP {
	if !a.IsValid() {
		return nil
	}
	return net.IP(a.AsSlice())
}

// dial connects to the target within the connect timeout (or ctx's
// deadline, whichever is first).
func (o ConnOptions) dial(ctx context.Context, network string) (net.Conn, error) {
	c, err := o.dialer(network).DialContext(ctx, network, o.target().String())
	if err != nil {
		return nil, classify(fmt.Errorf("connect to %s: %w", o.target(), err))
	}
	return c, nil
}

// deadline is the earlier of now+timeout and ctx's deadline.
func deadline(ctx context.Context, timeout time.Duration) time.Time {
	d := time.Now().Add(timeout)
	if cd, ok := ctx.Deadline(); ok && cd.Before(d) {
		return cd
	}
	return d
}

// classify wraps timeouts with ErrTimeout so errors.Is works.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		if !errors.Is(err, ErrTimeout) {
			return fmt.Errorf("%w: %w", ErrTimeout, err)
		}
	}
	return err
}

func hostPort(host string, port uint16) string {
	return net.JoinHostPort(host, strconv.Itoa(int(port)))
}
